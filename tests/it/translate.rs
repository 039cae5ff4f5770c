//! The translation stage with the real Apertium (Debian's apertium + apertium-eng-spa): both
//! directions through the long-lived pipelines, order and empties kept, stream-format characters
//! passed through, and search with a translated question finding the chapter that answers.

use std::sync::Arc;

use podseek::corpus::Lang;
use podseek::search::Query;
use podseek::translate::{Apertium, Translator};

use crate::fixtures::{default_model, sample_index_dir};

fn apertium() -> Apertium {
    Apertium::new()
        .expect("Apertium (apt-get install apertium apertium-eng-spa; scripts/test.sh installs it)")
}

#[test]
fn both_directions_keep_order_and_empties() {
    let t = apertium();
    let es = t
        .translate(
            &[
                "My friend sells cheap drones.",
                "",
                "The price [of] the <cable> is $32/km.",
            ],
            Lang::En,
            Lang::Es,
        )
        .unwrap();
    assert_eq!(es.len(), 3);
    assert!(es[0].contains("amigo"), "{es:?}");
    assert_eq!(es[1], "");
    assert!(es[2].contains("[") && es[2].contains("32"), "{es:?}");
    let en = t
        .translate(&["¿Cuánto cuesta almacenar los datos?"], Lang::Es, Lang::En)
        .unwrap();
    assert!(en[0].to_lowercase().contains("data"), "{en:?}");
    // The pipelines stay alive: a second call goes through the same processes.
    let again = t.translate(&["Hello"], Lang::En, Lang::Es).unwrap();
    assert!(again[0].contains("Hola"), "{again:?}");
}

#[test]
fn search_with_a_translated_question() {
    let index = podseek::index::Index::open(sample_index_dir(), None).unwrap();
    let engine = podseek::search::SearchEngine::new(index, default_model())
        .unwrap()
        .with_translator(Arc::new(apertium()));
    assert_eq!(engine.translator_id(), Some("apertium"));
    let hits = engine
        .search(&Query {
            text: "¿Cuánto cuesta guardar los vídeos para entrenar un modelo?".into(),
            k: Some(3),
            ..Default::default()
        })
        .unwrap();
    assert!(
        hits.iter()
            .any(|h| h.chapter_title == "The Cost of Training Large Video Models"),
        "{:?}",
        hits.iter().map(|h| &h.chapter_title).collect::<Vec<_>>()
    );
}
