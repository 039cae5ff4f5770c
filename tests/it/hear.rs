//! Hearing audio-only episodes end to end: speech made at test time with espeak-ng (English and
//! Spanish), joined with sox and encoded to MP3 with lame, served from loopback in a feed that has
//! only enclosures, then ingested by the real `podseek` with the real Whisper, VAD and embedding
//! model. Checks the moment a cross-language question lands on, generated chapter boundaries, a
//! bilingual episode, the diagnostics for corrupt, missing and silent audio, a re-ingest that
//! transcribes nothing, a kill during transcription that resumes, the transcript export, and the
//! inline player in Chromium.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use podseek::index::Snapshot as _;

use crate::fixtures::{bin, root, serve_loopback, Server};
use crate::page::Driver;

/// Topics spoken one after another; each sentence is its own espeak call so its start is known.
const ENGLISH: [&[&str]; 3] = [
    &[
        "The history of coffee begins in the highlands of Ethiopia.",
        "Goat herders noticed that their animals danced with energy after eating the red berries of a certain shrub.",
        "Monks in Yemen later roasted and brewed the beans so that they could stay awake during long night prayers.",
        "By the fifteenth century, coffee houses had spread across the Ottoman empire, and people met there to talk, play chess and hear the news.",
        "Dutch traders later smuggled young coffee plants out of Arabia and grew them on the island of Java.",
        "Today coffee is grown in more than fifty countries, and Brazil harvests more beans than any other nation.",
    ],
    &[
        "Now let us talk about the first landing on the moon.",
        "In July of nineteen sixty nine, two astronauts walked on the lunar surface while a third pilot circled above in the command module.",
        "Hundreds of millions of people watched the grainy black and white television pictures.",
        "The guidance computer on board had far less memory than a modern pocket calculator, yet it steered the lander safely to the ground.",
        "The crew collected rocks and dust from the lunar soil and carried them back to Earth for scientists to study.",
        "After eight days in space the capsule splashed down in the Pacific Ocean, where a navy ship picked up the three men.",
    ],
    &[
        "Finally, a few words about sleep.",
        "Most adults need between seven and nine hours of sleep every night to stay healthy.",
        "During deep sleep the body repairs its muscles, and while we dream the brain sorts and stores the memories of the day.",
        "Bright phone screens late in the evening delay the release of melatonin, the hormone that makes us feel tired.",
        "Going to bed and waking up at the same time every day keeps the body clock steady.",
        "A short nap after lunch can improve attention, but a long one makes it harder to fall asleep at night.",
    ],
];

const SPANISH: [&[&str]; 3] = [
    &[
        "Hoy hablamos de los volcanes.",
        "Un volcán se forma cuando la roca fundida del interior de la tierra sube hasta la superficie.",
        "Las erupciones pueden lanzar ceniza a kilómetros de altura y cubrir pueblos enteros, como ocurrió en Pompeya.",
        "Los científicos miden los temblores y los gases para avisar a la población antes de una erupción.",
        "En Islandia el calor de los volcanes se usa para calentar las casas y producir electricidad.",
        "Algunas islas, como las Canarias y Hawái, nacieron de erupciones en el fondo del mar.",
    ],
    &[
        "Ahora hablemos de las abejas.",
        "Las abejas producen miel con el néctar de las flores y la guardan en panales de cera.",
        "Cuando una abeja encuentra flores, vuelve a la colmena y baila para indicar a las demás la dirección y la distancia.",
        "Sin las abejas muchas frutas y verduras no podrían polinizarse.",
        "Una colmena tiene una sola reina, que pone miles de huevos cada día durante la primavera.",
        "Los apicultores usan humo para calmar a las abejas cuando abren las cajas para recoger la miel.",
    ],
    &[
        "Por último, la imprenta.",
        "Hacia el año mil cuatrocientos cincuenta, Gutenberg inventó en Alemania la imprenta de tipos móviles.",
        "Gracias a ella los libros se volvieron más baratos y el conocimiento llegó a mucha más gente.",
        "La Biblia fue uno de los primeros libros impresos con este método.",
        "Muy pronto aparecieron talleres de imprenta en Venecia, París y Sevilla.",
        "Los periódicos, los carteles y los libros de texto nacieron de aquella máquina de madera y metal.",
    ],
];

/// Silence between sentences of a topic, and between topics.
const SENTENCE_GAP_S: f64 = 0.3;
const TOPIC_GAP_S: f64 = 1.5;

/// One generated episode: its file, and when each topic and each sentence starts.
struct Spoken {
    topic_starts: Vec<f64>,
    sentence_starts: Vec<Vec<f64>>,
}

struct Fixture {
    dir: tempfile::TempDir,
    base: String,
    english: Spoken,
    spanish: Spoken,
    /// The ingest's index, stdout, stderr and exit code.
    index: PathBuf,
    ingest_err: String,
    ingest_code: Option<i32>,
}

fn tool(cmd: &mut Command) {
    let status = cmd.stdout(Stdio::null()).stderr(Stdio::null()).status().unwrap_or_else(|e| {
        panic!("{cmd:?}: {e} (espeak-ng, sox and lame are Debian packages; scripts/test.sh installs them)")
    });
    assert!(status.success(), "{cmd:?} failed");
}

fn seconds(path: &Path) -> f64 {
    let out = Command::new("soxi")
        .arg("-D")
        .arg(path)
        .output()
        .expect("soxi (sox)");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("a duration")
}

fn silence(path: &Path, s: f64) {
    tool(
        Command::new("sox")
            .args(["-n", "-r", "22050", "-c", "1"])
            .arg(path)
            .args(["trim", "0", &s.to_string()]),
    );
}

/// Speak `topics` (voice per topic) into `name`.mp3 in `dir`, recording where everything starts.
fn speak(dir: &Path, name: &str, topics: &[(&str, &[&str])]) -> Spoken {
    let (short, long) = (dir.join("gap-s.wav"), dir.join("gap-t.wav"));
    silence(&short, SENTENCE_GAP_S);
    silence(&long, TOPIC_GAP_S);
    let (mut parts, mut at) = (Vec::new(), 0.0);
    let mut spoken = Spoken {
        topic_starts: Vec::new(),
        sentence_starts: Vec::new(),
    };
    for (t, (voice, sentences)) in topics.iter().enumerate() {
        if t > 0 {
            parts.push(long.clone());
            at += TOPIC_GAP_S;
        }
        spoken.topic_starts.push(at);
        let mut starts = Vec::new();
        for (s, sentence) in sentences.iter().enumerate() {
            if s > 0 {
                parts.push(short.clone());
                at += SENTENCE_GAP_S;
            }
            let raw = dir.join(format!("{name}-{t}-{s}.raw.wav"));
            let wav = dir.join(format!("{name}-{t}-{s}.wav"));
            tool(
                Command::new("espeak-ng")
                    .args(["-v", voice, "-s", "160", "-w"])
                    .arg(&raw)
                    .arg(sentence),
            );
            tool(
                Command::new("sox")
                    .arg(&raw)
                    .args(["-r", "22050", "-c", "1"])
                    .arg(&wav),
            );
            starts.push(at);
            at += seconds(&wav);
            parts.push(wav);
        }
        spoken.sentence_starts.push(starts);
    }
    let joined = dir.join(format!("{name}.wav"));
    tool(Command::new("sox").args(&parts).arg(&joined));
    tool(
        Command::new("lame")
            .args(["--quiet", "--preset", "voice"])
            .arg(&joined)
            .arg(dir.join(format!("{name}.mp3"))),
    );
    spoken
}

fn item(base: &str, guid: &str, title: &str, lang: &str, file: &str) -> String {
    format!(
        "<item><title>{title}</title><guid>{guid}</guid><description>Show notes for {title}.</description>\
         <language>{lang}</language><enclosure url=\"{base}/{file}\" type=\"audio/mpeg\" length=\"1\"/></item>"
    )
}

fn feed(items: &[String]) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rss version=\"2.0\"><channel><title>Heard Only</title>\n{}\n</channel></rss>\n",
        items.join("\n")
    )
}

/// Serve `dir` on loopback, with byte ranges (a browser's player seeks with them).
fn serve_dir(dir: PathBuf) -> String {
    serve_loopback(|_| move |req: Request| serve_file(&dir, &req))
}

fn serve_file(dir: &Path, req: &Request) -> Response {
    let name = req.uri().path().trim_start_matches('/');
    if name.contains("..") || name.contains('/') {
        return StatusCode::NOT_FOUND.into_response();
    }
    let Ok(bytes) = std::fs::read(dir.join(name)) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let mime = if name.ends_with(".xml") {
        "application/rss+xml"
    } else {
        "audio/mpeg"
    };
    let range = req
        .headers()
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("bytes="))
        .and_then(|v| v.split_once('-'))
        .and_then(|(a, b)| Some((a.parse::<usize>().ok()?, b.parse::<usize>().ok())));
    match range {
        Some((from, to)) if from < bytes.len() => {
            let to = to.unwrap_or(bytes.len() - 1).min(bytes.len() - 1);
            let body = bytes[from..=to].to_vec();
            let content_range = format!("bytes {from}-{to}/{}", bytes.len());
            (
                StatusCode::PARTIAL_CONTENT,
                [
                    (header::CONTENT_TYPE, mime.to_string()),
                    (header::CONTENT_RANGE, content_range),
                    (header::ACCEPT_RANGES, "bytes".into()),
                ],
                body,
            )
                .into_response()
        }
        _ => (
            [
                (header::CONTENT_TYPE, mime),
                (header::ACCEPT_RANGES, "bytes"),
            ],
            bytes,
        )
            .into_response(),
    }
}

fn run(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(bin())
        .args(args)
        .current_dir(root())
        .output()
        .expect("run podseek");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The episodes spoken, served and ingested once per test run.
fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let en: Vec<(&str, &[&str])> = ENGLISH.iter().map(|t| ("en-us", *t)).collect();
        let es: Vec<(&str, &[&str])> = SPANISH.iter().map(|t| ("es", *t)).collect();
        let english = speak(dir.path(), "english", &en);
        let spanish = speak(dir.path(), "spanish", &es);
        speak(
            dir.path(),
            "mixed",
            &[("en-us", ENGLISH[1]), ("es", SPANISH[0])],
        );
        let quiet = dir.path().join("quiet.wav");
        silence(&quiet, 8.0);
        tool(
            Command::new("lame")
                .args(["--quiet"])
                .arg(&quiet)
                .arg(dir.path().join("quiet.mp3")),
        );
        std::fs::write(
            dir.path().join("corrupt.mp3"),
            b"\xff\xfb\x90\x00garbage, not frames".repeat(500),
        )
        .unwrap();
        let base = serve_dir(dir.path().to_path_buf());
        let items = [
            item(
                &base,
                "en",
                "Coffee, the moon and sleep",
                "en",
                "english.mp3",
            ),
            item(
                &base,
                "es",
                "Volcanes, abejas e imprenta",
                "es",
                "spanish.mp3",
            ),
            item(&base, "mixed", "Two languages", "en", "mixed.mp3"),
            item(&base, "quiet", "Nothing said", "en", "quiet.mp3"),
            item(&base, "corrupt", "Broken file", "en", "corrupt.mp3"),
            item(&base, "gone", "Missing file", "en", "missing.mp3"),
        ];
        std::fs::write(dir.path().join("feed.xml"), feed(&items)).unwrap();
        let index = dir.path().join("index");
        let feed_url = format!("{base}/feed.xml");
        let (code, _, err) = run(&[
            "ingest",
            &feed_url,
            "--index",
            index.to_str().unwrap(),
            "--threads",
            "2",
            "--fetch-allow",
            "127.0.0.1",
        ]);
        Fixture {
            dir,
            base,
            english,
            spanish,
            index,
            ingest_err: err,
            ingest_code: code,
        }
    })
}

fn search(question: &str, k: usize) -> Vec<Value> {
    let f = fixture();
    let (code, out, err) = run(&[
        "search",
        question,
        "--index",
        f.index.to_str().unwrap(),
        "-k",
        &k.to_string(),
        "--json",
    ]);
    assert_eq!(code, Some(0), "{err}");
    serde_json::from_str::<Value>(&out).unwrap()["hits"]
        .as_array()
        .unwrap()
        .clone()
}

fn episode_chapters(episode_title: &str) -> Vec<Value> {
    let index = podseek::index::LocalSnapshot::open(&fixture().index, None).unwrap();
    let catalog = index.catalog();
    for id in catalog.episode_ids() {
        let e = catalog.episode(id).unwrap().unwrap();
        if e.title == episode_title {
            return e
                .chapters
                .iter()
                .map(|c| serde_json::to_value(c).unwrap())
                .collect();
        }
    }
    panic!("no episode {episode_title}")
}

#[test]
fn a_question_in_the_other_language_finds_the_moment_it_is_said() {
    let f = fixture();
    assert!(f.ingest_err.contains("heard"), "{}", f.ingest_err);
    // (question, the episode that answers it, the sentence that does: topic and sentence)
    let cases = [
        (
            "How do honey bees tell the rest of the hive where they found flowers?",
            "Volcanes, abejas e imprenta",
            f.spanish.sentence_starts[1][2],
        ),
        (
            "¿Cuántas horas de sueño necesita cada noche una persona adulta?",
            "Coffee, the moon and sleep",
            f.english.sentence_starts[2][1],
        ),
    ];
    for (question, episode, said) in cases {
        let hits = search(question, 3);
        let top = &hits[0];
        assert_eq!(top["episode_title"], episode, "{question}: {hits:#?}");
        let at = top["evidence_start_s"]
            .as_f64()
            .expect("transcript evidence has a second");
        assert!(
            (at - said).abs() <= 10.0,
            "{question}: evidence at {at} s, said at {said:.1} s"
        );
        assert_eq!(top["chapter_generated"], true);
        assert!(top["audio_url"].as_str().unwrap().starts_with(&f.base));
    }
}

#[test]
fn generated_chapter_boundaries_fall_where_the_topic_changes() {
    let f = fixture();
    for (title, spoken) in [
        ("Coffee, the moon and sleep", &f.english),
        ("Volcanes, abejas e imprenta", &f.spanish),
    ] {
        let chapters = episode_chapters(title);
        let starts: Vec<f64> = chapters
            .iter()
            .map(|c| c["start_s"].as_f64().unwrap())
            .collect();
        assert_eq!(
            starts.len(),
            3,
            "{title}: chapters at {starts:?}, topics at {:?}",
            spoken.topic_starts
        );
        for (found, truth) in starts.iter().zip(&spoken.topic_starts).skip(1) {
            assert!(
                (found - truth).abs() <= 15.0,
                "{title}: chapters at {starts:?}, topics at {:?}",
                spoken.topic_starts
            );
        }
        for c in &chapters {
            let title = c["title"].as_str().unwrap();
            assert!(!title.is_empty() && title.len() < 80, "{title}");
            assert!(!c["transcript"].as_array().unwrap().is_empty());
        }
    }
}

#[test]
fn a_bilingual_episode_keeps_both_languages() {
    let chapters = episode_chapters("Two languages");
    let langs: Vec<&str> = chapters
        .iter()
        .map(|c| c["lang"].as_str().unwrap())
        .collect();
    assert!(langs.contains(&"en") && langs.contains(&"es"), "{langs:?}");
    let text: String = chapters
        .iter()
        .flat_map(|c| {
            c["transcript"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l["text"].as_str().unwrap().to_lowercase())
        })
        .collect::<Vec<_>>()
        .join(" ");
    assert!(text.contains("moon") && text.contains("volcan"), "{text}");
}

#[test]
fn bad_audio_is_a_diagnostic_naming_the_episode_and_the_rest_goes_in() {
    let f = fixture();
    let err = &f.ingest_err;
    assert_eq!(
        f.ingest_code,
        Some(2),
        "input was skipped, so the exit code says so: {err}"
    );
    assert!(
        err.contains("\"Broken file\": audio not transcribed:"),
        "{err}"
    );
    assert!(
        err.contains("\"Missing file\": audio not transcribed:") && err.contains("404"),
        "{err}"
    );
    assert!(
        err.contains("\"Nothing said\"") && err.contains("no speech was heard"),
        "{err}"
    );
    let index = podseek::index::LocalSnapshot::open(&f.index, None).unwrap();
    assert_eq!(
        index.catalog().episode_ids().len(),
        6,
        "every episode is indexed, bad audio with its show notes"
    );
}

#[test]
fn a_re_ingest_transcribes_nothing_and_the_transcript_exports() {
    let f = fixture();
    let copy = f.dir.path().join("again");
    crate::feeds::copy_dir(&f.index, &copy);
    let feed = format!("{}/feed.xml", f.base);
    let (_, out, err) = run(&[
        "ingest",
        &feed,
        "--index",
        copy.to_str().unwrap(),
        "--fetch-allow",
        "127.0.0.1",
    ]);
    assert!(err.contains("(0 transcribed now, 4 from"), "{err}");
    assert!(out.contains("0 added, 0 replaced, 6 unchanged"), "{out}");
    let hits = search("Who invented printing with movable type?", 1);
    let id = hits[0]["episode_id"].as_str().unwrap().to_string();
    let (code, vtt, err) = run(&[
        "transcript",
        &id,
        "--index",
        f.index.to_str().unwrap(),
        "--format",
        "vtt",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let cues = podseek::corpus::transcript::parse(
        "out.vtt",
        podseek::corpus::transcript::TranscriptFormat::Vtt,
        &vtt,
    );
    assert!(cues.diagnostics.is_empty() && cues.cues.len() >= 4, "{vtt}");
    assert!(vtt.to_lowercase().contains("imprenta"), "{vtt}");
}

#[test]
fn a_kill_during_transcription_leaves_the_index_and_the_next_run_resumes() {
    let f = fixture();
    let index = f.dir.path().join("killed");
    crate::feeds::copy_dir(&f.index, &index);
    let before = podseek::index::LocalSnapshot::open(&index, None)
        .unwrap()
        .manifest
        .clone();
    let transcripts = f.dir.path().join("fresh-transcripts");
    let feed = f.dir.path().join("one.xml");
    std::fs::write(&feed, feed_of_one(&f.base)).unwrap();
    let args = [
        "ingest",
        feed.to_str().unwrap(),
        "--index",
        index.to_str().unwrap(),
        "--transcripts",
        transcripts.to_str().unwrap(),
        "--fetch-allow",
        "127.0.0.1",
    ];
    let mut child = Command::new(bin())
        .args(args)
        .current_dir(root())
        // A killed process cannot remove its downloaded audio: keep it in the test's own folder.
        .env("TMPDIR", f.dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let partial = loop {
        let found = std::fs::read_dir(&transcripts).ok().and_then(|d| {
            d.flatten()
                .find(|e| e.file_name().to_string_lossy().ends_with(".partial.json"))
        });
        if let Some(found) = found {
            break found.path();
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no partial transcript appeared"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the ingest ended before it could be killed"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(partial.exists());
    let after = podseek::index::LocalSnapshot::open(&index, None)
        .unwrap()
        .manifest
        .clone();
    assert_eq!(
        serde_json::to_value(&before).unwrap(),
        serde_json::to_value(&after).unwrap(),
        "the index is as it was"
    );
    let (code, _, err) = run(&args);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("resuming"), "{err}");
    assert!(
        !partial.exists(),
        "the partial transcript is replaced by the finished one"
    );
}

fn feed_of_one(base: &str) -> String {
    feed(&[item(
        base,
        "en",
        "Coffee, the moon and sleep",
        "en",
        "english.mp3",
    )])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_plays_the_moment_and_follows_the_transcript() {
    let f = tokio::task::spawn_blocking(fixture).await.unwrap();
    let server = Server::start(&f.index).await;
    let d = Driver::start().await;
    d.goto(&format!(
        "{}/?q={}",
        server.url, "how%20many%20hours%20of%20sleep%20do%20adults%20need"
    ))
    .await;
    d.wait_for(
        "return document.querySelectorAll('#results .hit button.play').length",
        "a play button",
    )
    .await;
    let hit = d.js("const h = document.querySelector('#results .hit'); return {at: parseFloat(h.querySelector('button.play').dataset.at), gen: !!h.querySelector('.badge.gen')}").await;
    assert_eq!(hit["gen"], true, "generated chapters are marked");
    let at = hit["at"].as_f64().unwrap();
    d.js("document.querySelector('#results .hit button.play').click(); return null")
        .await;
    let played = d
        .wait_for("const p = document.getElementById('inline-player'); return p && p.readyState >= 1 && Math.abs(p.currentTime - arguments[0]) < 1.5 ? p.currentTime : null".replace("arguments[0]", &at.to_string()).as_str(), "the inline player at the evidence second")
        .await;
    assert!((played.as_f64().unwrap() - at).abs() < 1.5);
    // The chapter view: seek to a line and it is the one highlighted.
    let href = d
        .js("return document.querySelector('#results .hit h2 a').getAttribute('href')")
        .await;
    d.goto(&format!("{}{}", server.url, href.as_str().unwrap()))
        .await;
    d.wait_for(
        "const p = document.getElementById('player'); return p && p.readyState >= 1 ? true : null",
        "the chapter player",
    )
    .await;
    let line = d.js("const l = [...document.querySelectorAll('#chapter .line')][1]; const p = document.getElementById('player'); p.currentTime = parseFloat(l.dataset.start) + 0.2; p.dispatchEvent(new Event('timeupdate')); return l.dataset.start").await;
    let speaking = d.wait_for("const s = document.querySelector('#chapter .line.speaking'); return s ? s.dataset.start : null", "a highlighted line").await;
    assert_eq!(speaking, line);
    assert!(d
        .js("return document.querySelector('#chapter .badge.gen') !== null")
        .await
        .as_bool()
        .unwrap());
}

#[test]
fn every_container_podcasts_use_decodes_to_the_same_audio() {
    let f = fixture();
    let wav = f.dir.path().join("english.wav");
    let expected = seconds(&wav);
    let formats: [(&str, Vec<&str>); 4] = [
        ("flac", vec![]),
        ("ogg", vec![]),
        ("m4a", vec!["-c:a", "aac", "-b:a", "64k"]),
        ("mp3", vec![]),
    ];
    for (ext, args) in formats {
        let path = f.dir.path().join(format!("container.{ext}"));
        match ext {
            "m4a" => tool(
                Command::new("ffmpeg")
                    .args(["-y", "-loglevel", "error", "-i"])
                    .arg(&wav)
                    .args(&args)
                    .arg(&path),
            ),
            "mp3" => std::fs::copy(f.dir.path().join("english.mp3"), &path)
                .map(|_| ())
                .unwrap(),
            _ => tool(Command::new("sox").arg(&wav).arg(&path)),
        }
        let mut energy = 0.0f64;
        let decoded = podseek::audio::decode_16k(&path, ext, |block| {
            energy += block.iter().map(|x| (x * x) as f64).sum::<f64>();
            Ok(true)
        })
        .unwrap_or_else(|e| panic!("{ext}: {e}"));
        assert!(
            (decoded.seconds() - expected).abs() < 0.2,
            "{ext}: {} s, the WAV is {expected} s",
            decoded.seconds()
        );
        assert!(
            energy / decoded.samples as f64 > 1e-4,
            "{ext}: the decoded audio is silent"
        );
    }
}
