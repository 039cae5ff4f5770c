//! A Milvus server (standalone or cluster, gRPC) as the store, behind the `milvus` feature.
//!
//! `milvus://HOST:PORT/NAME` holds two collections:
//! - `NAME`: one row per chunk: `key` (the chunk key as i64), `chunk_id`, `episode_id`,
//!   `chapter_id`, `lang`, `podcast` (lower case), `kind`, `start_s`, `seq` (position within the
//!   episode), `record` (the chunk as JSON) and `vector`, under an HNSW index (inner product on
//!   unit vectors, i.e. cosine) built with the manifest's M and ef_construction;
//! - `NAME_docs`: each episode as JSON (with its content hash) in parts of at most 60,000 bytes,
//!   and one `~manifest` row: the manifest and the version's name. Milvus needs a vector in every
//!   collection, so these rows carry a constant two-dimensional `pad`.
//!
//! A replica therefore needs nothing on disk but the models. Filters become boolean expressions
//! evaluated by the server. Reads of a new version use Strong consistency; searches use Bounded
//! (a row written by another replica is searchable within about half a second).
//!
//! A write replaces the rows of the episodes it touches (delete by expression, then insert), then
//! moves the `~manifest` row to the new version with one upsert, and flushes. Milvus has no
//! transaction across rows: a write that dies half-way leaves the old version's name live with
//! some episodes already replaced, and the next write of the same episodes repairs it. A write
//! first checks that the live version is still the one it read (one writer at a time, or a
//! `StoreConflict`).
//!
//! Not here: what a change contains (`ingest`), ranking (`search/`).

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::OnceLock;
use std::time::Duration;

use milvus::client::Client;
use milvus::data::FieldColumn;
use milvus::index::{IndexParams, IndexType, MetricType};
use milvus::mutate::DeleteOptions;
use milvus::options::CreateCollectionOptions;
use milvus::proto::common::ConsistencyLevel;
use milvus::query::{QueryOptions, SearchOptions};
use milvus::schema::{CollectionSchemaBuilder, FieldSchema};
use milvus::value::{Value, ValueVec};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{
    Bm25, Catalog, Change, ChunkFilter, HnswParams, Manifest, MemoryCatalog, Records, Snapshot,
    Store,
};
use crate::chunk::Chunk;
use crate::corpus::Episode;
use crate::error::{Error, Result};

/// One gRPC call's limit: a search's deadline (10 s by default) must see the failure first.
const RPC_TIMEOUT: Duration = Duration::from_secs(4);
/// The doc id of the row naming the live version.
const MANIFEST_DOC: &str = "~manifest";
/// Bytes of episode JSON per row (Milvus VarChar holds at most 65,535).
const PART_BYTES: usize = 60_000;
const ID_LENGTH: i32 = 1024;
/// Rows per insert call.
const INSERT_BATCH: usize = 256;
/// Rows a query returns at most (Milvus's result window).
const QUERY_WINDOW: usize = 16_384;

/// The runtime the gRPC client runs on: its own, never dropped, so that the synchronous store
/// can be called from any thread (including one inside another runtime's blocking pool).
fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("milvus-client")
            .enable_all()
            .build()
            .expect("a tokio runtime for the Milvus client")
    })
}

/// A connection and the collection names, shared by the store and its snapshots.
#[derive(Clone)]
struct Conn {
    location: String,
    chunks: String,
    docs: String,
    client: Client,
}

pub struct MilvusStore {
    conn: Conn,
}

/// What the `~manifest` row holds.
#[derive(Serialize, Deserialize)]
struct Head {
    version: String,
    manifest: Manifest,
}

/// What an episode's rows hold, once their parts are joined.
#[derive(Serialize, Deserialize)]
struct EpisodeDoc {
    hash: String,
    episode: Episode,
}

impl Conn {
    fn unavailable(&self, message: impl std::fmt::Display) -> Error {
        Error::StoreUnavailable {
            store: self.location.clone(),
            message: message.to_string(),
        }
    }

    /// Run one client call on the client's runtime and wait for it, at most `RPC_TIMEOUT` plus
    /// a margin (the channel's own timeout fires first).
    fn call<T, F>(&self, what: &str, work: impl FnOnce(Client) -> F) -> Result<T>
    where
        T: Send + 'static,
        F: Future<Output = milvus::error::Result<T>> + Send + 'static,
    {
        self.call_raw(what, work)?.map_err(|e| self.failed(what, e))
    }

    /// `call`, with the client's own error left for the caller to judge; only a call that got no
    /// answer in time (or was dropped) is an error already.
    fn call_raw<T, F>(
        &self,
        what: &str,
        work: impl FnOnce(Client) -> F,
    ) -> Result<milvus::error::Result<T>>
    where
        T: Send + 'static,
        F: Future<Output = milvus::error::Result<T>> + Send + 'static,
    {
        let future = work(self.client.clone());
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        runtime().spawn(async move {
            let _ = tx.send(tokio::time::timeout(RPC_TIMEOUT + RPC_TIMEOUT, future).await);
        });
        match rx.recv() {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(_)) => Err(self.unavailable(format!("{what}: no answer in time"))),
            Err(_) => Err(self.unavailable(format!("{what}: the call was dropped"))),
        }
    }

    /// The server down, unreachable or not ready is `StoreUnavailable` (503, retried by the
    /// caller later); a request it refuses is our bug, `NearestSearch`.
    fn failed(&self, what: &str, e: milvus::error::Error) -> Error {
        use milvus::error::Error as E;
        match e {
            // The gRPC status alone; its transport source is for the log, not for clients.
            E::Grpc(status) => {
                self.unavailable(format!("{what}: {:?}: {}", status.code(), status.message()))
            }
            E::Communication(_) | E::Server(..) => self.unavailable(format!("{what}: {e}")),
            other => Error::VectorIndex(format!("{}: {what}: {other}", self.location)),
        }
    }

    fn has_collection(&self, name: &str) -> Result<bool> {
        let name = name.to_string();
        self.call(
            "has_collection",
            |c| async move { c.has_collection(name).await },
        )
    }

    /// Rows matching `expr`, the `fields` asked for, as columns by name.
    fn query(
        &self,
        collection: &str,
        expr: String,
        fields: &[&str],
        consistency: ConsistencyLevel,
    ) -> Result<HashMap<String, ValueVec>> {
        self.query_raw(collection, expr, fields, consistency)?
            .map_err(|e| self.failed("query", e))
    }

    fn query_raw(
        &self,
        collection: &str,
        expr: String,
        fields: &[&str],
        consistency: ConsistencyLevel,
    ) -> Result<milvus::error::Result<HashMap<String, ValueVec>>> {
        let collection = collection.to_string();
        let options = QueryOptions::new()
            .output_fields(fields.iter().map(|f| f.to_string()).collect())
            .limit(QUERY_WINDOW as i64)
            .consistency_level(consistency as i32);
        let answer = self.call_raw("query", |c| async move {
            c.query(collection, &expr, &options).await
        })?;
        Ok(answer.map(|columns| columns.into_iter().map(|c| (c.name, c.value)).collect()))
    }

    /// Every row of a collection: key ranges small enough for the result window and for one
    /// gRPC message (the client takes at most 4 MiB), halved again when one comes back full or
    /// too large.
    fn query_all(
        &self,
        collection: &str,
        fields: &[&str],
        filter: &str,
    ) -> Result<Vec<HashMap<String, ValueVec>>> {
        // Inclusive key ranges; the lowest has no lower bound, since Milvus reads
        // -9223372036854775808 as the negation of a number too large for an i64.
        let mut pending = vec![(None, -1), (Some(0), i64::MAX)];
        let mut out = Vec::new();
        while let Some((lo, hi)) = pending.pop() {
            let lower = lo.map_or(String::new(), |lo: i64| format!("key >= {lo} && "));
            let expr = format!("{lower}key <= {hi}{filter}");
            let from = lo.unwrap_or(i64::MIN);
            let rows = match self.query_raw(collection, expr, fields, ConsistencyLevel::Strong)? {
                Err(e) if too_large(&e) && from < hi => {
                    let mid = (from as i128 + (hi as i128 - from as i128) / 2) as i64;
                    pending.extend([(lo, mid), (Some(mid + 1), hi)]);
                    continue;
                }
                other => other.map_err(|e| self.failed("query", e))?,
            };
            let n = rows.get("key").map_or(0, ValueVec::len);
            if n >= QUERY_WINDOW && from < hi {
                let mid = (from as i128 + (hi as i128 - from as i128) / 2) as i64;
                pending.extend([(lo, mid), (Some(mid + 1), hi)]);
            } else {
                out.push(rows);
            }
        }
        Ok(out)
    }

    fn delete(&self, collection: &str, expr: String) -> Result<()> {
        let collection = collection.to_string();
        self.call("delete", |c| async move {
            c.delete(collection, &DeleteOptions::with_filter(expr))
                .await
        })
        .map(|_| ())
    }

    fn insert(&self, collection: &str, columns: Vec<FieldColumn>) -> Result<()> {
        let collection = collection.to_string();
        self.call("insert", |c| async move {
            c.insert(collection, columns, None).await
        })
        .map(|_| ())
    }

    fn head(&self, consistency: ConsistencyLevel) -> Result<Option<Head>> {
        if !self.has_collection(&self.docs)? {
            return Ok(None);
        }
        let expr = format!("doc == {}", quote(MANIFEST_DOC));
        let rows = self.query(&self.docs, expr, &["key", "body"], consistency)?;
        let Some(body) = strings(rows.get("body")).into_iter().next() else {
            return Ok(None);
        };
        serde_json::from_str(&body)
            .map(Some)
            .map_err(|e| self.corrupt(format!("the manifest row: {e}")))
    }

    fn corrupt(&self, message: String) -> Error {
        Error::Corrupt {
            path: self.location.clone().into(),
            message,
        }
    }
}

/// A reply larger than the client accepts in one message.
fn too_large(e: &milvus::error::Error) -> bool {
    matches!(e, milvus::error::Error::Grpc(status) if status.code() == tonic::Code::OutOfRange)
}

/// A Milvus string literal.
fn quote(s: &str) -> String {
    let escaped = s.replace('\\', "\\\\").replace('"', "\\\"");
    format!("\"{escaped}\"")
}

fn quoted_list<'a>(items: impl Iterator<Item = &'a str>) -> String {
    items.map(quote).collect::<Vec<_>>().join(", ")
}

/// The boolean expression for a filter, `None` when it lets everything through.
pub fn filter_expr(filter: &ChunkFilter) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(lang) = filter.lang {
        parts.push(format!("lang == {}", quote(lang.code())));
    }
    if let Some(episode) = &filter.episode {
        parts.push(format!("episode_id == {}", quote(episode)));
    }
    if let Some(podcast) = &filter.podcast {
        parts.push(format!(
            "podcast == {}",
            quote(&podcast.to_ascii_lowercase())
        ));
    }
    if let Some(kind) = filter.kind {
        parts.push(format!("kind == {}", quote(kind.as_str())));
    }
    (!parts.is_empty()).then(|| parts.join(" && "))
}

fn strings(column: Option<&ValueVec>) -> Vec<String> {
    match column {
        Some(ValueVec::String(v)) => v.clone(),
        _ => Vec::new(),
    }
}

fn longs(column: Option<&ValueVec>) -> Vec<i64> {
    match column {
        Some(ValueVec::Long(v)) => v.clone(),
        _ => Vec::new(),
    }
}

/// A doc row's primary key: the first 8 bytes of SHA-256 over its doc id and part.
fn doc_key(doc: &str, part: usize) -> i64 {
    let digest = Sha256::digest(format!("{doc}\u{0}{part}").as_bytes());
    i64::from_le_bytes(digest[..8].try_into().expect("8 bytes"))
}

/// `text` in pieces of at most `max` bytes, cut at character boundaries.
fn split_utf8(text: &str, max: usize) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut rest = text;
    while rest.len() > max {
        let mut cut = max;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        let (head, tail) = rest.split_at(cut);
        parts.push(head);
        rest = tail;
    }
    parts.push(rest);
    parts
}

/// The fields of both collections, as the schema and the inserts name them.
struct Fields {
    key: FieldSchema,
    chunk_id: FieldSchema,
    episode_id: FieldSchema,
    chapter_id: FieldSchema,
    lang: FieldSchema,
    podcast: FieldSchema,
    kind: FieldSchema,
    start_s: FieldSchema,
    seq: FieldSchema,
    record: FieldSchema,
    vector: FieldSchema,
    doc: FieldSchema,
    part: FieldSchema,
    body: FieldSchema,
    pad: FieldSchema,
}

impl Fields {
    fn new(dims: usize) -> Fields {
        Fields {
            key: FieldSchema::new_primary_int64("key", "chunk or doc key", false),
            chunk_id: FieldSchema::new_varchar("chunk_id", "", ID_LENGTH),
            episode_id: FieldSchema::new_varchar("episode_id", "", ID_LENGTH),
            chapter_id: FieldSchema::new_varchar("chapter_id", "", ID_LENGTH),
            lang: FieldSchema::new_varchar("lang", "", 8),
            podcast: FieldSchema::new_varchar("podcast", "lower case", ID_LENGTH),
            kind: FieldSchema::new_varchar("kind", "", 16),
            start_s: FieldSchema::new_int64("start_s", "chapter start, seconds"),
            seq: FieldSchema::new_int64("seq", "position in the episode"),
            record: FieldSchema::new_varchar("record", "the chunk as JSON", 65_535),
            vector: FieldSchema::new_float_vector("vector", "", dims as i64),
            doc: FieldSchema::new_varchar("doc", "episode id or ~manifest", ID_LENGTH),
            part: FieldSchema::new_int64("part", ""),
            body: FieldSchema::new_varchar("body", "JSON, in parts", 65_535),
            pad: FieldSchema::new_float_vector("pad", "Milvus needs a vector", 2),
        }
    }
}

impl MilvusStore {
    /// Connect to `milvus://HOST:PORT/COLLECTION` (nothing is created until the first write).
    pub fn connect(url: &str) -> Result<MilvusStore> {
        let (endpoint, collection) = parse_url(url)?;
        let location = format!("milvus://{endpoint}/{collection}");
        let target = format!("http://{endpoint}");
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        runtime().spawn(async move {
            let connecting = Client::with_timeout(target, RPC_TIMEOUT, None, None);
            let _ = tx.send(tokio::time::timeout(RPC_TIMEOUT, connecting).await);
        });
        let unavailable = |message: String| Error::StoreUnavailable {
            store: location.clone(),
            message,
        };
        let client = match rx.recv() {
            Ok(Ok(Ok(client))) => client,
            Ok(Ok(Err(e))) => return Err(unavailable(format!("cannot connect: {e}"))),
            Ok(Err(_)) => return Err(unavailable("cannot connect: no answer in time".into())),
            Err(_) => return Err(unavailable("cannot connect".into())),
        };
        Ok(MilvusStore {
            conn: Conn {
                location: location.clone(),
                docs: format!("{collection}_docs"),
                chunks: collection,
                client,
            },
        })
    }

    /// Create both collections with their indexes, and load them, if they do not exist yet.
    fn ensure_collections(&self, dims: usize, hnsw: &HnswParams) -> Result<()> {
        let fields = Fields::new(dims);
        let conn = &self.conn;
        if !conn.has_collection(&conn.chunks)? {
            let schema = CollectionSchemaBuilder::new(&conn.chunks, "podseek chunks")
                .add_field(fields.key.clone())
                .add_field(fields.chunk_id.clone())
                .add_field(fields.episode_id.clone())
                .add_field(fields.chapter_id.clone())
                .add_field(fields.lang.clone())
                .add_field(fields.podcast.clone())
                .add_field(fields.kind.clone())
                .add_field(fields.start_s.clone())
                .add_field(fields.seq.clone())
                .add_field(fields.record.clone())
                .add_field(fields.vector.clone())
                .build()
                .map_err(|e| conn.unavailable(e))?;
            let params = HashMap::from([
                ("M".to_string(), hnsw.connectivity.to_string()),
                ("efConstruction".to_string(), hnsw.expansion_add.to_string()),
            ]);
            let index = IndexParams::new(
                "vector_hnsw".into(),
                IndexType::HNSW,
                MetricType::IP,
                params,
            );
            self.create(schema, "vector", index)?;
        }
        if !conn.has_collection(&conn.docs)? {
            let schema = CollectionSchemaBuilder::new(&conn.docs, "podseek episodes and manifest")
                .add_field(fields.key.clone())
                .add_field(fields.doc.clone())
                .add_field(fields.part.clone())
                .add_field(fields.body.clone())
                .add_field(fields.pad.clone())
                .build()
                .map_err(|e| conn.unavailable(e))?;
            let index = IndexParams::new(
                "pad_flat".into(),
                IndexType::Flat,
                MetricType::IP,
                HashMap::new(),
            );
            self.create(schema, "pad", index)?;
        }
        Ok(())
    }

    fn create(
        &self,
        schema: milvus::schema::CollectionSchema,
        field: &'static str,
        index: IndexParams,
    ) -> Result<()> {
        let name = schema.name().to_string();
        let options = CreateCollectionOptions::with_consistency_level(ConsistencyLevel::Bounded);
        self.conn.call("create_collection", |c| async move {
            c.create_collection(schema, Some(options)).await?;
            c.create_index(name.clone(), field, index).await?;
            c.load_collection(name, None).await
        })
    }

    /// The live version must still be the one the write started from.
    fn check_unchanged(&self, previous: Option<&dyn Snapshot>) -> Result<()> {
        let live = self.conn.head(ConsistencyLevel::Strong)?.map(|h| h.version);
        if live.as_deref() != previous.map(|p| p.version()) {
            return Err(Error::StoreConflict {
                store: self.conn.location.clone(),
            });
        }
        Ok(())
    }

    fn insert_chunks(&self, change: &Change, fields: &Fields) -> Result<()> {
        let episodes: HashMap<&str, &Episode> = change
            .records
            .episodes
            .iter()
            .map(|e| (e.id.as_str(), e))
            .collect();
        let rows: Vec<ChunkRow> = change
            .upserted_chunks()
            .map(|(seq, chunk)| ChunkRow::new(seq, chunk, &episodes, &change.vectors))
            .collect::<Result<_>>()?;
        for batch in rows.chunks(INSERT_BATCH) {
            self.conn
                .insert(&self.conn.chunks, chunk_columns(fields, batch))?;
        }
        Ok(())
    }

    fn insert_docs(&self, change: &Change, fields: &Fields) -> Result<()> {
        let mut rows: Vec<(String, usize, String)> = Vec::new();
        for e in change
            .records
            .episodes
            .iter()
            .filter(|e| change.upserted.contains(&e.id))
        {
            let doc = EpisodeDoc {
                hash: change
                    .records
                    .episode_hashes
                    .get(&e.id)
                    .cloned()
                    .unwrap_or_default(),
                episode: e.clone(),
            };
            let json = serde_json::to_string(&doc).expect("episodes serialize");
            for (part, body) in split_utf8(&json, PART_BYTES).into_iter().enumerate() {
                rows.push((e.id.clone(), part, body.to_string()));
            }
        }
        for batch in rows.chunks(INSERT_BATCH) {
            self.conn
                .insert(&self.conn.docs, doc_columns(fields, batch))?;
        }
        Ok(())
    }

    /// Point the `~manifest` row at the new version: one upsert, so it is never missing.
    fn publish(&self, change: &Change, fields: &Fields, version: &str) -> Result<()> {
        let head = Head {
            version: version.to_string(),
            manifest: change.manifest.clone(),
        };
        let body = serde_json::to_string(&head).expect("manifest serializes");
        let columns = doc_columns(fields, &[(MANIFEST_DOC.to_string(), 0, body)]);
        let docs = self.conn.docs.clone();
        self.conn.call("upsert", |c| async move {
            c.upsert(docs, columns, None::<milvus::mutate::UpsertOptions>)
                .await
        })?;
        let (chunks, docs) = (self.conn.chunks.clone(), self.conn.docs.clone());
        self.conn.call("flush", |c| async move {
            c.flush(chunks).await?;
            c.flush(docs).await
        })
    }
}

/// One chunk as its row's fields.
struct ChunkRow<'a> {
    chunk: &'a Chunk,
    seq: usize,
    lang: &'static str,
    /// Lower case; empty for an episode without a podcast.
    podcast: String,
    chapter_start_s: u32,
    record: String,
    vector: &'a [f32],
}

impl<'a> ChunkRow<'a> {
    fn new(
        seq: usize,
        chunk: &'a Chunk,
        episodes: &HashMap<&str, &Episode>,
        vectors: &'a HashMap<u64, Vec<f32>>,
    ) -> Result<ChunkRow<'a>> {
        let record = serde_json::to_string(chunk).expect("chunks serialize");
        if record.len() > 65_535 {
            return Err(Error::invalid(
                "chunk",
                format!(
                    "chunk {} is {} bytes as JSON; Milvus holds 65,535",
                    chunk.id,
                    record.len()
                ),
            ));
        }
        let vector = vectors
            .get(&chunk.key)
            .ok_or_else(|| Error::VectorIndex(format!("no vector for chunk {}", chunk.id)))?;
        let episode = episodes.get(chunk.episode_id.as_str());
        Ok(ChunkRow {
            chunk,
            seq,
            lang: episode.map_or("", |e| e.lang.code()),
            podcast: episode
                .and_then(|e| e.podcast())
                .unwrap_or_default()
                .to_ascii_lowercase(),
            chapter_start_s: episode
                .and_then(|e| e.chapters.iter().find(|c| c.id == chunk.chapter_id))
                .map_or(0, |c| c.start_s),
            record,
            vector,
        })
    }
}

fn chunk_columns(fields: &Fields, rows: &[ChunkRow]) -> Vec<FieldColumn> {
    let text = |f: &dyn Fn(&ChunkRow) -> String| -> Vec<String> { rows.iter().map(f).collect() };
    let number = |f: &dyn Fn(&ChunkRow) -> i64| -> Vec<i64> { rows.iter().map(f).collect() };
    vec![
        FieldColumn::new(&fields.key, number(&|r| r.chunk.key as i64)),
        FieldColumn::new(&fields.chunk_id, text(&|r| r.chunk.id.clone())),
        FieldColumn::new(&fields.episode_id, text(&|r| r.chunk.episode_id.clone())),
        FieldColumn::new(&fields.chapter_id, text(&|r| r.chunk.chapter_id.clone())),
        FieldColumn::new(&fields.lang, text(&|r| r.lang.to_string())),
        FieldColumn::new(&fields.podcast, text(&|r| r.podcast.clone())),
        FieldColumn::new(&fields.kind, text(&|r| r.chunk.kind.as_str().to_string())),
        FieldColumn::new(&fields.start_s, number(&|r| r.chapter_start_s as i64)),
        FieldColumn::new(&fields.seq, number(&|r| r.seq as i64)),
        FieldColumn::new(&fields.record, text(&|r| r.record.clone())),
        FieldColumn::new(
            &fields.vector,
            rows.iter()
                .flat_map(|r| r.vector.iter().copied())
                .collect::<Vec<f32>>(),
        ),
    ]
}

fn doc_columns(fields: &Fields, rows: &[(String, usize, String)]) -> Vec<FieldColumn> {
    vec![
        FieldColumn::new(
            &fields.key,
            rows.iter()
                .map(|(d, p, _)| doc_key(d, *p))
                .collect::<Vec<_>>(),
        ),
        FieldColumn::new(
            &fields.doc,
            rows.iter().map(|(d, _, _)| d.clone()).collect::<Vec<_>>(),
        ),
        FieldColumn::new(
            &fields.part,
            rows.iter().map(|(_, p, _)| *p as i64).collect::<Vec<_>>(),
        ),
        FieldColumn::new(
            &fields.body,
            rows.iter().map(|(_, _, b)| b.clone()).collect::<Vec<_>>(),
        ),
        FieldColumn::new(
            &fields.pad,
            rows.iter().flat_map(|_| [1.0f32, 0.0]).collect::<Vec<_>>(),
        ),
    ]
}

/// `milvus://HOST:PORT/COLLECTION` → (`HOST:PORT`, `COLLECTION`).
fn parse_url(url: &str) -> Result<(String, String)> {
    let bad = |why: &str| {
        Error::invalid(
            "store",
            format!("`{url}`: {why}; expected milvus://HOST:PORT/COLLECTION"),
        )
    };
    let rest = url
        .strip_prefix("milvus://")
        .ok_or_else(|| bad("not a milvus:// URL"))?;
    let (endpoint, collection) = rest.split_once('/').ok_or_else(|| bad("no collection"))?;
    if endpoint.is_empty() || !endpoint.contains(':') {
        return Err(bad("no HOST:PORT"));
    }
    let valid = collection
        .chars()
        .enumerate()
        .all(|(i, ch)| ch == '_' || ch.is_ascii_alphabetic() || (i > 0 && ch.is_ascii_digit()));
    if collection.is_empty() || !valid || collection.len() > 200 {
        return Err(bad(
            "a collection name is letters, digits and _, not starting with a digit",
        ));
    }
    Ok((endpoint.to_string(), collection.to_string()))
}

/// One version as read from the server.
struct MilvusSnapshot {
    conn: Conn,
    version: String,
    manifest: Manifest,
    catalog: MemoryCatalog,
    /// Built by each replica from the episodes, at start and at each new version.
    keywords: Bm25,
}

impl MilvusSnapshot {
    fn read(conn: &Conn, head: Head) -> Result<MilvusSnapshot> {
        // Both reads wait for Milvus's consistency point (about 0.4 s): wait for them together.
        let (episodes, chunks) = std::thread::scope(|scope| {
            let chunks = scope.spawn(|| read_chunks(conn));
            let episodes = read_episodes(conn);
            let chunks = chunks
                .join()
                .unwrap_or_else(|_| Err(conn.unavailable("reading chunks: the thread panicked")));
            (episodes, chunks)
        });
        let (episodes, episode_hashes) = episodes?;
        let chunks = of_known_episodes(chunks?, &episodes);
        let started = std::time::Instant::now();
        let keywords = Bm25::build(&episodes)?;
        tracing::info!(
            "keyword index of {} episodes built in {} ms",
            episodes.len(),
            started.elapsed().as_millis()
        );
        Ok(MilvusSnapshot {
            conn: conn.clone(),
            version: head.version,
            manifest: head.manifest,
            catalog: MemoryCatalog::new(Records {
                episodes,
                chunks,
                episode_hashes,
            }),
            keywords,
        })
    }
}

/// Every episode (in id order, as the local store keeps them) and its content hash.
fn read_episodes(conn: &Conn) -> Result<(Vec<Episode>, BTreeMap<String, String>)> {
    let filter = format!(" && doc != {}", quote(MANIFEST_DOC));
    let mut parts: BTreeMap<String, BTreeMap<i64, String>> = BTreeMap::new();
    for rows in conn.query_all(&conn.docs, &["key", "doc", "part", "body"], &filter)? {
        let docs = strings(rows.get("doc"));
        let numbers = longs(rows.get("part"));
        let bodies = strings(rows.get("body"));
        for ((doc, part), body) in docs.into_iter().zip(numbers).zip(bodies) {
            parts.entry(doc).or_default().insert(part, body);
        }
    }
    let mut episodes = Vec::with_capacity(parts.len());
    let mut hashes = BTreeMap::new();
    for (id, pieces) in parts {
        let json: String = pieces.into_values().collect();
        let doc: EpisodeDoc =
            serde_json::from_str(&json).map_err(|e| conn.corrupt(format!("episode {id}: {e}")))?;
        hashes.insert(id, doc.hash);
        episodes.push(doc.episode);
    }
    Ok((episodes, hashes))
}

/// Every chunk row: its episode, its position in the episode, the chunk.
fn read_chunks(conn: &Conn) -> Result<Vec<(String, i64, Chunk)>> {
    let mut rows: Vec<(String, i64, Chunk)> = Vec::new();
    for page in conn.query_all(&conn.chunks, &["key", "episode_id", "seq", "record"], "")? {
        let ids = strings(page.get("episode_id"));
        let seqs = longs(page.get("seq"));
        let records = strings(page.get("record"));
        for ((episode, seq), record) in ids.into_iter().zip(seqs).zip(records) {
            let chunk: Chunk = serde_json::from_str(&record)
                .map_err(|e| conn.corrupt(format!("a chunk of {episode}: {e}")))?;
            rows.push((episode, seq, chunk));
        }
    }
    Ok(rows)
}

/// The chunks whose episode was read (a write in progress can leave others), in order.
fn of_known_episodes(mut rows: Vec<(String, i64, Chunk)>, episodes: &[Episode]) -> Vec<Chunk> {
    let known: std::collections::HashSet<&str> = episodes.iter().map(|e| e.id.as_str()).collect();
    rows.retain(|(episode, _, _)| known.contains(episode.as_str()));
    rows.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    rows.into_iter().map(|(_, _, c)| c).collect()
}

impl Snapshot for MilvusSnapshot {
    fn location(&self) -> String {
        format!("{}@{}", self.conn.location, self.version)
    }

    fn version(&self) -> &str {
        &self.version
    }

    fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    fn catalog(&self) -> &dyn Catalog {
        &self.catalog
    }

    fn keyword_search(&self, text: &str, k: usize) -> Result<Vec<(String, f32)>> {
        self.keywords.search(text, k)
    }

    fn search(
        &self,
        query: &[f32],
        k: usize,
        filter: &ChunkFilter,
        exact: bool,
    ) -> Result<Vec<(u64, f32)>> {
        if exact {
            return Err(Error::Unsupported(
                "exact search scans a local index; a Milvus store searches its HNSW index (mode=ann)"
                    .into(),
            ));
        }
        let k = k.min(QUERY_WINDOW).min(self.manifest.chunks);
        if k == 0 {
            return Ok(Vec::new());
        }
        let ef = self.manifest.hnsw.expansion_search.max(k);
        let mut options = SearchOptions::new()
            .limit(k)
            .add_param("anns_field", "vector")
            .add_param("metric_type", "IP")
            .add_param("params", format!("{{\"ef\": {ef}}}"))
            .consistency_level(ConsistencyLevel::Bounded as i32);
        if let Some(expr) = filter_expr(filter) {
            options = options.filter(expr);
        }
        let collection = self.conn.chunks.clone();
        let vector = query.to_vec();
        self.conn.call("search", |c| async move {
            let results = c
                .search(collection, vec![Value::from(vector)], Some(options))
                .await?;
            let mut hits = Vec::new();
            for r in results {
                for (id, score) in r.id.iter().zip(&r.score) {
                    if let Value::Long(key) = id {
                        hits.push((*key as u64, *score));
                    }
                }
            }
            Ok(hits)
        })
    }

    fn vectors(&self, keys: &[u64]) -> Result<HashMap<u64, Vec<f32>>> {
        let dims = self.manifest.dims;
        let mut out = HashMap::with_capacity(keys.len());
        for batch in keys.chunks(1024) {
            let list: Vec<String> = batch.iter().map(|k| (*k as i64).to_string()).collect();
            let expr = format!("key in [{}]", list.join(", "));
            let rows = self.conn.query(
                &self.conn.chunks,
                expr,
                &["key", "vector"],
                ConsistencyLevel::Bounded,
            )?;
            let found = longs(rows.get("key"));
            let Some(ValueVec::Float(flat)) = rows.get("vector") else {
                continue;
            };
            for (key, v) in found.iter().zip(flat.chunks_exact(dims)) {
                out.insert(*key as u64, v.to_vec());
            }
        }
        Ok(out)
    }

    fn health(&self) -> Result<()> {
        if self.conn.has_collection(&self.conn.chunks)? {
            Ok(())
        } else {
            Err(self.conn.unavailable("its collection was dropped"))
        }
    }
}

impl Store for MilvusStore {
    fn location(&self) -> String {
        self.conn.location.clone()
    }

    /// Strong: a writer sees its own write at once (about 0.4 s a call; it is polled off the
    /// request path).
    fn live_version(&self) -> Result<Option<String>> {
        Ok(self.conn.head(ConsistencyLevel::Strong)?.map(|h| h.version))
    }

    fn open(&self, expect_model: Option<&str>) -> Result<Option<Box<dyn Snapshot>>> {
        let Some(head) = self.conn.head(ConsistencyLevel::Strong)? else {
            return Ok(None);
        };
        if let Some(model) = expect_model {
            if model != head.manifest.model_id {
                return Err(Error::IndexMismatch {
                    path: self.conn.location.clone().into(),
                    message: format!(
                        "it was built with model `{}`, not `{model}`; use another collection for `{model}`",
                        head.manifest.model_id
                    ),
                });
            }
        }
        let started = std::time::Instant::now();
        let snapshot = MilvusSnapshot::read(&self.conn, head)?;
        tracing::info!(
            "read {} episodes and {} chunks of {} from {} in {} ms",
            snapshot.manifest.episodes,
            snapshot.manifest.chunks,
            snapshot.version,
            self.conn.location,
            started.elapsed().as_millis()
        );
        Ok(Some(Box::new(snapshot)))
    }

    fn lock(&self) -> Result<Box<dyn std::any::Any>> {
        // No lock across machines: `apply` checks the version it started from instead.
        Ok(Box::new(()))
    }

    fn apply(&self, previous: Option<&dyn Snapshot>, change: &Change) -> Result<String> {
        self.ensure_collections(change.manifest.dims, &change.manifest.hnsw)?;
        self.check_unchanged(previous)?;
        let fields = Fields::new(change.manifest.dims);
        let touched: Vec<&str> = change
            .upserted
            .iter()
            .map(String::as_str)
            .chain(change.deleted.iter().map(String::as_str))
            .collect();
        for batch in touched.chunks(256) {
            let list = quoted_list(batch.iter().copied());
            self.conn
                .delete(&self.conn.chunks, format!("episode_id in [{list}]"))?;
            self.conn
                .delete(&self.conn.docs, format!("doc in [{list}]"))?;
        }
        self.insert_chunks(change, &fields)?;
        self.insert_docs(change, &fields)?;
        let version = new_version();
        self.publish(change, &fields, &version)?;
        Ok(version)
    }
}

fn new_version() -> String {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    format!("v-{millis}-{}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corpus::Lang;

    #[test]
    fn filters_become_expressions_with_quoted_values() {
        let filter = ChunkFilter {
            lang: Some(Lang::Es),
            episode: Some("a\"b\\c".into()),
            podcast: Some("The Show".into()),
            kind: Some(crate::chunk::ChunkKind::Quote),
        };
        assert_eq!(
            filter_expr(&filter).unwrap(),
            r#"lang == "es" && episode_id == "a\"b\\c" && podcast == "the show" && kind == "quote""#
        );
        assert_eq!(filter_expr(&ChunkFilter::default()), None);
    }

    #[test]
    fn store_urls_name_host_port_and_collection() {
        assert_eq!(
            parse_url("milvus://127.0.0.1:19530/podseek").unwrap(),
            ("127.0.0.1:19530".into(), "podseek".into())
        );
        for bad in [
            "milvus://host/podseek",
            "milvus://h:1/",
            "milvus://h:1/9x",
            "milvus://h:1/a-b",
            "http://h:1/a",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn long_documents_split_at_character_boundaries() {
        let text = "ñ".repeat(10);
        let parts = split_utf8(&text, 5);
        assert!(parts.iter().all(|p| p.len() <= 5));
        assert_eq!(parts.concat(), text);
    }
}
