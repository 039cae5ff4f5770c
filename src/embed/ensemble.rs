//! Two models as one: each vector normalized and scaled by 1/√2, then concatenated, so one dot
//! product between ensemble vectors is the mean of the two models' cosines.

use std::sync::Arc;

use super::Embedder;
use crate::error::Result;

pub struct Ensemble {
    id: String,
    first: Arc<dyn Embedder>,
    second: Arc<dyn Embedder>,
}

impl Ensemble {
    pub fn new(id: String, first: Arc<dyn Embedder>, second: Arc<dyn Embedder>) -> Ensemble {
        Ensemble { id, first, second }
    }

    fn join(a: Vec<f32>, b: Vec<f32>) -> Vec<f32> {
        let s = std::f32::consts::FRAC_1_SQRT_2;
        a.into_iter().chain(b).map(|x| x * s).collect()
    }
}

impl Embedder for Ensemble {
    fn model_id(&self) -> &str {
        &self.id
    }

    fn dims(&self) -> usize {
        self.first.dims() + self.second.dims()
    }

    fn embed_query(&self, text: &str) -> Result<Vec<f32>> {
        Ok(Self::join(
            self.first.embed_query(text)?,
            self.second.embed_query(text)?,
        ))
    }

    fn embed_passages(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        let a = self.first.embed_passages(texts)?;
        let b = self.second.embed_passages(texts)?;
        Ok(a.into_iter()
            .zip(b)
            .map(|(a, b)| Self::join(a, b))
            .collect())
    }

    fn embed_titled(&self, docs: &[(&str, &str)]) -> Result<Vec<Vec<f32>>> {
        let a = self.first.embed_titled(docs)?;
        let b = self.second.embed_titled(docs)?;
        Ok(a.into_iter()
            .zip(b)
            .map(|(a, b)| Self::join(a, b))
            .collect())
    }

    fn fingerprint(&self) -> Option<String> {
        Some(format!(
            "{}+{}",
            self.first.fingerprint()?,
            self.second.fingerprint()?
        ))
    }

    /// Chunks must fit the model with the tighter window.
    fn chunk_sizer(&self) -> (&dyn crate::chunk::TokenCount, usize) {
        let (a, b) = (self.first.chunk_sizer(), self.second.chunk_sizer());
        if a.1 <= b.1 {
            a
        } else {
            b
        }
    }
}
