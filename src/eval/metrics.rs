//! IR metrics per query, as trec_eval / pytrec_eval define them (the definitions BEIR reports):
//! - nDCG@k: DCG = Σ gain_i / log2(i + 1) over ranks i = 1..k with linear gain = graded relevance;
//!   ideal DCG from the qrels' relevance grades sorted descending (`ndcg_cut_k`).
//! - MRR@k: 1 / rank of the first result with relevance > 0 within k, else 0 (`recip_rank` cut at k).
//! - Recall@k: relevant (rel > 0) in the top k / all relevant (`recall_k`).
//! - Hit@k: 1 when any relevant is in the top k (success@k).

use std::collections::HashMap;

/// Relevance grades of one query: doc id → grade (0 = judged not relevant).
pub type Judgments = HashMap<String, u32>;

pub fn dcg(gains: impl Iterator<Item = u32>) -> f64 {
    gains
        .enumerate()
        .map(|(i, g)| g as f64 / ((i + 2) as f64).log2())
        .sum()
}

pub fn ndcg_at(ranked: &[String], judged: &Judgments, k: usize) -> f64 {
    let actual = dcg(ranked
        .iter()
        .take(k)
        .map(|d| judged.get(d).copied().unwrap_or(0)));
    let mut ideal: Vec<u32> = judged.values().copied().filter(|&g| g > 0).collect();
    ideal.sort_unstable_by(|a, b| b.cmp(a));
    let best = dcg(ideal.into_iter().take(k));
    if best == 0.0 {
        0.0
    } else {
        actual / best
    }
}

pub fn mrr_at(ranked: &[String], judged: &Judgments, k: usize) -> f64 {
    ranked
        .iter()
        .take(k)
        .position(|d| judged.get(d).is_some_and(|&g| g > 0))
        .map_or(0.0, |i| 1.0 / (i + 1) as f64)
}

pub fn recall_at(ranked: &[String], judged: &Judgments, k: usize) -> f64 {
    let relevant = judged.values().filter(|&&g| g > 0).count();
    if relevant == 0 {
        return 0.0;
    }
    let found = ranked
        .iter()
        .take(k)
        .filter(|d| judged.get(*d).is_some_and(|&g| g > 0))
        .count();
    found as f64 / relevant as f64
}

pub fn hit_at(ranked: &[String], judged: &Judgments, k: usize) -> f64 {
    if ranked
        .iter()
        .take(k)
        .any(|d| judged.get(d).is_some_and(|&g| g > 0))
    {
        1.0
    } else {
        0.0
    }
}

/// The metrics podseek reports for one query.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct QueryMetrics {
    pub ndcg_10: f64,
    pub mrr_10: f64,
    pub recall_1: f64,
    pub recall_5: f64,
    pub recall_10: f64,
    pub recall_100: f64,
    pub hit_1: f64,
    pub hit_5: f64,
    pub hit_10: f64,
    /// Hit at the k the caller chose (`podseek eval --k`).
    pub hit_k: f64,
}

impl QueryMetrics {
    pub fn compute(ranked: &[String], judged: &Judgments, k: usize) -> QueryMetrics {
        QueryMetrics {
            ndcg_10: ndcg_at(ranked, judged, 10),
            mrr_10: mrr_at(ranked, judged, 10),
            recall_1: recall_at(ranked, judged, 1),
            recall_5: recall_at(ranked, judged, 5),
            recall_10: recall_at(ranked, judged, 10),
            recall_100: recall_at(ranked, judged, 100),
            hit_1: hit_at(ranked, judged, 1),
            hit_5: hit_at(ranked, judged, 5),
            hit_10: hit_at(ranked, judged, 10),
            hit_k: hit_at(ranked, judged, k),
        }
    }

    /// The mean over queries (metrics are averaged per query, as trec_eval's `all` line).
    pub fn mean(items: &[QueryMetrics]) -> QueryMetrics {
        let n = items.len().max(1) as f64;
        let sum = |f: fn(&QueryMetrics) -> f64| items.iter().map(f).sum::<f64>() / n;
        QueryMetrics {
            ndcg_10: sum(|m| m.ndcg_10),
            mrr_10: sum(|m| m.mrr_10),
            recall_1: sum(|m| m.recall_1),
            recall_5: sum(|m| m.recall_5),
            recall_10: sum(|m| m.recall_10),
            recall_100: sum(|m| m.recall_100),
            hit_1: sum(|m| m.hit_1),
            hit_5: sum(|m| m.hit_5),
            hit_10: sum(|m| m.hit_10),
            hit_k: sum(|m| m.hit_k),
        }
    }
}
