//! Models with an HF-style BERT/XLM-R graph (multilingual-e5-small, or a user's folder) through
//! fastembed's user-defined model path: query/passage prefixes from `model.json`, mean or CLS
//! pooling, and texts longer than the model's window embedded as token windows and averaged.

use std::path::Path;

use fastembed::{
    InitOptionsUserDefined, OutputKey, Pooling, TextEmbedding, TokenizerFiles,
    UserDefinedEmbeddingModel,
};
use ort::environment::Environment;
use tokenizers::Tokenizer;

use super::use_m3::load_tokenizer;
use super::{embed_batched, normalize, token_count, Embedder, ModelSpec, Windows};
use crate::error::{Error, Result};
use crate::pool::Pool;

/// Padded tokens per inference call (batch × longest).
const TOKEN_BUDGET: usize = 8192;

pub struct FastembedModel {
    spec: ModelSpec,
    tokenizer: Tokenizer,
    /// Most tokens of text (prefix included) one window may hold: the model's limit less specials.
    window: usize,
    models: Pool<TextEmbedding>,
}

impl FastembedModel {
    pub fn load(
        dir: &Path,
        spec: ModelSpec,
        env: Environment,
        threads: usize,
    ) -> Result<FastembedModel> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read(&path).map_err(|e| Error::Missing {
                what: "a model file",
                path,
                reason: e.to_string(),
                fix: super::FETCH_HINT.into(),
            })
        };
        let onnx = read("model.onnx")?;
        let files = TokenizerFiles {
            tokenizer_file: read("tokenizer.json")?,
            config_file: read("config.json")?,
            special_tokens_map_file: read("special_tokens_map.json")?,
            tokenizer_config_file: read("tokenizer_config.json")?,
        };
        let max_tokens = spec.max_tokens.unwrap_or(512);
        let pooling = match spec.pooling.as_str() {
            "cls" => Pooling::Cls,
            _ => Pooling::Mean,
        };
        let mut models = Vec::with_capacity(threads);
        for _ in 0..threads {
            let mut model = UserDefinedEmbeddingModel::new(onnx.clone(), files.clone())
                .with_pooling(pooling.clone());
            model.output_key = Some(OutputKey::ByName("last_hidden_state"));
            let options = InitOptionsUserDefined::new()
                .with_environment(env.clone())
                .with_max_length(max_tokens)
                .with_intra_threads(1);
            models.push(
                TextEmbedding::try_new_from_user_defined(model, options)
                    .map_err(|e| Error::Inference(format!("{}: {e}", dir.display())))?,
            );
        }
        Ok(FastembedModel {
            tokenizer: load_tokenizer(&dir.join("tokenizer.json"))?,
            window: max_tokens.saturating_sub(2).max(8),
            spec,
            models: Pool::new(models),
        })
    }

    /// Embed already-prefixed texts, each within the window.
    fn embed_fitting(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        let lengths: Vec<usize> = texts
            .iter()
            .map(|t| token_count(&self.tokenizer, t) + 2)
            .collect();
        let mut out = embed_batched(&lengths, TOKEN_BUDGET, true, self.models.size(), |batch| {
            let items: Vec<&str> = batch.iter().map(|&i| texts[i].as_str()).collect();
            self.models
                .with(|m| m.embed(&items, Some(items.len())))
                .map_err(|e| Error::Inference(e.to_string()))
        })?;
        out.iter_mut().for_each(|v| normalize(v));
        Ok(out)
    }

    fn embed_with_prefix(&self, prefix: &str, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        let room = self
            .window
            .saturating_sub(token_count(&self.tokenizer, prefix))
            .max(8);
        let windows = Windows::split(&self.tokenizer, room, texts);
        let prefixed: Vec<String> = windows
            .texts
            .iter()
            .map(|w| format!("{prefix}{w}"))
            .collect();
        let vectors = self.embed_fitting(&prefixed)?;
        Ok(windows.average(vectors, texts.len(), self.spec.dims))
    }
}

impl Embedder for FastembedModel {
    fn model_id(&self) -> &str {
        &self.spec.id
    }

    fn dims(&self) -> usize {
        self.spec.dims
    }

    fn embed_query(&self, text: &str) -> Result<Vec<f32>> {
        Ok(self
            .embed_with_prefix(&self.spec.query_prefix, &[text])?
            .remove(0))
    }

    fn embed_passages(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        self.embed_with_prefix(&self.spec.passage_prefix, texts)
    }

    fn chunk_sizer(&self) -> (&dyn crate::chunk::TokenCount, usize) {
        let prefix = token_count(&self.tokenizer, &self.spec.passage_prefix);
        (&self.tokenizer, self.window.saturating_sub(prefix))
    }
}
