//! Keyword search (BM25, tantivy): one document per chapter (title, summary, quotes), lower-cased,
//! accent-folded, with an English + Spanish stop-word list. Used two ways: as a small boost when a
//! question matches a chapter's words strongly (hybrid search), and alone as the baseline in the
//! eval reports.
//!
//! A local index keeps one tantivy index per segment (`keywords/`), written with the segment and
//! opened by mapping its files; a search runs over every part with BM25 statistics summed over all
//! of them, so scores are those of one index over the union. Tombstoned chapters are still in
//! their part (and its statistics, as in tantivy after a delete): the caller drops them from the
//! results. Other stores and the per-language analysis build one part in memory.
//!
//! `Analysis::PerLanguage` instead keeps an English and a Spanish field, each with its language's
//! stop words and Snowball stemmer: a chapter's text goes into its own language's field and the
//! translated twins of its chunks (`ingest --translate`) into the other's, and a question is
//! matched against both fields, each analyzed in its own language.

use std::path::Path;

use tantivy::collector::TopDocs;
use tantivy::query::{Bm25StatisticsProvider, QueryParser};
use tantivy::schema::{
    IndexRecordOption, Schema, TextFieldIndexing, TextOptions, Value, STORED, STRING,
};
use tantivy::tokenizer::{
    AsciiFoldingFilter, Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer,
    StopWordFilter, TextAnalyzer,
};
use tantivy::{doc, Index, IndexReader, ReloadPolicy, Searcher, TantivyDocument, Term};

use crate::corpus::{Episode, Lang, STOP_WORDS_EN, STOP_WORDS_ES};
use crate::error::{Error, Result};
use crate::index::Records;
use std::collections::HashMap;

/// How text is analyzed for BM25.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Analysis {
    /// One field, both languages' stop words, no stemming.
    #[default]
    Shared,
    /// A field per language with its own stop words and stemmer; translated twins go into the
    /// other language's field.
    PerLanguage,
}

/// A text to index under a chapter: its own (title, summary, quotes) or a translated twin's.
pub struct KeywordText<'a> {
    pub chapter_id: &'a str,
    pub lang: Lang,
    pub text: &'a str,
}

fn analyzer(stop_words: &str, stemmer: Option<Language>) -> TextAnalyzer {
    let base = TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(40))
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .filter(StopWordFilter::remove(
            stop_words.split_whitespace().map(str::to_string),
        ));
    match stemmer {
        Some(language) => base.filter(Stemmer::new(language)).build(),
        None => base.build(),
    }
}

/// The chapters' own texts, one per chapter.
pub fn chapter_texts(episodes: &[Episode]) -> Vec<(String, Lang, String)> {
    episodes
        .iter()
        .flat_map(|e| e.chapters.iter())
        .map(|c| {
            let mut body = format!("{} {}", c.title, c.summary);
            for q in &c.quotes {
                body.push(' ');
                body.push_str(&q.text);
            }
            (c.id.clone(), c.lang, body)
        })
        .collect()
}

pub struct Bm25 {
    /// One per segment (or one in memory); searched as one index.
    parts: Vec<IndexReader>,
    /// `None` when there is no part to search.
    parser: Option<QueryParser>,
    id_field: tantivy::schema::Field,
}

/// The directory of a segment's keyword index.
pub const KEYWORDS_DIR: &str = "keywords";

fn err(e: impl std::fmt::Display) -> Error {
    Error::Keyword(e.to_string())
}

/// The schema and its fields: the id, then the English and Spanish text fields (one shared field
/// for `Analysis::Shared`).
fn schema(analysis: Analysis) -> (Schema, tantivy::schema::Field, [tantivy::schema::Field; 2]) {
    let mut schema = Schema::builder();
    let id_field = schema.add_text_field("id", STRING | STORED);
    let field = |schema: &mut tantivy::schema::SchemaBuilder, name: &str, tokenizer: &str| {
        let options = TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(tokenizer)
                .set_index_option(IndexRecordOption::WithFreqsAndPositions),
        );
        schema.add_text_field(name, options)
    };
    let fields = match analysis {
        Analysis::Shared => {
            let f = field(&mut schema, "text", "shared");
            [f, f]
        }
        Analysis::PerLanguage => [
            field(&mut schema, "text_en", "english"),
            field(&mut schema, "text_es", "spanish"),
        ],
    };
    (schema.build(), id_field, fields)
}

/// Tokenizers are not stored with an index: every opened or created one gets them.
fn register_tokenizers(index: &Index) {
    let shared = format!("{STOP_WORDS_EN} {STOP_WORDS_ES}");
    let tokenizers = index.tokenizers();
    tokenizers.register("shared", analyzer(&shared, None));
    tokenizers.register("english", analyzer(STOP_WORDS_EN, Some(Language::English)));
    tokenizers.register("spanish", analyzer(STOP_WORDS_ES, Some(Language::Spanish)));
}

/// Add one document per chapter (its texts in one language become one field value) and commit.
fn fill(
    index: &Index,
    texts: &[KeywordText],
    id_field: tantivy::schema::Field,
    [en, es]: [tantivy::schema::Field; 2],
) -> Result<()> {
    let mut writer = index
        .writer_with_num_threads::<TantivyDocument>(1, 30_000_000)
        .map_err(err)?;
    let mut by_chapter: std::collections::BTreeMap<&str, TantivyDocument> = Default::default();
    for t in texts {
        let doc = by_chapter
            .entry(t.chapter_id)
            .or_insert_with(|| doc!(id_field => t.chapter_id));
        let target = match t.lang {
            Lang::En => en,
            Lang::Es => es,
        };
        doc.add_text(target, t.text);
    }
    for (_, doc) in by_chapter {
        writer.add_document(doc).map_err(err)?;
    }
    writer.commit().map_err(err)?;
    writer.wait_merging_threads().map_err(err)
}

fn own_texts(texts: &[(String, Lang, String)]) -> Vec<KeywordText<'_>> {
    texts
        .iter()
        .map(|(id, lang, text)| KeywordText {
            chapter_id: id,
            lang: *lang,
            text,
        })
        .collect()
}

/// BM25 statistics of several parts taken as one index.
struct Summed<'a>(&'a [Searcher]);

impl Bm25StatisticsProvider for Summed<'_> {
    fn total_num_tokens(&self, field: tantivy::schema::Field) -> tantivy::Result<u64> {
        self.0
            .iter()
            .map(|s| Bm25StatisticsProvider::total_num_tokens(s, field))
            .sum()
    }

    fn total_num_docs(&self) -> tantivy::Result<u64> {
        self.0
            .iter()
            .map(Bm25StatisticsProvider::total_num_docs)
            .sum()
    }

    fn doc_freq(&self, term: &Term) -> tantivy::Result<u64> {
        self.0
            .iter()
            .map(|s| Bm25StatisticsProvider::doc_freq(s, term))
            .sum()
    }
}

impl Bm25 {
    /// BM25 over the chapters' own text, one shared field, in memory (the baseline; stores that
    /// keep no keyword index on disk).
    pub fn build(episodes: &[Episode]) -> Result<Bm25> {
        Bm25::build_from(&own_texts(&chapter_texts(episodes)), Analysis::Shared)
    }

    /// BM25 over any chapter texts (own and translated), analyzed as `analysis` says, in memory.
    /// A keyword index over a version's records read whole, with another analysis than the one
    /// its store keeps: `PerLanguage` also indexes the translated twin chunks (from `ingest
    /// --translate`) under the other language. `None` for `Shared`, the stores' own.
    pub fn of_records(records: &Records, analysis: Analysis) -> Result<Option<Bm25>> {
        if analysis == Analysis::Shared {
            return Ok(None);
        }
        let lang_of: HashMap<&str, Lang> = records
            .episodes
            .iter()
            .flat_map(|e| e.chapters.iter().map(|c| (c.id.as_str(), c.lang)))
            .collect();
        let own = chapter_texts(&records.episodes);
        let mut texts = own_texts(&own);
        for c in records.chunks.iter().filter(|c| c.is_twin()) {
            if let Some(&lang) = lang_of.get(c.chapter_id.as_str()) {
                texts.push(KeywordText {
                    chapter_id: &c.chapter_id,
                    lang: crate::translate::other(lang),
                    text: &c.embed_text,
                });
            }
        }
        Bm25::build_from(&texts, analysis).map(Some)
    }

    pub fn build_from(texts: &[KeywordText], analysis: Analysis) -> Result<Bm25> {
        let (schema, id_field, fields) = schema(analysis);
        let index = Index::create_in_ram(schema);
        register_tokenizers(&index);
        fill(&index, texts, id_field, fields)?;
        Bm25::of_parts(vec![index], id_field, fields)
    }

    /// Write the shared-analysis keyword index of these episodes' chapters into `dir` (created),
    /// every file fsynced, then the directory.
    pub fn write(dir: &Path, episodes: &[Episode]) -> Result<()> {
        std::fs::create_dir(dir).map_err(Error::io(dir))?;
        let (schema, id_field, fields) = schema(Analysis::Shared);
        let index = Index::create_in_dir(dir, schema).map_err(err)?;
        register_tokenizers(&index);
        fill(
            &index,
            &own_texts(&chapter_texts(episodes)),
            id_field,
            fields,
        )?;
        drop(index);
        for entry in std::fs::read_dir(dir).map_err(Error::io(dir))? {
            let path = entry.map_err(Error::io(dir))?.path();
            if path.is_file() {
                let file = std::fs::File::open(&path).map_err(Error::io(&path))?;
                file.sync_all().map_err(Error::io(&path))?;
            }
        }
        crate::index::durable::sync_dir(dir)
    }

    /// Open keyword indexes written by `write` (one per segment) as one, their files mapped.
    pub fn open(dirs: &[std::path::PathBuf]) -> Result<Bm25> {
        let (_, id_field, fields) = schema(Analysis::Shared);
        let parts = dirs
            .iter()
            .map(|dir| {
                let index = Index::open_in_dir(dir).map_err(|e| Error::Corrupt {
                    path: dir.clone(),
                    message: format!("keyword index: {e}"),
                })?;
                register_tokenizers(&index);
                Ok(index)
            })
            .collect::<Result<Vec<_>>>()?;
        Bm25::of_parts(parts, id_field, fields)
    }

    fn of_parts(
        parts: Vec<Index>,
        id_field: tantivy::schema::Field,
        [en, es]: [tantivy::schema::Field; 2],
    ) -> Result<Bm25> {
        let fields = if en == es { vec![en] } else { vec![en, es] };
        let parser = parts
            .first()
            .map(|index| QueryParser::for_index(index, fields));
        let readers = parts
            .iter()
            .map(|index| {
                index
                    .reader_builder()
                    .reload_policy(ReloadPolicy::Manual)
                    .try_into()
                    .map_err(err)
            })
            .collect::<Result<Vec<IndexReader>>>()?;
        Ok(Bm25 {
            parts: readers,
            parser,
            id_field,
        })
    }

    /// Chapter ids with BM25 scores, best first.
    pub fn search(&self, query: &str, k: usize) -> Result<Vec<(String, f32)>> {
        let Some(parser) = &self.parser else {
            return Ok(Vec::new());
        };
        // Keep only words: query syntax characters in a question are not operators.
        let cleaned: String = query
            .chars()
            .map(|c| if c.is_alphanumeric() { c } else { ' ' })
            .collect();
        let (q, _) = parser.parse_query_lenient(&cleaned);
        let searchers: Vec<Searcher> = self.parts.iter().map(IndexReader::searcher).collect();
        let summed = Summed(&searchers);
        let top = TopDocs::with_limit(k.max(1)).order_by_score();
        let mut hits = Vec::new();
        for searcher in &searchers {
            let found = if searchers.len() == 1 {
                searcher.search(&q, &top)
            } else {
                searcher.search_with_statistics_provider(&q, &top, &summed)
            };
            for (score, addr) in found.map_err(err)? {
                let doc: TantivyDocument = searcher.doc(addr).map_err(err)?;
                let id = doc
                    .get_first(self.id_field)
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default();
                hits.push((id, score));
            }
        }
        hits.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        hits.truncate(k.max(1));
        Ok(hits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts() -> Vec<KeywordText<'static>> {
        vec![
            KeywordText {
                chapter_id: "en1",
                lang: Lang::En,
                text: "Interceptor drones hunt reconnaissance drones",
            },
            KeywordText {
                chapter_id: "es1",
                lang: Lang::Es,
                text: "Los modelos de proteínas aprenden estructura",
            },
            // A translated twin of the Spanish chapter, indexed under English.
            KeywordText {
                chapter_id: "es1",
                lang: Lang::En,
                text: "Protein models learn structure",
            },
        ]
    }

    #[test]
    fn per_language_fields_stem_in_their_own_language() {
        let bm25 = Bm25::build_from(&texts(), Analysis::PerLanguage).unwrap();
        // English stemming: "drone" finds "drones".
        assert_eq!(bm25.search("drone interceptor", 5).unwrap()[0].0, "en1");
        // Spanish stemming: "proteína" finds "proteínas"; the English twin makes "protein" find it too.
        assert_eq!(bm25.search("proteína", 5).unwrap()[0].0, "es1");
        assert_eq!(bm25.search("protein structure", 5).unwrap()[0].0, "es1");
        // The shared analysis does not stem.
        let shared = Bm25::build_from(&texts()[..2], Analysis::Shared).unwrap();
        assert!(shared.search("drone", 5).unwrap().is_empty());
    }
}
