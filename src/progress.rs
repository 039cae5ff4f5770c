//! Progress of long work (fetching feeds, embedding chunks) as the user sees it.
//!
//! Owns the one [`Progress`] trait the library reports to, and its two faces: an indicatif bar
//! with rate and time left when stderr is a terminal, plain lines at most every few seconds
//! otherwise (logs, CI, pipes). It knows nothing of what the work is.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::sync::Recover;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Something that can show how far a stage of work has got.
pub trait Progress: Send + Sync {
    /// A new stage of `total` steps (`what` names the steps: "items", "chunks").
    fn start(&self, stage: &str, total: u64, what: &str);
    fn advance(&self, steps: u64);
    fn finish(&self);
}

/// For library callers and tests that want no output.
pub struct Silent;

impl Progress for Silent {
    fn start(&self, _: &str, _: u64, _: &str) {}
    fn advance(&self, _: u64) {}
    fn finish(&self) {}
}

/// The right reporter for this process: a bar on a terminal, lines otherwise.
pub fn for_stderr() -> Box<dyn Progress> {
    if std::io::stderr().is_terminal() {
        Box::new(Bar::default())
    } else {
        Box::new(Lines::default())
    }
}

#[derive(Default)]
pub struct Bar {
    bar: Mutex<Option<ProgressBar>>,
}

impl Progress for Bar {
    fn start(&self, stage: &str, total: u64, what: &str) {
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        let template =
            format!("{{prefix}} [{{bar:30}}] {{pos}}/{{len}} {what} · {{per_sec}} · {{eta}} left");
        bar.set_style(
            ProgressStyle::with_template(&template)
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_prefix(stage.to_string());
        bar.enable_steady_tick(Duration::from_millis(200));
        if let Some(old) = self.bar.lock_recovered().replace(bar) {
            old.finish();
        }
    }

    fn advance(&self, steps: u64) {
        if let Some(bar) = &*self.bar.lock_recovered() {
            bar.inc(steps);
        }
    }

    fn finish(&self) {
        if let Some(bar) = self.bar.lock_recovered().take() {
            bar.finish();
        }
    }
}

/// Plain `stage: 120/874 chunks (34.1/s, ~22 s left)` lines, at most one every 2 seconds.
#[derive(Default)]
pub struct Lines {
    state: Mutex<Option<LineState>>,
}

struct LineState {
    stage: String,
    what: String,
    total: u64,
    done: u64,
    /// `done` when the last line was printed, so the closing line is not a repeat.
    printed: u64,
    started: Instant,
    last_print: Instant,
}

impl LineState {
    fn print(&mut self) {
        self.printed = self.done;
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        let rate = self.done as f64 / secs;
        // An unknown total (0: audio whose feed gave no duration) has no time left to tell.
        let left = if rate > 0.0 && self.total > 0 {
            format!(
                ", ~{:.0} s left",
                (self.total.saturating_sub(self.done)) as f64 / rate
            )
        } else {
            String::new()
        };
        eprintln!(
            "{}: {}/{} {} ({rate:.1}/s{left})",
            self.stage, self.done, self.total, self.what
        );
    }
}

const LINE_EVERY: Duration = Duration::from_secs(2);

impl Progress for Lines {
    fn start(&self, stage: &str, total: u64, what: &str) {
        let now = Instant::now();
        *self.state.lock_recovered() = Some(LineState {
            stage: stage.to_string(),
            what: what.to_string(),
            total,
            done: 0,
            printed: u64::MAX,
            started: now,
            last_print: now,
        });
    }

    fn advance(&self, steps: u64) {
        if let Some(s) = &mut *self.state.lock_recovered() {
            s.done += steps;
            if s.last_print.elapsed() >= LINE_EVERY {
                s.last_print = Instant::now();
                s.print();
            }
        }
    }

    fn finish(&self) {
        if let Some(mut s) = self.state.lock_recovered().take() {
            if s.printed != s.done {
                s.print();
            }
        }
    }
}
