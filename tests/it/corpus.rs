//! The parser on the real sample (counts, timestamps, titles against a hand-checked list, the
//! repaired Daytona dump, snapshots) and on small fixtures for each quirk and each kind of bad input.

use podseek::corpus::{self, format_timestamp, parse_timestamp, Lang};
use proptest::prelude::*;

use crate::fixtures::{data, sample};

#[test]
fn sample_has_12_episodes_11_with_chapters_and_190_chapters() {
    let p = sample();
    assert_eq!(p.episodes.len(), 12);
    assert_eq!(
        p.episodes.iter().filter(|e| !e.chapters.is_empty()).count(),
        11
    );
    assert_eq!(p.chapter_count(), 190);
    assert!(!p.skipped_anything(), "{:?}", p.diagnostics);
    let devin = p
        .episodes
        .iter()
        .find(|e| e.title.starts_with("Devin’s 80% Moment"))
        .expect("the episode without a body");
    assert!(devin.chapters.is_empty());
}

#[test]
fn sample_timestamps_and_ends() {
    let p = sample();
    let page = String::from_utf8(crate::fixtures::sample_bytes()).unwrap();
    let shown: Vec<String> = regex::Regex::new(r"## \[([0-9:]+)\]")
        .unwrap()
        .captures_iter(&page)
        .map(|c| c[1].to_string())
        .collect();
    let parsed: Vec<&str> = p
        .episodes
        .iter()
        .flat_map(|e| e.chapters.iter().map(|c| c.timestamp.as_str()))
        .collect();
    assert_eq!(
        shown, parsed,
        "every displayed timestamp kept, in page order"
    );
    for e in &p.episodes {
        for (i, c) in e.chapters.iter().enumerate() {
            assert_eq!(Some(c.start_s), parse_timestamp(&c.timestamp));
            assert_eq!(
                c.end_s,
                e.chapters.get(i + 1).map(|n| n.start_s),
                "{}",
                c.id
            );
        }
    }
    let find = |ts: &str| {
        p.episodes
            .iter()
            .flat_map(|e| &e.chapters)
            .find(|c| c.timestamp == ts)
            .unwrap()
            .start_s
    };
    assert_eq!(find("83:02"), 4982);
    assert_eq!(find("1:02:44"), 3764);
    assert_eq!(find("01:58:19"), 7099);
}

/// Chapter titles against the hand-checked list: the measured count is the floor.
#[test]
fn sample_titles_match_the_checked_list() {
    let gold: Vec<String> = std::fs::read_to_string(data("tests/data/sample_titles.txt"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let got: Vec<String> = sample()
        .episodes
        .iter()
        .flat_map(|e| {
            e.chapters
                .iter()
                .map(|c| format!("[{}] {}", c.timestamp, c.title))
        })
        .collect();
    assert_eq!(gold.len(), 190);
    let right = gold.iter().zip(&got).filter(|(g, o)| g == o).count();
    let wrong: Vec<_> = gold.iter().zip(&got).filter(|(g, o)| g != o).collect();
    assert!(right >= 189, "{right}/190 titles right; wrong: {wrong:#?}");
}

#[test]
fn daytona_dump_is_repaired_into_its_chapters() {
    let e = sample()
        .episodes
        .iter()
        .find(|e| e.title.contains("Daytona"))
        .unwrap();
    assert_eq!(e.chapters.len(), 20);
    let first = &e.chapters[0];
    assert_eq!(first.title, "Hook");
    assert!(!first.summary.contains("start"), "{}", first.summary);
    assert_eq!(first.quotes.len(), 1);
    for c in &e.chapters[1..] {
        assert!(
            c.summary.len() > 100,
            "chapter {} has its summary back",
            c.timestamp
        );
        assert!(
            !c.quotes.is_empty(),
            "chapter {} has its quotes back",
            c.timestamp
        );
        for q in &c.quotes {
            assert!(
                !q.text.contains(['{', '}']) && !q.text.contains("\\n"),
                "{}",
                q.text
            );
        }
    }
    let intro = &e.chapters[1];
    assert!(intro
        .summary
        .starts_with("Host swyx introduces Ivan Burazin"));
    assert_eq!(intro.quotes[0].at_s, Some(96));
    let composable = e.chapters.iter().find(|c| c.timestamp == "05:58").unwrap();
    assert!(
        composable
            .summary
            .contains("composable computers' for AI agents, moving beyond"),
        "{}",
        composable.summary
    );
    assert_eq!(e.entities.len(), 12);
    assert_eq!(e.entities[0].name, "Ivan Burazin");
}

#[test]
fn sample_languages_quotes_and_entities() {
    let p = sample();
    let langs: Vec<Lang> = p.episodes.iter().map(|e| e.lang).collect();
    assert_eq!(langs.iter().filter(|l| **l == Lang::Es).count(), 4);
    for e in &p.episodes {
        assert!(e.chapters.iter().all(|c| c.lang == e.lang));
        if !e.chapters.is_empty() {
            assert!(!e.entities.is_empty(), "{}", e.title);
        }
    }
    let abridge = p
        .episodes
        .iter()
        .find(|e| e.title.contains("Abridge"))
        .unwrap();
    let with_speaker = abridge
        .chapters
        .iter()
        .flat_map(|c| &c.quotes)
        .filter(|q| q.speaker.as_deref() == Some("Janie Lee"))
        .count();
    assert!(with_speaker >= 3);
    let railway = p
        .episodes
        .iter()
        .find(|e| e.title.contains("Railway"))
        .unwrap();
    assert_eq!(
        railway.chapters[1].quotes[0].text,
        "railway is the easiest way to ship anything."
    );
    assert_eq!(railway.chapters[1].quotes[0].at_s, Some(149));
}

#[test]
fn ids_are_stable_across_parses() {
    let again = corpus::parse_file("other-name.txt", &crate::fixtures::sample_bytes());
    let a: Vec<&str> = sample()
        .episodes
        .iter()
        .flat_map(|e| e.chapters.iter().map(|c| c.id.as_str()))
        .collect();
    let b: Vec<&str> = again
        .episodes
        .iter()
        .flat_map(|e| e.chapters.iter().map(|c| c.id.as_str()))
        .collect();
    assert_eq!(a, b);
    let unique: std::collections::HashSet<_> = a.iter().collect();
    assert_eq!(unique.len(), 190);
}

#[test]
fn sample_summary_snapshot() {
    insta::assert_snapshot!("sample_summary", corpus::summary(sample()));
}

#[test]
fn daytona_json_snapshot() {
    let e = sample()
        .episodes
        .iter()
        .find(|e| e.title.contains("Daytona"))
        .unwrap();
    let chapters: Vec<_> = e.chapters.iter().take(4).collect();
    insta::assert_json_snapshot!("daytona_first_chapters", chapters);
}

#[test]
fn timestamps() {
    for (input, seconds) in [
        ("00:00", Some(0)),
        ("01:21", Some(81)),
        ("83:02", Some(4982)),
        ("1:02:44", Some(3764)),
        ("01:05:13", Some(3913)),
        ("100:59", Some(6059)),
    ] {
        assert_eq!(parse_timestamp(input), seconds, "{input}");
    }
    for bad in [
        "",
        "1:2",
        "12:60",
        "1:60:00",
        "aa:bb",
        "1:02:03:04",
        "-1:00",
        "12",
    ] {
        assert_eq!(parse_timestamp(bad), None, "{bad}");
    }
    assert_eq!(format_timestamp(754), "12:34");
    assert_eq!(format_timestamp(3764), "1:02:44");
}

fn page(body: &str) -> String {
    format!("Site chrome\nMore chrome\nMy Episode Title\n{body}\n")
}

const LONG: &str = "This is a long description that goes on about the episode so that the line counts as a body line in the scraped page format, which puts a whole episode on one line; it needs to be long enough to pass the threshold for body lines, which is a few hundred characters, so here is some more text about nothing in particular.";

/// (case, page, expected chapter titles)
#[test]
fn title_recovery_cases() {
    let cases: &[(&str, String, &[&str])] = &[
        ("one-word title then name", page(&format!("{LONG} ## [00:00] Hook Kyle opens the show. > *\"Hi.\"*")), &["Hook"]),
        ("title case then name", page(&format!("{LONG} ## [00:00] Why AI Got Kyle Coding Again Swyx points out the graph.")), &["Why AI Got Kyle Coding Again"]),
        ("title with question mark", page(&format!("{LONG} ## [00:00] What Is Railway? Railway is described as a platform.")), &["What Is Railway?"]),
        ("title only, nothing after", page(&format!("{LONG} ## [00:00] Hook Kyle opens. ## [01:12] Introduction")), &["Hook", "Introduction"]),
        ("line break keeps the title", "Chrome\n# Clean Page Episode\nDescription.\n## [00:00] Opening remarks from the host\nThe host says hello.\n## [02:00] second part\nmore talk\n".to_string(), &["Opening remarks from the host", "second part"]),
    ];
    for (name, text, titles) in cases {
        let p = corpus::parse_file("case.txt", text.as_bytes());
        let got: Vec<&str> = p
            .episodes
            .iter()
            .flat_map(|e| e.chapters.iter().map(|c| c.title.as_str()))
            .collect();
        assert_eq!(
            &got, titles,
            "case: {name}; diagnostics: {:?}",
            p.diagnostics
        );
    }
}

#[test]
fn spanish_sentence_case_titles() {
    let body = "Descripción larga del episodio en español que habla de muchas cosas y sigue y sigue para que la línea cuente como cuerpo del episodio en el formato de la página; necesita unos cientos de caracteres, así que aquí hay más texto sobre el episodio y sus invitados, que hablan de proteínas y de modelos.";
    let text = format!("Chrome\nEpisodio de prueba\n{body} ## [00:00] ESMC diseña anticuerpos — una vista previa Este fragmento inicial está tomado de más adelante. ## [06:00] El linaje ESM: de ESM2 a ESMC Rives repasa cuatro generaciones de ESM. ## Entidades - **Alex Rives** (Persona): científico. - **swyx** (Persona): presentador.\n");
    let p = corpus::parse_file("es.txt", text.as_bytes());
    let e = &p.episodes[0];
    assert_eq!(e.lang, Lang::Es);
    let got: Vec<&str> = e.chapters.iter().map(|c| c.title.as_str()).collect();
    assert_eq!(
        got,
        [
            "ESMC diseña anticuerpos — una vista previa",
            "El linaje ESM: de ESM2 a ESMC"
        ]
    );
    assert_eq!(e.entities.len(), 2);
    assert_eq!(e.entities[0].kind, "Persona");
}

#[test]
fn quotes_with_and_without_speakers() {
    let text = page(&format!("{LONG} ## [00:00] Intro Jake says hi. > *\"Ship it.\"* — Jake Cooper > *plain quote without marks* > *[1, 05]* ## Entities - **Jake Cooper** (Person): CEO."));
    let p = corpus::parse_file("q.txt", text.as_bytes());
    let c = &p.episodes[0].chapters[0];
    assert_eq!(c.summary, "Jake says hi.");
    assert_eq!(c.quotes.len(), 2);
    assert_eq!(c.quotes[0].text, "Ship it.");
    assert_eq!(c.quotes[0].speaker.as_deref(), Some("Jake Cooper"));
    assert_eq!(c.quotes[1].text, "plain quote without marks");
    assert_eq!(c.quotes[1].at_s, Some(65));
}

fn diagnostics_for(name: &str, bytes: &[u8]) -> String {
    let p = corpus::parse_file(name, bytes);
    let mut out = format!(
        "episodes: {}, chapters: {}, skipped: {}\n",
        p.episodes.len(),
        p.chapter_count(),
        p.skipped_anything()
    );
    for d in &p.diagnostics {
        out.push_str(&format!("{d}\n"));
    }
    out
}

#[test]
fn bad_input_messages() {
    let bad_ts = page(&format!("{LONG} ## [00:00] Hook Fine chapter here. ## [7:7] Broken The timestamp is wrong. ## [02:00] Later Another good one."));
    let empty_chapter = page(&format!(
        "{LONG} ## [00:00] Hook Fine chapter here. ## [01:00] ## [02:00] Later Another good one."
    ));
    let mut not_utf8 = page(&format!("{LONG} ## [00:00] Hook Fine chapter here.")).into_bytes();
    not_utf8.extend_from_slice(b"Second Episode\n\xff\xfe broken bytes ## [00:00] Nope\n");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("bad_timestamp", bad_ts.into_bytes()),
        ("empty_chapter", empty_chapter.into_bytes()),
        ("not_utf8", not_utf8),
        ("empty_file", Vec::new()),
        ("no_episodes", b"just one line of chrome\n".to_vec()),
        ("bad_json", b"[{\"title\": \"A\", \"chapters\": [{\"title\": \"x\", \"start\": \"ab:cd\"}]}, {\"nope\": 1}]".to_vec()),
        ("bad_jsonl", b"{\"title\": \"Good\", \"chapters\": [{\"title\": \"One\", \"start\": 0}]}\n{not json\n".to_vec()),
        ("json_script_url", b"{\"title\": \"Linked\", \"url\": \"javascript:alert(1)\", \"chapters\": [{\"title\": \"One\", \"start\": 0}]}".to_vec()),
    ];
    let mut report = String::new();
    for (name, bytes) in &cases {
        let file = if name.contains("json") {
            format!("{name}.jsonl")
        } else {
            format!("{name}.txt")
        };
        report.push_str(&format!("== {name}\n{}", diagnostics_for(&file, bytes)));
    }
    insta::assert_snapshot!("bad_input_messages", report);
    // What is good in a bad file is still read.
    let p = corpus::parse_file("bad_timestamp.txt", &cases[0].1);
    assert_eq!(p.chapter_count(), 2);
    assert!(p.skipped_anything());
}

#[test]
fn structured_json_input() {
    let json = r#"[{"title": "Clean Episode", "url": "https://example.com/ep1", "language": "es",
        "description": "Una descripción.",
        "chapters": [{"title": "Uno", "start": "00:00", "summary": "Primero.", "quotes": ["Hola", {"text": "Adiós", "speaker": "Ana"}]},
                     {"title": "Dos", "start": 754, "summary": "Segundo."}],
        "entities": [{"name": "Ana", "type": "Persona", "description": "Invitada."}]}]"#;
    let p = corpus::parse_file("eps.json", json.as_bytes());
    assert!(p.diagnostics.is_empty(), "{:?}", p.diagnostics);
    let e = &p.episodes[0];
    assert_eq!(e.lang, Lang::Es);
    assert_eq!(e.url.as_deref(), Some("https://example.com/ep1"));
    assert_eq!(e.chapters[1].timestamp, "12:34");
    assert_eq!(e.chapters[0].end_s, Some(754));
    assert_eq!(e.chapters[0].quotes[1].speaker.as_deref(), Some("Ana"));
    let jsonl = "{\"title\": \"A\", \"chapters\": [{\"title\": \"One\", \"start\": 0}]}\n{\"title\": \"B\"}\n";
    assert_eq!(
        corpus::parse_file("eps.jsonl", jsonl.as_bytes())
            .episodes
            .len(),
        2
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
        let _ = corpus::parse_file("fuzz.txt", &bytes);
        let _ = corpus::parse_file("fuzz.json", &bytes);
    }

    #[test]
    fn random_markup_never_panics(parts in proptest::collection::vec(prop_oneof![
        Just("## [".to_string()), Just("] ".to_string()), Just("> *\"".to_string()), Just("\"* — ".to_string()),
        Just("{'start': 12.0, 'summary': '".to_string()), Just("## Entities - **".to_string()), Just("\n".to_string()),
        "[A-Za-z0-9:,. ]{0,40}".prop_map(|s| s)], 0..80)) {
        let text = parts.concat();
        let _ = corpus::parse_file("fuzz.txt", text.as_bytes());
    }
}
