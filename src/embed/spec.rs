//! `model.json`: what a model folder says about itself.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelSpec {
    pub id: String,
    #[serde(default)]
    pub name: String,
    /// `use` (token_ids + row_splits graph) or `fastembed` (HF-style BERT/XLM-R graph).
    pub runtime: String,
    pub dims: usize,
    /// Most tokens the model takes, specials included; `null` for no limit.
    #[serde(default)]
    pub max_tokens: Option<usize>,
    /// `mean` or `cls` for fastembed models; `in-graph` when the graph pools.
    #[serde(default)]
    pub pooling: String,
    #[serde(default)]
    pub query_prefix: String,
    #[serde(default)]
    pub passage_prefix: String,
    /// The passage prompt with a title slot, `{title}` (EmbeddingGemma's card:
    /// `title: {title} | text: `); without one a title opens the text.
    #[serde(default)]
    pub titled_passage_prefix: Option<String>,
    #[serde(default)]
    pub licence: String,
    /// Shorter prefixes of the vector that the model was trained to keep meaningful (Matryoshka);
    /// `model@256` selects one.
    #[serde(default)]
    pub matryoshka: Vec<usize>,
    /// The graph's own output width when `dims` was truncated (set on load, not in the file).
    #[serde(skip)]
    pub full_dims: Option<usize>,
    #[serde(default)]
    pub sha256: BTreeMap<String, String>,
}

impl ModelSpec {
    pub fn read(dir: &Path) -> Result<ModelSpec> {
        let path = dir.join("model.json");
        let text = std::fs::read_to_string(&path).map_err(|e| Error::Missing {
            what: "the model",
            path: dir.to_path_buf(),
            reason: format!("cannot read model.json ({e})"),
            fix: super::FETCH_HINT.to_string(),
        })?;
        serde_json::from_str(&text).map_err(|e| Error::Corrupt {
            path,
            message: e.to_string(),
        })
    }

    /// The same model with its vectors truncated to `dims` (one of its Matryoshka sizes).
    pub fn truncated(mut self, dims: usize) -> Result<ModelSpec> {
        if dims == self.dims {
            return Ok(self);
        }
        if !self.matryoshka.contains(&dims) {
            return Err(Error::invalid(
                "model",
                format!(
                    "`{}` has no {dims}-dimension form; it offers {:?} (and {})",
                    self.id, self.matryoshka, self.dims
                ),
            ));
        }
        self.full_dims = Some(self.dims);
        self.id = format!("{}@{dims}", self.id);
        self.dims = dims;
        Ok(self)
    }
}
