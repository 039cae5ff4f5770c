//! USE multilingual v3 through `ort` directly: the graph takes every text's token ids concatenated
//! (`token_ids` int32) plus `row_splits` (int64 offsets), and pools and normalizes inside.

use std::path::Path;

use ort::environment::Environment;
use ort::session::Session;
use ort::value::Tensor;
use tokenizers::Tokenizer;

use super::runtime::session;
use super::{embed_batched, normalize, Embedder, ModelSpec};
use crate::error::{Error, Result};
use crate::pool::Pool;

/// Tokens per inference call; the graph's cost is linear in tokens, there is no padding.
const TOKEN_BUDGET: usize = 4096;
/// USE has no hard limit; chunks are kept to a paragraph's size.
const CHUNK_TOKENS: usize = 256;

pub struct UseM3 {
    spec: ModelSpec,
    tokenizer: Tokenizer,
    sessions: Pool<Session>,
}

pub(crate) fn load_tokenizer(path: &Path) -> Result<Tokenizer> {
    Tokenizer::from_file(path).map_err(|e| Error::Missing {
        what: "the tokenizer",
        path: path.to_path_buf(),
        reason: e.to_string(),
        fix: super::FETCH_HINT.into(),
    })
}

impl UseM3 {
    pub fn load(dir: &Path, spec: ModelSpec, env: Environment, threads: usize) -> Result<UseM3> {
        let tokenizer = load_tokenizer(&dir.join("tokenizer.json"))?;
        let sessions = (0..threads)
            .map(|_| session(&env, &dir.join("model.onnx"), 1))
            .collect::<Result<Vec<_>>>()?;
        Ok(UseM3 {
            spec,
            tokenizer,
            sessions: Pool::new(sessions),
        })
    }

    fn encode(&self, text: &str) -> Result<Vec<i32>> {
        let enc = self
            .tokenizer
            .encode(text, true)
            .map_err(|e| Error::Inference(e.to_string()))?;
        Ok(enc.get_ids().iter().map(|&i| i as i32).collect())
    }

    fn run(&self, encoded: &[&Vec<i32>]) -> Result<Vec<Vec<f32>>> {
        let mut ids = Vec::with_capacity(encoded.iter().map(|e| e.len()).sum());
        let mut splits = Vec::with_capacity(encoded.len() + 1);
        splits.push(0i64);
        for e in encoded {
            ids.extend_from_slice(e);
            splits.push(ids.len() as i64);
        }
        let err = |e: ort::Error| Error::Inference(e.to_string());
        let n_ids = ids.len();
        let n_splits = splits.len();
        self.sessions.with(|session| {
            let outputs = session
                .run(ort::inputs![
                    "token_ids" => Tensor::from_array(([n_ids], ids)).map_err(err)?,
                    "row_splits" => Tensor::from_array(([n_splits], splits)).map_err(err)?,
                ])
                .map_err(err)?;
            let (shape, data) = outputs["outputs"]
                .try_extract_tensor::<f32>()
                .map_err(err)?;
            let dims = shape[1] as usize;
            Ok(data
                .chunks(dims)
                .map(|row| {
                    let mut v = row.to_vec();
                    normalize(&mut v);
                    v
                })
                .collect())
        })
    }
}

impl Embedder for UseM3 {
    fn model_id(&self) -> &str {
        &self.spec.id
    }

    fn dims(&self) -> usize {
        self.spec.dims
    }

    fn embed_query(&self, text: &str) -> Result<Vec<f32>> {
        let e = self.encode(text)?;
        Ok(self.run(&[&e])?.remove(0))
    }

    fn embed_passages(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        let encoded = texts
            .iter()
            .map(|t| self.encode(t))
            .collect::<Result<Vec<_>>>()?;
        let lengths: Vec<usize> = encoded.iter().map(Vec::len).collect();
        embed_batched(
            &lengths,
            TOKEN_BUDGET,
            false,
            self.sessions.size(),
            |batch| {
                let refs: Vec<&Vec<i32>> = batch.iter().map(|&i| &encoded[i]).collect();
                self.run(&refs)
            },
        )
    }

    fn chunk_sizer(&self) -> (&dyn crate::chunk::TokenCount, usize) {
        (&self.tokenizer, CHUNK_TOKENS)
    }
}
