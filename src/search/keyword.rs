//! Keyword search (BM25, tantivy, in memory): one document per chapter (title, summary, quotes),
//! lower-cased, accent-folded, with an English + Spanish stop-word list. Used two ways: as a small
//! boost when a question matches a chapter's words strongly (hybrid search), and alone as the
//! baseline in the eval reports.

use tantivy::collector::TopDocs;
use tantivy::query::QueryParser;
use tantivy::schema::{
    IndexRecordOption, Schema, TextFieldIndexing, TextOptions, Value, STORED, STRING,
};
use tantivy::tokenizer::{
    AsciiFoldingFilter, LowerCaser, RemoveLongFilter, SimpleTokenizer, StopWordFilter, TextAnalyzer,
};
use tantivy::{doc, Index, IndexReader, TantivyDocument};

use crate::corpus::Episode;
use crate::error::{Error, Result};

const STOP_WORDS: &str = "a an and are as at be but by for from has have he her his i if in into is it its me my no not of on or our she so than that the their them then there these they this those to was we were what when where which who why will with would you your \
al algo como con de del desde donde el ella ellos en entre era es esa ese eso esta este esto estos fue ha hay la las le les lo los mas me mi muy no nos o para pero por que se ser si sin sobre su sus te tiene todo tu un una uno unos y ya";

pub struct Bm25 {
    reader: IndexReader,
    parser: QueryParser,
    id_field: tantivy::schema::Field,
}

fn err(e: impl std::fmt::Display) -> Error {
    Error::Inference(format!("bm25: {e}"))
}

impl Bm25 {
    pub fn build(episodes: &[Episode]) -> Result<Bm25> {
        let mut schema = Schema::builder();
        let id_field = schema.add_text_field("id", STRING | STORED);
        let text_options = TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer("podseek")
                .set_index_option(IndexRecordOption::WithFreqsAndPositions),
        );
        let text = schema.add_text_field("text", text_options);
        let index = Index::create_in_ram(schema.build());
        let analyzer = TextAnalyzer::builder(SimpleTokenizer::default())
            .filter(RemoveLongFilter::limit(40))
            .filter(LowerCaser)
            .filter(AsciiFoldingFilter)
            .filter(StopWordFilter::remove(
                STOP_WORDS.split_whitespace().map(str::to_string),
            ))
            .build();
        index.tokenizers().register("podseek", analyzer);
        let mut writer = index
            .writer_with_num_threads::<TantivyDocument>(1, 30_000_000)
            .map_err(err)?;
        for e in episodes {
            for c in &e.chapters {
                let mut body = format!("{} {}", c.title, c.summary);
                for q in &c.quotes {
                    body.push(' ');
                    body.push_str(&q.text);
                }
                writer
                    .add_document(doc!(id_field => c.id.clone(), text => body))
                    .map_err(err)?;
            }
        }
        writer.commit().map_err(err)?;
        let reader = index.reader().map_err(err)?;
        let parser = QueryParser::for_index(&index, vec![text]);
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
