//! The real models: parity with reference vectors (Python onnxruntime for use-m3 and e5, an
//! independent numpy forward pass for EmbeddingGemma), cross-lingual behaviour for each model, the
//! ensemble's construction, Matryoshka truncation, long texts, and a missing runtime.

use podseek::embed::{dot, Embedder};
use serde_json::Value;
use std::sync::Arc;

use crate::fixtures::{bin, data, default_model, e5, ensemble, use_m3};

fn reference() -> Value {
    read_json("tests/data/reference_vectors.json")
}

fn read_json(path: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(data(path)).unwrap()).unwrap()
}

fn strings(v: &Value, key: &str) -> Vec<String> {
    v[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect()
}

fn vectors(v: &Value, key: &str) -> Vec<Vec<f32>> {
    v[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            row.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect()
        })
        .collect()
}

/// The default model (EmbeddingGemma, 8-bit linear layers, int8 embedding table) against the fp32
/// numpy reference: the conversion must keep cos ≥ 0.999 for questions and documents in both
/// languages, and reproduce the model card's example similarities.
#[test]
fn embeddinggemma_parity_with_numpy_reference() {
    let r = read_json("tests/data/gemma_reference.json");
    let m = default_model();
    assert_eq!(m.model_id(), "embeddinggemma");
    let queries = strings(&r, "queries");
    let documents = strings(&r, "documents");
    let q: Vec<Vec<f32>> = queries.iter().map(|t| m.embed_query(t).unwrap()).collect();
    let doc_refs: Vec<&str> = documents.iter().map(String::as_str).collect();
    let d = m.embed_passages(&doc_refs).unwrap();
    for (got, want) in q.iter().zip(vectors(&r, "query_vectors")) {
        assert!(
            crate::fixtures::cosine(got, &want) >= 0.999,
            "query cos {}",
            crate::fixtures::cosine(got, &want)
        );
    }
    for (got, want) in d.iter().zip(vectors(&r, "document_vectors")) {
        assert!(
            crate::fixtures::cosine(got, &want) >= 0.999,
            "document cos {}",
            crate::fixtures::cosine(got, &want)
        );
    }
    // Model card: "Which planet is known as the Red Planet?" vs four planets. A wiring check, not the
    // fidelity bar (the cosines above are): int8 rounding moves these four dot products by up to
    // 0.006 between graphs of like fidelity (static-scale graphs with bounds 0.8-1.15 times the
    // calibrated maxima: 0.0023-0.0056, each with mean cosine ≥ 0.9990 to fp32 over 608 texts), and
    // Mars must stay first.
    let card = [0.3011, 0.6359, 0.4930, 0.4889];
    for (doc, want) in d.iter().zip(card) {
        let got = dot(&q[0], doc);
        assert!(
            (got - want).abs() < 0.01,
            "card similarity {got:.4} vs {want}"
        );
    }
    let best = (0..4).max_by(|&a, &b| dot(&q[0], &d[a]).total_cmp(&dot(&q[0], &d[b])));
    assert_eq!(best, Some(1), "Mars is the Red Planet");
}

#[test]
fn matryoshka_dims_are_the_renormalized_prefix() {
    let small = podseek::embed::load("embeddinggemma@256", 1).unwrap();
    assert_eq!(
        (small.model_id(), small.dims()),
        ("embeddinggemma@256", 256)
    );
    let text = "¿Cuánto cuesta almacenar vídeo para entrenar modelos?";
    let full = default_model().embed_query(text).unwrap();
    let cut = small.embed_query(text).unwrap();
    assert!((dot(&cut, &cut) - 1.0).abs() < 1e-5);
    assert!(crate::fixtures::cosine(&cut, &full[..256]) > 0.99999);
    let err = podseek::embed::load("embeddinggemma@300", 1)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("[512, 256, 128]"), "{err}");
}

#[test]
fn parity_with_python_onnxruntime() {
    let r = reference();
    let texts = strings(&r, "texts");
    let (u, e) = (use_m3(), e5());
    for (i, t) in texts.iter().enumerate() {
        let c = crate::fixtures::cosine(&u.embed_query(t).unwrap(), &vectors(&r, "use-m3")[i]);
        assert!(c >= 0.9999, "use-m3 text {i}: cos {c}");
        let c = crate::fixtures::cosine(
            &e.embed_query(t).unwrap(),
            &vectors(&r, "e5-small/query")[i],
        );
        assert!(c >= 0.9999, "e5 query text {i}: cos {c}");
        let c = crate::fixtures::cosine(
            &e.embed_passages(&[t.as_str()]).unwrap()[0],
            &vectors(&r, "e5-small/passage")[i],
        );
        assert!(c >= 0.9999, "e5 passage text {i}: cos {c}");
    }
}

#[test]
fn paraphrases_across_languages_are_closer_than_unrelated_text() {
    let pairs = [
        (
            "How do protein language models learn structure?",
            "¿Cómo aprenden estructura los modelos de lenguaje de proteínas?",
        ),
        (
            "Drones changed the war in Ukraine.",
            "Los drones cambiaron la guerra en Ucrania.",
        ),
        (
            "The company moved from the cloud to its own servers.",
            "La empresa pasó de la nube a sus propios servidores.",
        ),
    ];
    let models: Vec<(&str, std::sync::Arc<dyn Embedder>)> = vec![
        ("use-m3", use_m3()),
        ("e5-small", e5()),
        ("use-m3+e5", ensemble()),
        ("embeddinggemma", default_model()),
    ];
    for (name, m) in models {
        for (i, (en, es)) in pairs.iter().enumerate() {
            let q = m.embed_query(en).unwrap();
            let same = dot(&q, &m.embed_passages(&[es]).unwrap()[0]);
            for (j, (_, other)) in pairs.iter().enumerate() {
                if i != j {
                    let unrelated = dot(&q, &m.embed_passages(&[other]).unwrap()[0]);
                    assert!(
                        same > unrelated,
                        "{name}: `{en}` → translation {same:.3} vs unrelated {unrelated:.3}"
                    );
                }
            }
        }
    }
}

#[test]
fn ensemble_is_the_scaled_concatenation() {
    let text = "Cross-lingual retrieval of podcast chapters";
    let (a, b, both) = (
        use_m3().embed_query(text).unwrap(),
        e5().embed_query(text).unwrap(),
        ensemble().embed_query(text).unwrap(),
    );
    assert_eq!(both.len(), 896);
    assert_eq!(ensemble().dims(), 896);
    let s = std::f32::consts::FRAC_1_SQRT_2;
    for (x, y) in both.iter().zip(a.iter().chain(&b)) {
        assert!((x - y * s).abs() < 1e-5);
    }
    assert!((dot(&both, &both) - 1.0).abs() < 1e-4, "unit length");
}

#[test]
fn long_passages_are_windowed_not_truncated() {
    let e = e5();
    let head = "Protein language models learn structure from sequences alone. ".repeat(60);
    let tail = "Drones and jamming dominate the front line in Ukraine. ".repeat(60);
    let long = format!("{head}{tail}");
    let v_long = &e.embed_passages(&[long.as_str()]).unwrap()[0];
    let v_head = &e.embed_passages(&[head.as_str()]).unwrap()[0];
    let v_tail = &e.embed_passages(&[tail.as_str()]).unwrap()[0];
    // Truncation would make the long text equal to its head; windows let the tail count too.
    assert!(
        dot(v_long, v_tail) > 0.8,
        "tail represented: {}",
        dot(v_long, v_tail)
    );
    assert!(dot(v_long, v_head) < 0.999);
}

#[test]
fn batch_order_does_not_change_vectors() {
    let m = use_m3();
    let texts = [
        "short",
        "a somewhat longer sentence about podcasts and chapters",
        "medium length text here",
    ];
    assert_same_alone_as_together(m.as_ref(), &texts, 0.999);
}

/// Each passage's vector, embedded alone, matches its vector from one call with all `texts`.
fn assert_same_alone_as_together(m: &dyn Embedder, texts: &[&str], min_cos: f32) {
    let together = m.embed_passages(texts).unwrap();
    for (t, v) in texts.iter().zip(&together) {
        let alone = m.embed_passages(&[t]).unwrap().remove(0);
        assert!(
            crate::fixtures::cosine(v, &alone) > min_cos,
            "{t}: cos {}",
            crate::fixtures::cosine(v, &alone)
        );
    }
}

#[test]
fn missing_runtime_library_is_a_clear_error() {
    let out = std::process::Command::new(bin())
        .args(["embed", "--model", "use-m3", "hello"])
        .env("ORT_DYLIB_PATH", "/nonexistent/libonnxruntime.so")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("ONNX Runtime library is missing at /nonexistent/libonnxruntime.so"),
        "{err}"
    );
    assert!(err.contains("Fix: bash models/fetch.sh"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn embed_command_prints_vectors() {
    let out = std::process::Command::new(bin())
        .args(["embed", "--model", "use-m3", "hola", "hello"])
        .current_dir(crate::fixtures::root())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["dims"], 512);
    assert_eq!(v["embeddings"].as_array().unwrap().len(), 2);
    assert_eq!(v["embeddings"][0]["vector"].as_array().unwrap().len(), 512);
}

/// Questions asked at the same time are embedded together in one call; each still gets its own
/// vector, the same as when asked alone.
#[test]
fn concurrent_questions_get_their_own_vectors() {
    let m = default_model();
    let questions: Vec<String> = (0..12)
        .map(|i| format!("What did guest number {i} say about drones, proteins or video models?"))
        .collect();
    let alone: Vec<Vec<f32>> = questions
        .iter()
        .map(|q| m.embed_query(q).unwrap())
        .collect();
    let together = ask_at_once(&m, &questions);
    for (i, (a, b)) in alone.iter().zip(&together).enumerate() {
        assert!(
            crate::fixtures::cosine(a, b) > 0.99999,
            "question {i}: cos {}",
            crate::fixtures::cosine(a, b)
        );
    }
    // Different questions really got different vectors (no mix-up between callers).
    assert!(crate::fixtures::cosine(&together[0], &together[1]) < 0.9999);
}

/// Every question asked at once, one thread each; their vectors in the questions' order.
fn ask_at_once(m: &Arc<dyn Embedder>, questions: &[String]) -> Vec<Vec<f32>> {
    std::thread::scope(|s| {
        let handles: Vec<_> = questions
            .iter()
            .map(|q| s.spawn(move || m.embed_query(q).unwrap()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// Passages run on the same sessions as questions (an ingest inside a serving process): questions
/// asked while passages embed are answered, and both get the vectors they get alone.
#[test]
fn questions_during_passages_get_their_own_vectors() {
    let m = default_model();
    let passages: Vec<String> = (0..24)
        .map(|i| format!("Chapter {i}: the guest explains how inspection drones replaced rope access, what the batteries cost, and why the insurers agreed. {}", "More detail follows. ".repeat(i % 5)))
        .collect();
    let passage_refs: Vec<&str> = passages.iter().map(String::as_str).collect();
    let questions: Vec<String> = (0..6)
        .map(|i| format!("¿Qué dijo el invitado {i} sobre los drones y las baterías?"))
        .collect();
    let passages_alone = m.embed_passages(&passage_refs).unwrap();
    let questions_alone: Vec<Vec<f32>> = questions
        .iter()
        .map(|q| m.embed_query(q).unwrap())
        .collect();
    let (passages_during, questions_during) = std::thread::scope(|s| {
        let ingest = s.spawn(|| m.embed_passages(&passage_refs).unwrap());
        let asked = ask_at_once(&m, &questions);
        (ingest.join().unwrap(), asked)
    });
    let pairs = passages_alone
        .iter()
        .zip(&passages_during)
        .chain(questions_alone.iter().zip(&questions_during));
    for (i, (a, b)) in pairs.enumerate() {
        let cos = crate::fixtures::cosine(a, b);
        assert!(cos > 0.99999, "vector {i}: cos {cos}");
    }
}

/// A question asked during a long passage embed (an ingest inside a serving process) is answered
/// after a call or two, not after the passages: the two take turns at the lanes.
#[test]
fn a_question_during_passages_is_answered_before_they_finish() {
    let m = default_model();
    let passages: Vec<String> = (0..96)
        .map(|i| {
            format!(
                "Part {i}. {}",
                "The guest explains how inspection drones replaced rope access on wind turbines. "
                    .repeat(6)
            )
        })
        .collect();
    let passage_refs: Vec<&str> = passages.iter().map(String::as_str).collect();
    let (passages_done, question_done) = std::thread::scope(|s| {
        let ingest = s.spawn(|| {
            m.embed_passages(&passage_refs).unwrap();
            std::time::Instant::now()
        });
        std::thread::sleep(std::time::Duration::from_millis(300));
        m.embed_query("¿Qué dijo el invitado sobre las baterías?")
            .unwrap();
        let question_done = std::time::Instant::now();
        (ingest.join().unwrap(), question_done)
    });
    assert!(
        question_done + std::time::Duration::from_millis(500) < passages_done,
        "the question waited for the passages: answered {:?} before they finished",
        passages_done.saturating_duration_since(question_done)
    );
}

/// The default graph quantizes activations with stored scales, not scales computed over each call's
/// tensor: a passage's vector must not depend on the other passages in its call, nor on the padding
/// a longer one forces on it.
#[test]
fn passages_do_not_depend_on_their_batch() {
    let m = default_model();
    let texts = [
        "Drones.",
        "A founder explains why inspection drones replaced rope access on wind turbines, and what it cost.",
        "¿Cuánto cuesta entrenar un modelo de vídeo? El invitado habla de GPUs, datos y licencias durante \
         media hora, con cifras de su propia empresa y de sus competidores.",
    ];
    assert_same_alone_as_together(m.as_ref(), &texts, 0.99999);
}

/// The first open of a model saves its optimized graph beside it; the next open uses that copy and
/// gives the same vectors; a damaged copy is replaced, not trusted.
#[test]
fn optimized_graph_is_kept_and_reused() {
    let dir = tempfile::tempdir().unwrap();
    let models = crate::fixtures::root().join("models/use-m3");
    for name in ["model.json", "model.onnx", "tokenizer.json"] {
        std::fs::copy(models.join(name), dir.path().join(name)).unwrap();
    }
    let path = dir.path().to_str().unwrap();
    let text = "¿Qué dijo la invitada sobre los drones?";
    let first = podseek::embed::load(path, 1)
        .unwrap()
        .embed_query(text)
        .unwrap();
    let kept: Vec<_> = std::fs::read_dir(dir.path().join(".optimized"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert!(kept[0].join("model.onnx").is_file() && kept[0].join("weights.bin").is_file());
    let again = podseek::embed::load(path, 1)
        .unwrap()
        .embed_query(text)
        .unwrap();
    assert!(crate::fixtures::cosine(&first, &again) > 0.999999);

    std::fs::write(kept[0].join("model.onnx"), b"not a model").unwrap();
    let repaired = podseek::embed::load(path, 1)
        .unwrap()
        .embed_query(text)
        .unwrap();
    assert!(crate::fixtures::cosine(&first, &repaired) > 0.999999);
    assert!(std::fs::metadata(kept[0].join("model.onnx")).unwrap().len() > 1000);
}
