//! Apertium (rule-based, offline, from Debian's `apertium` + `apertium-eng-spa`) as a `Translator`.
//!
//! Each direction runs the pair's mode pipeline once, in null-flush mode (`apertium-wblank-mode
//! -z`), and keeps it alive: a text goes in escaped for Apertium's stream format and ended by a
//! newline and `\0`, and its translation comes back ended by `\0`. The `apertium` wrapper script itself does not
//! frame its output, which is why the pipeline is run directly. A pipeline that fails, or gives
//! no answer within `ANSWER_WITHIN`, is killed and started again on the next call: every question
//! is translated by default, so a stuck pipeline must not hold questions (or the lock) forever.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::Mutex;
use std::time::Duration;

use super::Translator;
use crate::corpus::Lang;
use crate::error::{Error, Result};
use crate::sync::Recover;

const MODES_DIR: &str = "/usr/share/apertium/modes";
const INSTALL: &str = "apt-get install apertium apertium-eng-spa";
/// A text's translation takes milliseconds (a question about 4 ms); this bounds a stuck pipeline.
const ANSWER_WITHIN: Duration = Duration::from_secs(5);

struct Pipeline {
    child: Child,
    stdin: ChildStdin,
    /// Each translation as it comes out, from a thread reading the pipeline's output, so that
    /// waiting for one can time out.
    answers: Receiver<std::io::Result<Vec<u8>>>,
}

impl Drop for Pipeline {
    /// Kill the whole process group: the pipeline's stages are the shell's children, and a stage
    /// that is stuck would outlive the shell alone.
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            // SAFETY: kill(2) on the group this pipeline leads; no memory is touched.
            unsafe { libc::kill(-pid, libc::SIGKILL) };
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Apertium {
    /// The pipeline's shell text per direction, read once from the pair's mode file.
    commands: HashMap<(Lang, Lang), String>,
    running: HashMap<(Lang, Lang), Mutex<Option<Pipeline>>>,
    answer_within: Duration,
}

fn pair_name(from: Lang, to: Lang) -> String {
    let code = |l: Lang| match l {
        Lang::En => "eng",
        Lang::Es => "spa",
    };
    format!("{}-{}", code(from), code(to))
}

/// Apertium's stream format reserves these characters; a backslash makes them plain text. `^`
/// becomes a space instead: an escaped `^` ending a text (`hello ^`, `x^`) stalls the pipeline
/// with no answer at all (found by fuzzing it), and it carries nothing to translate.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\0' | '^' => out.push(' '),
            '\\' | '[' | ']' | '$' | '/' | '@' | '<' | '>' | '{' | '}' => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            _ => out.push(c),
        }
    }
    out.trim().to_string()
}

impl Apertium {
    /// Check that both directions are installed; pipelines start on first use.
    pub fn new() -> Result<Apertium> {
        let mut commands = HashMap::new();
        for (from, to) in [(Lang::En, Lang::Es), (Lang::Es, Lang::En)] {
            commands.insert((from, to), pipeline_command(&pair_name(from, to))?);
        }
        Ok(Apertium::with_commands(commands, ANSWER_WITHIN))
    }

    fn with_commands(commands: HashMap<(Lang, Lang), String>, answer_within: Duration) -> Apertium {
        let running = commands.keys().map(|&k| (k, Mutex::new(None))).collect();
        Apertium {
            commands,
            running,
            answer_within,
        }
    }

    fn start(&self, key: (Lang, Lang)) -> Result<Pipeline> {
        let mut child = Command::new("bash")
            .arg("-c")
            .arg(&self.commands[&key])
            // $1: `-n` leaves unknown words unmarked (like `apertium -u`); $2: no tagger option.
            .args(["apertium", "-n", ""])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(|e| Error::Translation(format!("cannot start Apertium: {e}")))?;
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let (sender, answers) = mpsc::channel();
        // It ends when the pipeline's output closes (the pipeline killed) or nobody listens.
        std::thread::spawn(move || read_answers(BufReader::new(stdout), sender));
        Ok(Pipeline {
            child,
            stdin,
            answers,
        })
    }

    fn round_trip(&self, pipeline: &mut Pipeline, text: &str) -> std::io::Result<String> {
        pipeline.stdin.write_all(escape(text).as_bytes())?;
        // A section must end in a blank: otherwise `lt-proc -b` holds back its last token and the
        // flush never comes.
        pipeline.stdin.write_all(b"\n\0")?;
        pipeline.stdin.flush()?;
        match pipeline.answers.recv_timeout(self.answer_within) {
            Ok(answer) => Ok(unescape(&String::from_utf8_lossy(&answer?))),
            Err(RecvTimeoutError::Timeout) => Err(std::io::Error::other(format!(
                "no answer within {:?}",
                self.answer_within
            ))),
            Err(RecvTimeoutError::Disconnected) => {
                Err(std::io::Error::other("Apertium closed its output"))
            }
        }
    }
}

/// Send each `\0`-ended section of `stdout` (without its `\0`) until the output ends or fails.
fn read_answers(
    mut stdout: BufReader<ChildStdout>,
    sender: mpsc::Sender<std::io::Result<Vec<u8>>>,
) {
    loop {
        let mut out = Vec::new();
        let answer = match stdout.read_until(0, &mut out) {
            Ok(_) if out.pop() == Some(0) => Ok(out),
            Ok(_) => Err(std::io::Error::other("Apertium closed its output")),
            Err(e) => Err(e),
        };
        let last = answer.is_err();
        if sender.send(answer).is_err() || last {
            return;
        }
    }
}

fn pipeline_command(pair: &str) -> Result<String> {
    let mode = PathBuf::from(MODES_DIR).join(format!("{pair}.mode"));
    let missing = |reason: String| Error::Missing {
        what: "Apertium",
        path: mode.clone(),
        reason,
        fix: INSTALL.to_string(),
    };
    if !mode.is_file() {
        return Err(missing(format!("no {pair} mode file")));
    }
    let out = Command::new("apertium-wblank-mode")
        .arg("-z")
        .arg(&mode)
        .output()
        .map_err(|e| missing(format!("apertium-wblank-mode: {e}")))?;
    if !out.status.success() {
        return Err(missing(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

impl Translator for Apertium {
    fn id(&self) -> &str {
        "apertium"
    }

    fn translate(&self, texts: &[&str], from: Lang, to: Lang) -> Result<Vec<String>> {
        if from == to {
            return Ok(texts.iter().map(|t| t.to_string()).collect());
        }
        let mut slot = self.running[&(from, to)].lock_recovered();
        let mut out = Vec::with_capacity(texts.len());
        for text in texts {
            if text.trim().is_empty() {
                out.push(String::new());
                continue;
            }
            if slot.is_none() {
                *slot = Some(self.start((from, to))?);
            }
            let pipeline = slot.as_mut().expect("started above");
            match self.round_trip(pipeline, text) {
                Ok(t) => out.push(t),
                Err(e) => {
                    *slot = None;
                    return Err(Error::Translation(format!(
                        "Apertium {}: {e}",
                        pair_name(from, to)
                    )));
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pipeline that never answers is given up on in time, and killed; the next call starts
    /// a new one rather than reading the stuck one's late output.
    #[test]
    fn a_stuck_pipeline_is_given_up_on_and_restarted() {
        // Two stages behind the shell, the second never answering, as a stuck Apertium stage.
        let stage = "sleep 30.4242";
        let commands = HashMap::from([((Lang::En, Lang::Es), format!("cat | {stage}"))]);
        let apertium = Apertium::with_commands(commands, Duration::from_millis(200));
        for _ in 0..2 {
            let started = std::time::Instant::now();
            let err = apertium
                .translate(&["hello"], Lang::En, Lang::Es)
                .unwrap_err()
                .to_string();
            assert!(err.contains("no answer within"), "{err}");
            assert!(started.elapsed() < Duration::from_secs(5));
            assert!(apertium.running[&(Lang::En, Lang::Es)]
                .lock_recovered()
                .is_none());
        }
        // The stuck stage went with its shell, not left behind as an orphan.
        let running = || {
            std::fs::read_dir("/proc").unwrap().flatten().any(|p| {
                std::fs::read(p.path().join("cmdline"))
                    .is_ok_and(|c| c == format!("{}\0", stage.replace(' ', "\0")).as_bytes())
            })
        };
        let started = std::time::Instant::now();
        while running() {
            assert!(
                started.elapsed() < Duration::from_secs(2),
                "{stage} outlived its pipeline"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn stream_escaping_round_trips() {
        let text = r"a [b] c$ d/e @f <g> {h} \i";
        assert_eq!(unescape(&escape(text)), text);
        assert_eq!(escape("x\0y"), "x y");
        assert_eq!(escape("x^"), "x ");
    }
}
