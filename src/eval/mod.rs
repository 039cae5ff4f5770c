//! Evaluation: retrieval quality against judged queries, and ANN fidelity and speed.
//!
//! Owns the input formats IR people use (BEIR `queries.jsonl` + qrels TSV with a header, or TREC
//! qrels `qid 0 docid rel`), the metrics (`metrics`, matching trec_eval), the breakdowns podseek
//! cares about (query kind, query → chapter language pair, the cross-lingual gap), TREC run files,
//! the BM25 baseline (`search::keyword`) and the benchmarks (`bench`). Documents are chapters, named by the
//! chapter ids podseek prints. It reads files but knows nothing of HTTP.

pub mod attack;
pub mod bench;
pub mod hearing;
pub mod load;
pub mod metrics;
pub mod scale;

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

pub use metrics::{Judgments, QueryMetrics};

use crate::corpus::Lang;
use crate::error::{Error, Result};
use crate::search::{Mode, SearchEngine};

/// Ranked documents retrieved per query (Recall@100 needs 100).
pub const RUN_DEPTH: usize = 100;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EvalQuery {
    #[serde(rename = "_id")]
    pub id: String,
    pub text: String,
    #[serde(default)]
    pub lang: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
    /// `tune` or `test` in a split query set: parameters are chosen on one half, reported on the other.
    #[serde(default)]
    pub split: Option<String>,
}

/// The queries of one half of a split set (`tune`, `test`), or all of them for `all`.
pub fn select_split(queries: Vec<EvalQuery>, split: &str) -> Result<Vec<EvalQuery>> {
    if split == "all" {
        return Ok(queries);
    }
    let chosen: Vec<EvalQuery> = queries
        .into_iter()
        .filter(|q| q.split.as_deref() == Some(split))
        .collect();
    if chosen.is_empty() {
        return Err(Error::invalid(
            "--split",
            format!(
                "no query has \"split\": \"{split}\" (use `all`, or a set with tune/test halves)"
            ),
        ));
    }
    Ok(chosen)
}

pub fn load_queries(path: &Path) -> Result<Vec<EvalQuery>> {
    let text = std::fs::read_to_string(path).map_err(Error::io(path))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let q: EvalQuery = serde_json::from_str(line).map_err(|e| {
            Error::invalid(
                format!("{}:{}", path.display(), i + 1),
                format!("not a query object with _id and text: {e}"),
            )
        })?;
        out.push(q);
    }
    Ok(out)
}

/// Qrels in BEIR TSV (`query-id corpus-id score`, header line) or TREC (`qid 0 docid rel`) form.
pub fn load_qrels(path: &Path) -> Result<HashMap<String, Judgments>> {
    let text = std::fs::read_to_string(path).map_err(Error::io(path))?;
    let mut out: HashMap<String, Judgments> = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.is_empty()
            || (i == 0
                && cols
                    .first()
                    .is_some_and(|c| c.eq_ignore_ascii_case("query-id")))
        {
            continue;
        }
        let (qid, doc, grade) = match cols.as_slice() {
            [q, d, g] => (q, d, g),
            [q, _, d, g] => (q, d, g),
            _ => {
                return Err(Error::invalid(
                    format!("{}:{}", path.display(), i + 1),
                    "expected `query-id corpus-id score` or `qid 0 docid rel`",
                ))
            }
        };
        let grade: i64 = grade.parse().map_err(|_| {
            Error::invalid(
                format!("{}:{}", path.display(), i + 1),
                format!("relevance `{grade}` is not an integer"),
            )
        })?;
        out.entry(qid.to_string())
            .or_default()
            .insert(doc.to_string(), grade.max(0) as u32);
    }
    Ok(out)
}

/// What is evaluated: the search engine as configured (ANN or exact) or the BM25 baseline.
pub enum System<'a> {
    Dense {
        engine: &'a SearchEngine,
        mode: Mode,
    },
    Bm25(&'a crate::search::keyword::Bm25),
}

impl System<'_> {
    fn retrieve(&self, text: &str) -> Result<Vec<(String, f32)>> {
        match self {
            System::Dense { engine, mode } => {
                let q = crate::search::Query {
                    text: text.to_string(),
                    k: Some(RUN_DEPTH),
                    mode: *mode,
                    ..Default::default()
                };
                Ok(engine
                    .search(&q)?
                    .into_iter()
                    .map(|h| (h.chapter_id, h.score))
                    .collect())
            }
            System::Bm25(b) => b.search(text, RUN_DEPTH),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Group {
    pub queries: usize,
    pub metrics: QueryMetrics,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Model, index manifest, parameters and commit: what produced these numbers.
    pub manifest: serde_json::Value,
    /// The k of the Hit@k column.
    pub k: usize,
    pub overall: Group,
    pub by_kind: BTreeMap<String, Group>,
    /// `en→es`, `es→en`, `en→en`, …: query language → language of its relevant chapters.
    pub by_pair: BTreeMap<String, Group>,
    /// nDCG@10 on same-language queries minus nDCG@10 on cross-language queries.
    pub cross_lingual_gap: f64,
    pub per_query: BTreeMap<String, QueryMetrics>,
    #[serde(skip)]
    pub run: Vec<(String, Vec<(String, f32)>)>,
    /// Queries without judgments (left out of the means).
    pub unjudged: Vec<String>,
}

fn group(items: &[QueryMetrics]) -> Group {
    Group {
        queries: items.len(),
        metrics: QueryMetrics::mean(items),
    }
}

/// The scores of the queries run so far, in the groups a report shows.
#[derive(Default)]
struct Tally {
    all: Vec<QueryMetrics>,
    kinds: BTreeMap<String, Vec<QueryMetrics>>,
    pairs: BTreeMap<String, Vec<QueryMetrics>>,
    /// Queries whose relevant chapters are all in the question's language, or all in the other.
    same: Vec<QueryMetrics>,
    cross: Vec<QueryMetrics>,
    per_query: BTreeMap<String, QueryMetrics>,
}

impl Tally {
    fn add(
        &mut self,
        q: &EvalQuery,
        m: QueryMetrics,
        judged: &Judgments,
        chapter_lang: &HashMap<String, Lang>,
    ) {
        let qlang = q
            .lang
            .as_deref()
            .and_then(Lang::from_code)
            .unwrap_or_else(|| Lang::detect(&q.text));
        let mut rel_langs: Vec<Lang> = judged
            .iter()
            .filter(|(_, &g)| g > 0)
            .filter_map(|(d, _)| chapter_lang.get(d).copied())
            .collect();
        rel_langs.sort();
        rel_langs.dedup();
        let target = match rel_langs.as_slice() {
            [one] => one.code().to_string(),
            _ => "mixed".to_string(),
        };
        match rel_langs.as_slice() {
            [one] if *one == qlang => self.same.push(m),
            [_] => self.cross.push(m),
            _ => {}
        }
        self.pairs
            .entry(format!("{}→{}", qlang.code(), target))
            .or_default()
            .push(m);
        self.kinds
            .entry(q.kind.clone().unwrap_or_else(|| "unlabelled".into()))
            .or_default()
            .push(m);
        self.all.push(m);
        self.per_query.insert(q.id.clone(), m);
    }

    /// nDCG@10 of same-language queries less that of cross-language ones (0 unless both exist).
    fn cross_lingual_gap(&self) -> f64 {
        if self.same.is_empty() || self.cross.is_empty() {
            return 0.0;
        }
        QueryMetrics::mean(&self.same).ndcg_10 - QueryMetrics::mean(&self.cross).ndcg_10
    }
}

/// Run every judged query and score it. `chapter_lang` gives each chapter's language.
pub fn evaluate(
    system: &System,
    queries: &[EvalQuery],
    qrels: &HashMap<String, Judgments>,
    chapter_lang: &HashMap<String, Lang>,
    manifest: serde_json::Value,
    k: usize,
) -> Result<Report> {
    let mut tally = Tally::default();
    let mut run = Vec::new();
    let mut unjudged = Vec::new();
    for q in queries {
        let Some(judged) = qrels.get(&q.id).filter(|j| j.values().any(|&g| g > 0)) else {
            unjudged.push(q.id.clone());
            continue;
        };
        let found = system.retrieve(&q.text)?;
        let ranked: Vec<String> = found.iter().map(|(d, _)| d.clone()).collect();
        tally.add(
            q,
            QueryMetrics::compute(&ranked, judged, k),
            judged,
            chapter_lang,
        );
        run.push((q.id.clone(), found));
    }
    Ok(Report {
        manifest,
        k,
        overall: group(&tally.all),
        by_kind: tally
            .kinds
            .iter()
            .map(|(k, v)| (k.clone(), group(v)))
            .collect(),
        by_pair: tally
            .pairs
            .iter()
            .map(|(k, v)| (k.clone(), group(v)))
            .collect(),
        cross_lingual_gap: tally.cross_lingual_gap(),
        per_query: tally.per_query,
        run,
        unjudged,
    })
}

/// `qid Q0 docid rank score tag`, for trec_eval or ir_measures.
pub fn trec_run(report: &Report, tag: &str) -> String {
    let mut out = String::new();
    for (qid, docs) in &report.run {
        for (rank, (doc, score)) in docs.iter().enumerate() {
            let _ = writeln!(out, "{qid} Q0 {doc} {} {score:.6} {tag}", rank + 1);
        }
    }
    out
}

/// One slice's row; the Hit@k column only when k is not one of the fixed 5 and 10.
fn group_row(name: &str, g: &Group, k: usize) -> String {
    let m = &g.metrics;
    let extra = if k == 5 || k == 10 {
        String::new()
    } else {
        format!(" {:.3} |", m.hit_k)
    };
    format!(
        "| {name} | {} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} |{extra}\n",
        g.queries,
        m.ndcg_10,
        m.mrr_10,
        m.recall_1,
        m.recall_5,
        m.recall_10,
        m.recall_100,
        m.hit_5,
        m.hit_10,
    )
}

/// The report as Markdown tables, with the manifest line on top.
pub fn render(report: &Report) -> String {
    let mut out = format!("manifest: {}\n\n", report.manifest);
    let k = report.k;
    let (extra_head, extra_rule) = if k == 5 || k == 10 {
        (String::new(), "")
    } else {
        (format!(" Hit@{k} |"), "---|")
    };
    out.push_str(&format!(
        "| slice | queries | nDCG@10 | MRR@10 | R@1 | R@5 | R@10 | R@100 | Hit@5 | Hit@10 |{extra_head}\n|---|---|---|---|---|---|---|---|---|---|{extra_rule}\n"
    ));
    out.push_str(&group_row("all", &report.overall, k));
    for (name, g) in &report.by_kind {
        out.push_str(&group_row(&format!("kind: {name}"), g, k));
    }
    for (name, g) in &report.by_pair {
        out.push_str(&group_row(&format!("lang: {name}"), g, k));
    }
    let _ = writeln!(
        out,
        "\ncross-lingual gap (nDCG@10 same-language − cross-language): {:+.3}",
        report.cross_lingual_gap
    );
    if !report.unjudged.is_empty() {
        let _ = writeln!(
            out,
            "queries without judgments, left out: {}",
            report.unjudged.join(", ")
        );
    }
    out
}

/// The header for `row`: overall, each cross-lingual direction, same-language (both, and Spanish
/// alone, since Spanish questions over a mostly English corpus are where language bias shows), kinds.
pub const ROW_HEADER: &str = "| system | nDCG@10 | MRR@10 | Hit@10 | en→es nDCG / Hit@10 | es→en nDCG / Hit@10 | same-language nDCG | es→es nDCG | quote nDCG | multi nDCG |\n|---|---|---|---|---|---|---|---|---|---|";

/// One Markdown row summarizing a report, for baseline tables.
pub fn row(label: &str, r: &Report) -> String {
    let pair = |p: &str| {
        r.by_pair.get(p).map_or("–".to_string(), |g| {
            format!("{:.3} / {:.3}", g.metrics.ndcg_10, g.metrics.hit_10)
        })
    };
    let ndcg =
        |g: Option<&Group>| g.map_or("–".to_string(), |g| format!("{:.3}", g.metrics.ndcg_10));
    let same: Vec<QueryMetrics> = ["en→en", "es→es"]
        .iter()
        .filter_map(|p| r.by_pair.get(*p))
        .flat_map(|g| std::iter::repeat_n(g.metrics, g.queries))
        .collect();
    let m = &r.overall.metrics;
    format!(
        "| {label} | {:.3} | {:.3} | {:.3} | {} | {} | {:.3} | {} | {} | {} |",
        m.ndcg_10,
        m.mrr_10,
        m.hit_10,
        pair("en→es"),
        pair("es→en"),
        QueryMetrics::mean(&same).ndcg_10,
        ndcg(r.by_pair.get("es→es")),
        ndcg(r.by_kind.get("quote")),
        ndcg(r.by_kind.get("multi")),
    )
}
