//! Voice activity: Silero VAD 6's batched 16 kHz graph, one speech probability per 32 ms frame.
//!
//! The graph takes a block of frames at once (each frame 512 new samples after the previous
//! frame's last 64) and carries its LSTM state between blocks, so it runs one call per ~16 s of
//! audio instead of one per frame, with the same probabilities as the streaming model. Not here:
//! what counts as speech or a pause (`windows`).

use std::path::Path;

use ort::session::Session;
use ort::value::Tensor;

use crate::error::{Error, Result};

/// New samples per frame at 16 kHz.
pub const FRAME: usize = 512;
/// Samples of the previous frame each frame is given as context.
const CONTEXT: usize = 64;
/// Frames per call (the reference front end's default: about 16 s).
const BLOCK_FRAMES: usize = 512;
const STATE: usize = 128;

pub struct Vad {
    session: Session,
    h: Vec<f32>,
    c: Vec<f32>,
    context: Vec<f32>,
    /// Samples waiting for a whole block of frames.
    pending: Vec<f32>,
}

impl Vad {
    /// Load `models/silero-vad/model.onnx` (single-threaded: it is a small share of the work).
    pub fn load(model: &Path) -> Result<Vad> {
        let env = crate::embed::runtime::ort_environment()?;
        Ok(Vad {
            session: crate::embed::runtime::session(&env, model, 1)?,
            h: vec![0.0; STATE],
            c: vec![0.0; STATE],
            context: vec![0.0; CONTEXT],
            pending: Vec::new(),
        })
    }

    /// Feed 16 kHz samples; appends the probability of every frame completed so far to `probs`.
    pub fn push(&mut self, samples: &[f32], probs: &mut Vec<f32>) -> Result<()> {
        self.pending.extend_from_slice(samples);
        let whole = self.pending.len() / (FRAME * BLOCK_FRAMES) * FRAME * BLOCK_FRAMES;
        if whole > 0 {
            let block: Vec<f32> = self.pending.drain(..whole).collect();
            for part in block.chunks(FRAME * BLOCK_FRAMES) {
                self.run(part, probs)?;
            }
        }
        Ok(())
    }

    /// The last frames; a partial frame is padded with silence.
    pub fn finish(&mut self, probs: &mut Vec<f32>) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let mut rest = std::mem::take(&mut self.pending);
        rest.resize(rest.len().div_ceil(FRAME) * FRAME, 0.0);
        for part in rest.chunks(FRAME * BLOCK_FRAMES) {
            self.run(part, probs)?;
        }
        Ok(())
    }

    /// One call over whole frames.
    fn run(&mut self, samples: &[f32], probs: &mut Vec<f32>) -> Result<()> {
        let frames = samples.len() / FRAME;
        let mut input = Vec::with_capacity(frames * (CONTEXT + FRAME));
        for frame in samples.chunks_exact(FRAME) {
            input.extend_from_slice(&self.context);
            input.extend_from_slice(frame);
            self.context.copy_from_slice(&frame[FRAME - CONTEXT..]);
        }
        let err = |e: ort::Error| Error::Inference(format!("voice activity: {e}"));
        let mut outputs = self
            .session
            .run(ort::inputs![
                "input" => Tensor::from_array(([frames, CONTEXT + FRAME], input)).map_err(err)?,
                "h" => Tensor::from_array(([1usize, 1, STATE], self.h.clone())).map_err(err)?,
                "c" => Tensor::from_array(([1usize, 1, STATE], self.c.clone())).map_err(err)?,
            ])
            .map_err(err)?;
        let (_, p) = outputs["speech_probs"]
            .try_extract_tensor::<f32>()
            .map_err(err)?;
        probs.extend_from_slice(p);
        for (name, state) in [("hn", &mut self.h), ("cn", &mut self.c)] {
            let value = outputs
                .remove(name)
                .ok_or_else(|| Error::Inference(format!("voice activity: no `{name}` output")))?;
            let (_, data) = value.try_extract_tensor::<f32>().map_err(err)?;
            state.copy_from_slice(&data[..STATE]);
        }
        Ok(())
    }
}
