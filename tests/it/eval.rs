//! The eval harness: metrics against a hand-computed example (checked with pytrec_eval), both
//! qrels formats, TREC run output, and the guard on the default configuration's dev-set quality.

use std::collections::HashMap;

use podseek::eval::{self, metrics, QueryMetrics, System};
use podseek::search::Mode;

use crate::fixtures::{data, default_engine, engine};

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

fn report(set: &str, split: &str) -> eval::Report {
    report_for(&engine(), set, split)
}

/// The harness's report for one engine on a question set's split (`all`, `tune`, `test`).
pub fn report_for(index: &podseek::search::SearchEngine, set: &str, split: &str) -> eval::Report {
    let chapter_lang: HashMap<_, _> = index
        .index()
        .records()
        .unwrap()
        .episodes
        .iter()
        .flat_map(|e| e.chapters.iter().map(|c| (c.id.clone(), c.lang)))
        .collect();
    let queries = eval::load_queries(&data(&format!("tests/data/{set}/queries.jsonl"))).unwrap();
    let queries = eval::select_split(queries, split).unwrap();
    let qrels = eval::load_qrels(&data(&format!("tests/data/{set}/qrels.tsv"))).unwrap();
    eval::evaluate(
        &System::Dense {
            engine: index,
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

/// The default configuration (translation included), on each question set, does not fall more
/// than 0.02 below what BENCHMARKS.md records for it (`recorded.json`), and keeps both directions
/// findable.
#[test]
fn default_quality_does_not_regress() {
    for (set, split) in [("dev", "all"), ("unseen", "test"), ("unseen", "tune")] {
        let report = report_for(&default_engine(), set, split);
        assert!(report.unjudged.is_empty(), "{set}: {:?}", report.unjudged);
        let recorded: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(data(&format!("tests/data/{set}/recorded.json"))).unwrap(),
        )
        .unwrap();
        let floor = recorded["ndcg_10"][split].as_f64().unwrap() - 0.02;
        let m = report.overall.metrics;
        assert!(
            m.ndcg_10 >= floor,
            "{set}/{split}: nDCG@10 {:.3} fell below {floor:.3}",
            m.ndcg_10
        );
        for pair in ["en→es", "es→en"] {
            let m = report.by_pair[pair].metrics;
            assert!(
                m.hit_10 >= 0.90 && m.mrr_10 >= 0.70,
                "{set}/{split} {pair}: {m:?}"
            );
        }
    }
}

/// The unseen-style set has the mix the issue asks for, in two halves with the same mix.
#[test]
fn unseen_set_shape() {
    let all = eval::load_queries(&data("tests/data/unseen/queries.jsonl")).unwrap();
    let qrels = eval::load_qrels(&data("tests/data/unseen/qrels.tsv")).unwrap();
    assert!(all.len() >= 200);
    let full = report("unseen", "all");
    let count = |p: &str| full.by_pair.get(p).map_or(0, |g| g.queries);
    assert!(
        count("en→es") >= 60 && count("es→en") >= 60,
        "{:?}",
        full.by_pair.keys()
    );
    assert!(count("en→en") + count("es→es") >= 40);
    assert!(full.by_kind["multi"].queries >= 20 && full.by_kind["quote"].queries >= 15);
    assert!(qrels.values().all(|j| j.values().any(|&g| g == 2)));
    let tune = all
        .iter()
        .filter(|q| q.split.as_deref() == Some("tune"))
        .count();
    assert!(
        tune.abs_diff(all.len() - tune) <= 10,
        "halves {tune} / {}",
        all.len() - tune
    );
}

#[test]
fn run_file_has_trec_columns() {
    let run = eval::trec_run(&report("dev", "all"), "podseek");
    let first = run.lines().next().unwrap();
    let cols: Vec<&str> = first.split(' ').collect();
    assert_eq!(
        (cols.len(), cols[1], cols[3], cols[5]),
        (6, "Q0", "1", "podseek"),
        "{first}"
    );
}

/// ir_measures (pytrec_eval underneath), a judge nobody here wrote, scores the harness's own TREC
/// run on the unseen set's test half and must agree with the harness's nDCG@10, RR@10 and R@100.
#[test]
fn ir_measures_agrees_with_the_harness() {
    let python = std::env::var("PODSEEK_JUDGE_PYTHON")
        .expect("PODSEEK_JUDGE_PYTHON: the virtualenv with ir_measures that scripts/test.sh makes");
    let report = report("unseen", "test");
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run.trec");
    std::fs::write(&run, eval::trec_run(&report, "podseek")).unwrap();
    let qrels = eval::load_qrels(&data("tests/data/unseen/qrels.tsv")).unwrap();
    let mut trec = String::new();
    for (qid, judged) in qrels
        .iter()
        .filter(|(q, _)| report.per_query.contains_key(*q))
    {
        for (doc, grade) in judged {
            trec.push_str(&format!("{qid} 0 {doc} {grade}\n"));
        }
    }
    let qrels_path = dir.path().join("qrels.trec");
    std::fs::write(&qrels_path, trec).unwrap();
    let script = "import ir_measures, json, sys\n\
        from ir_measures import nDCG, RR, R\n\
        qrels = list(ir_measures.read_trec_qrels(sys.argv[1]))\n\
        run = list(ir_measures.read_trec_run(sys.argv[2]))\n\
        agg = ir_measures.calc_aggregate([nDCG@10, RR@10, R@100], qrels, run)\n\
        print(json.dumps({str(k): v for k, v in agg.items()}))";
    let out = std::process::Command::new(python)
        .args(["-c", script])
        .arg(&qrels_path)
        .arg(&run)
        .output()
        .expect("run the judge");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let judged: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let m = report.overall.metrics;
    for (name, ours) in [
        ("nDCG@10", m.ndcg_10),
        ("RR@10", m.mrr_10),
        ("R@100", m.recall_100),
    ] {
        let theirs = judged[name].as_f64().unwrap();
        assert!(
            (theirs - ours).abs() < 1e-6,
            "{name}: ir_measures {theirs}, podseek {ours}"
        );
    }
}
