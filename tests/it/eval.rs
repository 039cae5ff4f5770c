//! The eval harness: metrics against a hand-computed example (checked with pytrec_eval), both
//! qrels formats, TREC run output, and the guard on the default configuration's dev-set quality.

use std::collections::HashMap;

use podseek::eval::{self, metrics, QueryMetrics, System};
use podseek::search::Mode;

use crate::fixtures::{data, engine};

fn ranked(ids: &[&str]) -> Vec<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

#[test]
fn metrics_match_a_hand_checked_example() {
    // Graded qrels d1=2, d2=1, d4=1 (d3 judged 0); run d3, d1, d5, d4, d2.
    // DCG = 2/log2(3) + 1/log2(5) + 1/log2(6); IDCG = 2 + 1/log2(3) + 1/log2(4).
    // pytrec_eval (trec_eval 9.0.8 definitions) gives ndcg_cut_10 = 0.6641442115010364,
    // recip_rank = 0.5, recall_1 = 0.0, recall_5 = 1.0 for this input.
    let judged: metrics::Judgments = [("d1", 2), ("d2", 1), ("d3", 0), ("d4", 1)]
        .into_iter()
        .map(|(d, g)| (d.to_string(), g))
        .collect();
    let run = ranked(&["d3", "d1", "d5", "d4", "d2"]);
    let m = QueryMetrics::compute(&run, &judged, 3);
    assert!(
        (m.ndcg_10 - 0.6641442115010364).abs() < 1e-12,
        "{}",
        m.ndcg_10
    );
    assert_eq!(
        (m.mrr_10, m.recall_1, m.recall_5, m.hit_1, m.hit_5),
        (0.5, 0.0, 1.0, 0.0, 1.0)
    );
    assert_eq!(metrics::recall_at(&run, &judged, 3), 1.0 / 3.0);
    assert_eq!(m.hit_k, 1.0, "Hit@3: d1 at rank 2");
    // No relevant document retrieved: all zero; perfect ranking: nDCG 1.
    assert_eq!(
        QueryMetrics::compute(&ranked(&["x"]), &judged, 10).ndcg_10,
        0.0
    );
    assert!(
        (QueryMetrics::compute(&ranked(&["d1", "d2", "d4"]), &judged, 10).ndcg_10 - 1.0).abs()
            < 1e-12
    );
}

#[test]
fn beir_and_trec_qrels_read_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let beir = dir.path().join("qrels.tsv");
    let trec = dir.path().join("qrels.trec");
    std::fs::write(
        &beir,
        "query-id\tcorpus-id\tscore\nq1\td1\t2\nq1\td2\t0\nq2\td9\t1\n",
    )
    .unwrap();
    std::fs::write(&trec, "q1 0 d1 2\nq1 0 d2 0\nq2 0 d9 1\n").unwrap();
    assert_eq!(
        eval::load_qrels(&beir).unwrap(),
        eval::load_qrels(&trec).unwrap()
    );
    std::fs::write(&trec, "q1 0 d1 x\n").unwrap();
    let err = eval::load_qrels(&trec).unwrap_err().to_string();
    assert!(
        err.contains("qrels.trec:1") && err.contains("not an integer"),
        "{err}"
    );
}

fn dev_report() -> eval::Report {
    let index = engine();
    let chapter_lang: HashMap<_, _> = index
        .index()
        .records
        .episodes
        .iter()
        .flat_map(|e| e.chapters.iter().map(|c| (c.id.clone(), c.lang)))
        .collect();
    let queries = eval::load_queries(&data("tests/data/dev/queries.jsonl")).unwrap();
    let qrels = eval::load_qrels(&data("tests/data/dev/qrels.tsv")).unwrap();
    eval::evaluate(
        &System::Dense {
            engine: &index,
            mode: Mode::Ann,
        },
        &queries,
        &qrels,
        &chapter_lang,
        serde_json::json!({}),
        10,
    )
    .unwrap()
}

#[test]
fn dev_set_shape_and_default_quality_does_not_regress() {
    let report = dev_report();
    assert!(report.overall.queries >= 80 && report.unjudged.is_empty());
    assert!(report.by_pair["en→es"].queries >= 25 && report.by_pair["es→en"].queries >= 25);
    let recorded: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(data("tests/data/dev/recorded.json")).unwrap(),
    )
    .unwrap();
    let floor = recorded["ndcg_10"].as_f64().unwrap() - 0.05;
    assert!(
        report.overall.metrics.ndcg_10 >= floor,
        "nDCG@10 {:.3} fell below {floor:.3}",
        report.overall.metrics.ndcg_10
    );
    for pair in ["en→es", "es→en"] {
        let m = report.by_pair[pair].metrics;
        assert!(m.hit_10 >= 0.90 && m.mrr_10 >= 0.70, "{pair}: {m:?}");
    }
    let run = eval::trec_run(&report, "podseek");
    let first = run.lines().next().unwrap();
    let cols: Vec<&str> = first.split(' ').collect();
    assert_eq!(
        (cols.len(), cols[1], cols[3], cols[5]),
        (6, "Q0", "1", "podseek"),
        "{first}"
    );
}
