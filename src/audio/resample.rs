//! A streaming polyphase resampler between two integer rates: windowed-sinc (Blackman) filters, one
//! per output phase, computed once. Input arrives in blocks of any size; output follows with a
//! fixed delay and `finish` flushes the tail. Good enough for speech recognition (the pass band ends
//! at 90% of the lower Nyquist frequency); not a mastering-grade converter.

/// Zero crossings of the sinc on each side, at the lower of the two rates.
const HALF_TAPS: usize = 16;

pub struct Resampler {
    /// Output samples per `step_in` input samples, after dividing both rates by their gcd.
    phases: usize,
    step_in: usize,
    /// `phases` filters of `taps` coefficients; filter p is for an output that falls p/phases
    /// of the way between two input samples.
    filters: Vec<f32>,
    taps: usize,
    /// Input not yet consumed, starting at absolute input sample `base`.
    pending: Vec<f32>,
    base: u64,
    /// The next output sample's number.
    next_out: u64,
    identity: bool,
}

impl Resampler {
    pub fn new(from: u32, to: u32) -> Resampler {
        let g = gcd(from as usize, to as usize).max(1);
        let (phases, step_in) = (to as usize / g, from as usize / g);
        // Downsampling narrows the pass band to the output's Nyquist frequency (and widens the filter).
        let cutoff = 0.9 * (to as f64 / from as f64).min(1.0);
        let half = (HALF_TAPS as f64 / cutoff).ceil() as usize;
        let taps = 2 * half;
        let mut filters = Vec::with_capacity(phases * taps);
        for p in 0..phases {
            let frac = p as f64 / phases as f64;
            for j in 0..taps {
                // input sample (i - half + 1 + j) sits at distance d from the output position
                let d = (j as f64 - half as f64 + 1.0) - frac;
                filters.push((cutoff * sinc(cutoff * d) * blackman(d, half as f64)) as f32);
            }
        }
        let mut resampler = Resampler {
            phases,
            step_in,
            filters,
            taps,
            pending: Vec::new(),
            base: 0,
            next_out: 0,
            identity: from == to,
        };
        // Input before the first sample is silence, so the first output is centered on sample 0.
        resampler.pending = vec![0.0; half - 1];
        resampler.base = 0;
        resampler
    }

    /// Resample `input`, appending what can be computed so far to `out`.
    pub fn push(&mut self, input: &[f32], out: &mut Vec<f32>) {
        if self.identity {
            out.extend_from_slice(input);
            return;
        }
        self.pending.extend_from_slice(input);
        self.drain(out);
    }

    /// Flush the delayed tail (pads with silence); the output then has length ceil(in * to / from).
    pub fn finish(&mut self, out: &mut Vec<f32>) {
        if self.identity {
            return;
        }
        let consumed_in = self.base + self.pending.len() as u64 - (self.taps / 2 - 1) as u64;
        let wanted = (consumed_in * self.phases as u64).div_ceil(self.step_in as u64);
        self.pending.extend(std::iter::repeat_n(0.0, self.taps));
        while self.next_out < wanted {
            if !self.one(out) {
                break;
            }
        }
    }

    fn drain(&mut self, out: &mut Vec<f32>) {
        while self.one(out) {}
        // Drop input no future output needs.
        let first_needed = (self.next_out * self.step_in as u64 / self.phases as u64) as usize;
        let drop = first_needed.saturating_sub(self.base as usize);
        if drop > 4096 {
            self.pending.drain(..drop);
            self.base += drop as u64;
        }
    }

    /// Compute one output sample if its input is there.
    fn one(&mut self, out: &mut Vec<f32>) -> bool {
        let pos = self.next_out * self.step_in as u64;
        let i = (pos / self.phases as u64) as usize;
        let phase = (pos % self.phases as u64) as usize;
        let start = i - self.base as usize;
        let Some(window) = self.pending.get(start..start + self.taps) else {
            return false;
        };
        let filter = &self.filters[phase * self.taps..(phase + 1) * self.taps];
        out.push(window.iter().zip(filter).map(|(x, h)| x * h).sum());
        self.next_out += 1;
        true
    }
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

fn sinc(x: f64) -> f64 {
    if x.abs() < 1e-9 {
        1.0
    } else {
        let px = std::f64::consts::PI * x;
        px.sin() / px
    }
}

/// Blackman window over [-half, half].
fn blackman(d: f64, half: f64) -> f64 {
    if d.abs() >= half {
        return 0.0;
    }
    let t = (d + half) / (2.0 * half);
    let tau = std::f64::consts::TAU;
    0.42 - 0.5 * (tau * t).cos() + 0.08 * (2.0 * tau * t).cos()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(rate: u32, hz: f32, n: usize) -> Vec<f32> {
        (0..n)
            .map(|i| (i as f32 * hz * std::f32::consts::TAU / rate as f32).sin())
            .collect()
    }

    fn resample_in_blocks(from: u32, to: u32, input: &[f32], block: usize) -> Vec<f32> {
        let mut r = Resampler::new(from, to);
        let mut out = Vec::new();
        for chunk in input.chunks(block) {
            r.push(chunk, &mut out);
        }
        r.finish(&mut out);
        out
    }

    #[test]
    fn lengths_follow_the_rate_ratio_whatever_the_blocks() {
        for (from, block) in [(44_100, 1000), (48_000, 7), (22_050, 4096), (8_000, 333)] {
            let input = tone(from, 300.0, from as usize * 2);
            let out = resample_in_blocks(from, 16_000, &input, block);
            let expected = (input.len() * 16_000).div_ceil(from as usize);
            assert!(
                out.len().abs_diff(expected) <= 1,
                "{from}: {} vs {expected}",
                out.len()
            );
        }
    }

    #[test]
    fn a_tone_in_the_pass_band_keeps_its_shape_and_blocks_do_not_matter() {
        let input = tone(44_100, 440.0, 44_100);
        let whole = resample_in_blocks(44_100, 16_000, &input, input.len());
        let small = resample_in_blocks(44_100, 16_000, &input, 100);
        assert_eq!(whole, small);
        let expected = tone(16_000, 440.0, whole.len());
        // away from the edges the resampled tone matches the tone generated at 16 kHz
        let err = whole[200..15_800]
            .iter()
            .zip(&expected[200..15_800])
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(err < 0.01, "max error {err}");
    }

    #[test]
    fn a_tone_above_the_new_nyquist_is_removed() {
        let input = tone(48_000, 12_000.0, 48_000);
        let out = resample_in_blocks(48_000, 16_000, &input, 4800);
        let rms = (out[100..15_900].iter().map(|x| x * x).sum::<f32>() / 15_800.0).sqrt();
        assert!(rms < 0.01, "rms {rms}");
    }
}
