//! Keyword search (BM25, tantivy, in memory): one document per chapter (title, summary, quotes),
//! lower-cased, accent-folded, with an English + Spanish stop-word list. Used two ways: as a small
//! boost when a question matches a chapter's words strongly (hybrid search), and alone as the
//! baseline in the eval reports.
//!
//! `Analysis::PerLanguage` instead keeps an English and a Spanish field, each with its language's
//! stop words and Snowball stemmer: a chapter's text goes into its own language's field and the
//! translated twins of its chunks (`ingest --translate`) into the other's, and a question is
//! matched against both fields, each analyzed in its own language.

use tantivy::collector::TopDocs;
use tantivy::query::QueryParser;
use tantivy::schema::{
    IndexRecordOption, Schema, TextFieldIndexing, TextOptions, Value, STORED, STRING,
};
use tantivy::tokenizer::{
    AsciiFoldingFilter, Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer,
    StopWordFilter, TextAnalyzer,
};
use tantivy::{doc, Index, IndexReader, TantivyDocument};

use crate::corpus::{Episode, Lang};
use crate::error::{Error, Result};

const STOP_WORDS_EN: &str = "a an and are as at be but by for from has have he her his i if in into is it its me my no not of on or our she so than that the their them then there these they this those to was we were what when where which who why will with would you your";
const STOP_WORDS_ES: &str = "al algo como con de del desde donde el ella ellos en entre era es esa ese eso esta este esto estos fue ha hay la las le les lo los mas me mi muy no nos o para pero por que se ser si sin sobre su sus te tiene todo tu un una uno unos y ya";

/// How text is analyzed for BM25.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
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
    reader: IndexReader,
    parser: QueryParser,
    id_field: tantivy::schema::Field,
}

fn err(e: impl std::fmt::Display) -> Error {
    Error::Keyword(e.to_string())
}

impl Bm25 {
    /// BM25 over the chapters' own text, one shared field (the baseline and the default).
    pub fn build(episodes: &[Episode]) -> Result<Bm25> {
        let texts = chapter_texts(episodes);
        let refs: Vec<KeywordText> = texts
            .iter()
            .map(|(id, lang, text)| KeywordText {
                chapter_id: id,
                lang: *lang,
                text,
            })
            .collect();
        Bm25::build_from(&refs, Analysis::Shared)
    }

    /// BM25 over any chapter texts (own and translated), analyzed as `analysis` says. Texts of one
    /// chapter in one language become one field value of that chapter's document.
    pub fn build_from(texts: &[KeywordText], analysis: Analysis) -> Result<Bm25> {
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
        let (en, es) = match analysis {
            Analysis::Shared => {
                let f = field(&mut schema, "text", "shared");
                (f, f)
            }
            Analysis::PerLanguage => (
                field(&mut schema, "text_en", "english"),
                field(&mut schema, "text_es", "spanish"),
            ),
        };
        let index = Index::create_in_ram(schema.build());
        let shared = format!("{STOP_WORDS_EN} {STOP_WORDS_ES}");
        index
            .tokenizers()
            .register("shared", analyzer(&shared, None));
        index
            .tokenizers()
            .register("english", analyzer(STOP_WORDS_EN, Some(Language::English)));
        index
            .tokenizers()
            .register("spanish", analyzer(STOP_WORDS_ES, Some(Language::Spanish)));
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
        let reader = index.reader().map_err(err)?;
        let fields = if en == es { vec![en] } else { vec![en, es] };
        let parser = QueryParser::for_index(&index, fields);
        Ok(Bm25 {
            reader,
            parser,
            id_field,
        })
    }

    /// Chapter ids with BM25 scores, best first.
    pub fn search(&self, query: &str, k: usize) -> Result<Vec<(String, f32)>> {
        // Keep only words: query syntax characters in a question are not operators.
        let cleaned: String = query
            .chars()
            .map(|c| if c.is_alphanumeric() { c } else { ' ' })
            .collect();
        let (q, _) = self.parser.parse_query_lenient(&cleaned);
        let searcher = self.reader.searcher();
        let top = searcher
            .search(&q, &TopDocs::with_limit(k.max(1)).order_by_score())
            .map_err(err)?;
        top.into_iter()
            .map(|(score, addr)| {
                let doc: TantivyDocument = searcher.doc(addr).map_err(err)?;
                let id = doc
                    .get_first(self.id_field)
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default();
                Ok((id, score))
            })
            .collect()
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
