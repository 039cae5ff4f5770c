//! The `podseek` command line: a thin shell over the library.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand, ValueEnum};
use podseek::chunk::{ChunkSettings, WholeChapters};
use podseek::corpus::{self, Parsed};
use podseek::embed;
use podseek::engine::{self, EngineOptions};
use podseek::eval;
use podseek::fetch;
use podseek::index::Quantization;
use podseek::index::{self, HnswParams, LocalSnapshot};
use podseek::ingest::{self, IngestOptions};
use podseek::progress;
use podseek::search::keyword::Analysis;
use podseek::search::{
    Mode, Query, Ranking, SearchResponse, TranslateWhen, TranslationFusion, WholeFusion,
};
use podseek::serve;
use podseek::transcribe::hear::{self, HearOptions};
use podseek::transcribe::store::TranscriptStore;
use podseek::translate::Apertium;
use std::sync::Arc;

#[derive(Parser)]
#[command(
    name = "podseek",
    version,
    about = "Cross-lingual semantic search over podcast chapters (English ⇄ Spanish)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Parse podcast pages, JSON/JSONL episodes or RSS feeds (following their chapter and
    /// transcript links) and print the normalized corpus. Writes nothing.
    Parse(ParseArgs),
    /// Print embedding vectors (JSON) for texts, for inspection.
    Embed(EmbedArgs),
    /// Read pages, JSON/JSONL files or RSS feeds (files or URLs), embed their chunks and add them
    /// to the index (upsert by episode).
    Ingest(IngestArgs),
    /// Transcribe feeds' audio-only episodes into a transcript folder (Whisper base, on this
    /// machine), for a later `ingest --transcripts DIR`; `--shard i/n` splits a catalogue over
    /// machines. Indexes nothing.
    Transcribe(TranscribeArgs),
    /// Print an indexed episode's transcript as WebVTT, SRT or Podcasting 2.0 JSON.
    Transcript(TranscriptArgs),
    /// Remove episodes from the index by id (a new generation, switched atomically).
    Delete(DeleteArgs),
    /// Fold a local index's segments into one, dropping replaced and deleted chunks (writes do
    /// this by themselves past 8 segments or a quarter of chunks replaced). Embeds nothing.
    Compact(CompactArgs),
    /// Ask a question; prints the nearest chapters in either language.
    Search(SearchArgs),
    /// Serve the search page, the JSON API and MCP over HTTP.
    Serve(ServeArgs),
    /// Serve MCP over stdio (for agent clients). Logs go to stderr.
    Mcp(McpArgs),
    /// Score retrieval against judged queries (BEIR queries.jsonl + BEIR or TREC qrels).
    Eval(EvalArgs),
    /// Benchmarks: `embed` (throughput and query latency per model) or `ann` (recall/speed sweep).
    Bench {
        #[command(subcommand)]
        what: BenchCommand,
    },
}

/// Whether questions are also searched translated (Apertium), and how the two scores fuse.
#[derive(Clone, Copy, ValueEnum)]
enum Translate {
    Off,
    /// The better of the question's and its translation's vector scores.
    Max,
    /// Their mean.
    Mean,
    /// The translation's words join the keyword part only: no second model call.
    Keywords,
}

/// The engine's own default (`EngineOptions::default()`), so every surface's flag agrees with it.
impl Default for Translate {
    fn default() -> Self {
        match EngineOptions::default().translate {
            None => Translate::Off,
            Some(TranslationFusion::Max) => Translate::Max,
            Some(TranslationFusion::Mean) => Translate::Mean,
            Some(TranslationFusion::Keywords) => Translate::Keywords,
        }
    }
}

impl Translate {
    fn fusion(self) -> Option<TranslationFusion> {
        match self {
            Translate::Off => None,
            Translate::Max => Some(TranslationFusion::Max),
            Translate::Mean => Some(TranslationFusion::Mean),
            Translate::Keywords => Some(TranslationFusion::Keywords),
        }
    }
}

/// What `eval` scores.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum System {
    /// The index's embeddings (with the keyword bonus unless `--dense-only`).
    Dense,
    /// BM25 alone over the same chapters: the keyword baseline.
    Bm25,
}

impl System {
    fn name(self) -> &'static str {
        match self {
            System::Dense => "dense",
            System::Bm25 => "bm25",
        }
    }
}

#[derive(Args)]
struct ParseArgs {
    /// Pages, JSON/JSONL episode files, RSS feed files or feed URLs (http, https).
    #[arg(required = true)]
    sources: Vec<String>,
    /// One JSON document (episodes → chapters → quotes, entities) instead of a summary.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct EmbedArgs {
    #[arg(long, default_value = embed::DEFAULT_MODEL)]
    model: String,
    /// Embed as passages (documents) instead of queries.
    #[arg(long)]
    passage: bool,
    #[arg(required = true)]
    texts: Vec<String>,
}

#[derive(Args)]
struct IngestArgs {
    /// Pages, JSON/JSONL episode files, RSS feed files or feed URLs (http, https).
    #[arg(required_unless_present = "refresh")]
    sources: Vec<String>,
    /// Also re-read every feed the index already holds episodes from; only changed episodes
    /// are embedded again.
    #[arg(long)]
    refresh: bool,
    #[arg(long, default_value = embed::DEFAULT_MODEL)]
    model: String,
    #[arg(long, default_value = index::DEFAULT_DIR)]
    index: PathBuf,
    /// Where the index lives when not in `--index`: `milvus://HOST:PORT/COLLECTION` (a Milvus
    /// server; needs a build with the `milvus` feature).
    #[arg(long)]
    store: Option<String>,
    /// Parallel inference sessions.
    #[arg(long, default_value_t = default_threads())]
    threads: usize,
    #[command(flatten)]
    chunking: ChunkArgs,
    /// Also index a translated twin of every summary and quote chunk (Apertium). Translations
    /// are stored in the index, so re-ingesting unchanged text does not translate again.
    #[arg(long)]
    translate: bool,
    #[command(flatten)]
    hearing: HearingArgs,
    #[command(flatten)]
    fetching: FetchArgs,
}

/// How a new index cuts its chunks (an existing index keeps its own).
#[derive(Args, Clone)]
struct ChunkArgs {
    /// Chunk size in model tokens (new indexes only).
    #[arg(long, default_value_t = ChunkSettings::default().max_tokens)]
    chunk_tokens: usize,
    /// Leave quotes out of the index (new indexes only).
    #[arg(long)]
    no_quotes: bool,
    /// One more vector per chapter, of the whole chapter, embedded under this title (new
    /// indexes only).
    #[arg(long, value_enum, default_value_t = ChunkSettings::default().whole_chapters)]
    whole_chapters: WholeChapters,
    /// Summary chunks beside the whole-chapter vectors (new indexes only; always with
    /// `--whole-chapters off`).
    #[arg(long)]
    summary_chunks: bool,
}

impl ChunkArgs {
    fn settings(&self) -> ChunkSettings {
        ChunkSettings {
            max_tokens: self.chunk_tokens,
            quotes: !self.no_quotes,
            whole_chapters: self.whole_chapters,
            summaries: self.summary_chunks,
            ..ChunkSettings::default()
        }
    }
}

/// Where fetches nobody named on this command line may go.
#[derive(Args, Clone, Default)]
struct FetchArgs {
    /// A network (`10.0.0.0/8`), address or host name that feeds named by others (remembered,
    /// written to the API), their linked documents and their audio may be fetched from. Public
    /// addresses always may; loopback, private and link-local ones only when allowed here.
    /// Repeat for more.
    #[arg(long = "fetch-allow")]
    fetch_allow: Vec<fetch::Allowed>,
}

impl FetchArgs {
    fn policy(&self) -> fetch::FetchPolicy {
        fetch::FetchPolicy::allowing(self.fetch_allow.clone())
    }
}

/// How episodes with audio and no transcript are heard.
#[derive(Args)]
struct HearingArgs {
    /// Do not transcribe audio-only episodes (transcripts already in the folder are still used).
    #[arg(long)]
    no_transcribe: bool,
    /// The transcript folder: transcripts made here or by `podseek transcribe`, one per enclosure
    /// and model. Default: `INDEX/transcripts` for a local index, `./transcripts` otherwise.
    #[arg(long)]
    transcripts: Option<PathBuf>,
    /// Episodes transcribed at once (each with its own model and `--threads` threads).
    #[arg(long, default_value_t = 1)]
    transcribe_jobs: usize,
}

#[derive(Args)]
struct TranscribeArgs {
    /// RSS feed files or feed URLs.
    #[arg(required = true)]
    sources: Vec<String>,
    /// The transcript folder to fill.
    #[arg(long)]
    out: PathBuf,
    /// Take only shard I of N (`0/4` … `3/4`), by a hash of each enclosure's URL.
    #[arg(long, value_parser = parse_shard)]
    shard: Option<(usize, usize)>,
    /// Threads each transcriber uses.
    #[arg(long, default_value_t = default_threads())]
    threads: usize,
    /// Episodes transcribed at once.
    #[arg(long, default_value_t = 1)]
    jobs: usize,
    #[command(flatten)]
    fetching: FetchArgs,
}

#[derive(Args)]
struct TranscriptArgs {
    /// The episode id, as `podseek search` and `GET /v1/episodes` show it.
    episode: String,
    #[arg(long, value_enum, default_value = "vtt")]
    format: podseek::transcribe::export::Format,
    #[arg(long, default_value = index::DEFAULT_DIR)]
    index: PathBuf,
    /// Where the index lives when not in `--index`: `milvus://HOST:PORT/COLLECTION`.
    #[arg(long)]
    store: Option<String>,
}

fn parse_shard(text: &str) -> Result<(usize, usize), String> {
    let bad = || format!("`{text}`: a shard is I/N with 0 <= I < N, e.g. 0/4");
    let (i, n) = text.split_once('/').ok_or_else(bad)?;
    let (i, n) = (
        i.trim().parse::<usize>().map_err(|_| bad())?,
        n.trim().parse::<usize>().map_err(|_| bad())?,
    );
    (i < n).then_some((i, n)).ok_or_else(bad)
}

#[derive(Args)]
struct DeleteArgs {
    /// Episode ids, as `podseek search` and `GET /v1/episodes` show them.
    #[arg(required = true)]
    ids: Vec<String>,
    #[arg(long, default_value = index::DEFAULT_DIR)]
    index: PathBuf,
    /// Where the index lives when not in `--index`: `milvus://HOST:PORT/COLLECTION` (a Milvus
    /// server; needs a build with the `milvus` feature).
    #[arg(long)]
    store: Option<String>,
}

#[derive(Args)]
struct CompactArgs {
    #[arg(long, default_value = index::DEFAULT_DIR)]
    index: PathBuf,
}

#[derive(Args)]
struct SearchArgs {
    question: String,
    #[arg(short, long, default_value_t = 10)]
    k: usize,
    /// Only chapters in this language (en, es).
    #[arg(long)]
    lang: Option<String>,
    /// Only chapters of this episode id.
    #[arg(long)]
    episode: Option<String>,
    /// Only episodes of this podcast (its title; feed episodes).
    #[arg(long)]
    podcast: Option<String>,
    #[arg(long, default_value = index::DEFAULT_DIR)]
    index: PathBuf,
    /// Where the index lives when not in `--index`: `milvus://HOST:PORT/COLLECTION` (a Milvus
    /// server; needs a build with the `milvus` feature).
    #[arg(long)]
    store: Option<String>,
    /// `ann` (HNSW) or `exact` (scan every vector).
    #[arg(long, value_enum, default_value_t = Mode::Ann)]
    mode: Mode,
    /// Also search with the question translated by Apertium (as `serve --translate`).
    #[arg(long, value_enum, default_value_t = Translate::default())]
    translate: Translate,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct ServeArgs {
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    #[arg(long, default_value = index::DEFAULT_DIR)]
    index: PathBuf,
    /// Where the index lives when not in `--index`: `milvus://HOST:PORT/COLLECTION` (a Milvus
    /// server; needs a build with the `milvus` feature).
    #[arg(long)]
    store: Option<String>,
    /// Inference sessions (concurrent queries embedded at once).
    #[arg(long, default_value_t = default_threads())]
    threads: usize,
    /// Also search with the question translated by Apertium: `off`, `max` or `mean` fusion of the
    /// two vectors' scores, or `keywords` (the default: the translation's words only, no second
    /// model call; chosen on the tuning half, BENCHMARKS.md). Without Apertium installed,
    /// questions are searched untranslated and `/readyz` says so.
    #[arg(long, value_enum, default_value_t = Translate::default())]
    translate: Translate,
    /// Keyword analysis: `shared` or `per-language` (stemmers; translated twins included).
    #[arg(long, value_enum, default_value_t = Analysis::Shared)]
    keyword: Analysis,
    /// A file holding the admin key (enables the write API). Else `PODSEEK_ADMIN_KEY`; keys are
    /// never taken from the command line.
    #[arg(long)]
    admin_key_file: Option<PathBuf>,
    /// A file holding the search key. Else `PODSEEK_SEARCH_KEY`.
    #[arg(long)]
    search_key_file: Option<PathBuf>,
    /// Searches need the search (or admin) key even on loopback. Beyond loopback they need it
    /// whenever a search key is set.
    #[arg(long)]
    require_search_key: bool,
    /// Serve searches beyond loopback without a key. Without it, `--addr` beyond loopback needs
    /// a search key; writes and `/metrics` beyond loopback always need a key.
    #[arg(long)]
    public_reads: bool,
    /// A browser origin allowed to call the API (CORS), e.g. `https://app.example.org`; repeat
    /// for more. None by default.
    #[arg(long = "cors-origin")]
    cors_origins: Vec<String>,
    /// A host name clients use for this server beyond loopback (checked on `/mcp` against DNS
    /// rebinding); repeat for more.
    #[arg(long = "allowed-host")]
    allowed_hosts: Vec<String>,
    /// Search requests queued or running at once; more are refused at once with 503.
    #[arg(long, default_value_t = serve::admission::Limits::default().queue)]
    queue: usize,
    /// Seconds a request may take before it is answered 504.
    #[arg(long, default_value_t = serve::admission::Limits::default().deadline.as_secs_f64())]
    deadline: f64,
    #[command(flatten)]
    fetching: FetchArgs,
}

#[derive(Args)]
struct McpArgs {
    #[arg(long, default_value = index::DEFAULT_DIR)]
    index: PathBuf,
    /// Where the index lives when not in `--index`: `milvus://HOST:PORT/COLLECTION` (a Milvus
    /// server; needs a build with the `milvus` feature).
    #[arg(long)]
    store: Option<String>,
}

#[derive(Args)]
struct EvalArgs {
    #[arg(long, default_value = "tests/data/unseen/queries.jsonl")]
    queries: PathBuf,
    #[arg(long, default_value = "tests/data/unseen/qrels.tsv")]
    qrels: PathBuf,
    #[arg(long, default_value = index::DEFAULT_DIR)]
    index: PathBuf,
    /// Where the index lives when not in `--index`: `milvus://HOST:PORT/COLLECTION` (a Milvus
    /// server; needs a build with the `milvus` feature).
    #[arg(long)]
    store: Option<String>,
    /// The model the index must have been built with (checked against its manifest).
    #[arg(long)]
    model: Option<String>,
    /// `ann` or `exact` search; ignored for `--system bm25`.
    #[arg(long, value_enum, default_value_t = Mode::Ann)]
    mode: Mode,
    /// `dense` (the index's embeddings) or `bm25` (keyword baseline over the same chapters).
    #[arg(long, value_enum, default_value_t = System::Dense)]
    system: System,
    /// The k of the Hit@k column (nDCG and MRR are at 10, Recall at 1/5/10/100, as reported).
    #[arg(long, default_value_t = 10)]
    k: usize,
    /// Write a TREC run file (`qid Q0 docid rank score tag`).
    #[arg(long)]
    run_out: Option<PathBuf>,
    #[arg(long)]
    json: bool,
    /// Rank by embeddings alone, without the keyword boost.
    #[arg(long)]
    dense_only: bool,
    /// Print one Markdown table row with this label (for baseline tables) instead of the report.
    #[arg(long)]
    row: Option<String>,
    /// Which half of a split query set: `tune` (choose parameters), `test` (report), or `all`.
    #[arg(long, default_value = "all")]
    split: String,
    /// With --row: print the table's header first.
    #[arg(long)]
    header: bool,
    /// Also search with the question translated by Apertium: `off`, `max` or `mean` fusion of the
    /// two vectors' scores, or `keywords` (the default: the translation's words only, no second
    /// model call).
    #[arg(long, value_enum, default_value_t = Translate::default())]
    translate: Translate,
    /// Keyword analysis: `shared` (one field, no stemming) or `per-language` (English and
    /// Spanish fields with stemmers; translated twin chunks indexed under the other language).
    #[arg(long, value_enum, default_value_t = Analysis::Shared)]
    keyword: Analysis,
    /// Score offsets for chapters in the question's own language, `EN,ES` (e.g. `0,0.02`).
    #[arg(long, default_value = "0,0", value_parser = parse_offsets)]
    same_language: [f32; 2],
    /// How whole-chapter vectors join the best chunk: `off`, `max`, or `weighted` (with
    /// `--whole-weight`).
    #[arg(long, value_enum, default_value_t = WholeRule::Weighted)]
    whole: WholeRule,
    /// The whole-chapter vector's weight in `--whole weighted`.
    #[arg(long, default_value_t = default_whole_weight())]
    whole_weight: f32,
    /// With --translate: translate only when fewer than half of the question's best N chapters
    /// are in its own language (0: every question).
    #[arg(long, default_value_t = 0)]
    translate_lead: usize,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum WholeRule {
    Off,
    Max,
    Weighted,
}

fn default_whole_weight() -> f32 {
    match Ranking::default().whole {
        WholeFusion::Weighted(w) => w,
        _ => 0.5,
    }
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Chapters/s and tokens/s embedding the corpus, and single-query latency p50/p99.
    Embed {
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "embeddinggemma,use-m3,e5-small,use-m3+e5"
        )]
        models: Vec<String>,
        #[arg(long, default_value = "data/podcast-page.txt")]
        corpus: PathBuf,
        #[arg(long, default_value = "tests/data/unseen/queries.jsonl")]
        queries: PathBuf,
        #[arg(long, default_value_t = default_threads())]
        threads: usize,
    },
    /// Load a running server: concurrent clients searching for a while; errors, throughput, p50/p99.
    Http {
        /// The server, or several replicas separated by commas (clients are spread over them).
        #[arg(long, value_delimiter = ',', default_value = "http://127.0.0.1:8080")]
        url: Vec<String>,
        #[arg(long, default_value_t = 32)]
        clients: usize,
        #[arg(long, default_value_t = 60)]
        seconds: u64,
        #[arg(long, default_value = "tests/data/unseen/queries.jsonl")]
        queries: PathBuf,
        /// Make every question distinct so no request is answered from the query cache.
        #[arg(long)]
        unique: bool,
    },
    /// Attack a running server on loopback (huge questions, slow heads, idle sockets) while a
    /// polite client asks; prints what each cost and what the polite client saw.
    Attack {
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        url: String,
        /// The server's process id, to read its resident memory.
        #[arg(long)]
        pid: Option<u32>,
        /// Seconds per attack.
        #[arg(long, default_value_t = 15.0)]
        seconds: f64,
        /// Fail unless the polite client got every answer with p99 under 1 s, every attacking
        /// connection was closed, and the server's memory, 5 s after each attack, had grown by
        /// at most this many MB over its level before it.
        #[arg(long)]
        check_rss_growth_mb: Option<f64>,
    },
    /// Recall@10 against exact search, queries/s, p50/p99 for a sweep of ef and quantization.
    Ann {
        #[arg(long, default_value = index::DEFAULT_DIR)]
        index: PathBuf,
        #[arg(long, default_value = "tests/data/unseen/queries.jsonl")]
        queries: PathBuf,
        #[arg(long, value_delimiter = ',', default_value = "8,16,32,64,128,256")]
        ef: Vec<usize>,
        #[arg(long, value_enum, value_delimiter = ',', default_value = "f32,f16,i8")]
        quantization: Vec<Quantization>,
    },
    /// The vector layer at N synthetic chunks (perturbed real vectors): build vectors/s, write,
    /// size on disk, open time, serving RSS, p50/p99 and recall@10 (unfiltered and filtered) per
    /// quantization, each index served by a fresh process.
    Scale {
        #[arg(long, default_value_t = 100_000)]
        chunks: usize,
        /// The index whose vectors the synthetic ones are made from.
        #[arg(long, default_value = index::DEFAULT_DIR)]
        from: PathBuf,
        #[arg(
            long,
            value_enum,
            value_delimiter = ',',
            default_value = "f32,f16,bf16,i8"
        )]
        quantization: Vec<Quantization>,
        #[arg(long, default_value_t = 500)]
        queries: usize,
        /// ef at query time (the default's, then others measured on the same index).
        #[arg(long, value_delimiter = ',', default_value = "128,64,256")]
        ef: Vec<usize>,
        /// ef while building.
        #[arg(long, default_value_t = HnswParams::default().expansion_add)]
        ef_construction: usize,
        /// M, the graph's degree.
        #[arg(long, default_value_t = HnswParams::default().connectivity)]
        connectivity: usize,
        /// Where the indexes are written (removed afterwards unless --keep).
        #[arg(long, default_value = "target/bench-scale")]
        dir: PathBuf,
        #[arg(long)]
        keep: bool,
    },
    /// Transcription on read-aloud episodes (`scripts/speech_corpus.py`): speed as audio seconds
    /// per second, word error rate per language, peak memory, and chapter segmentation (Pk,
    /// WindowDiff) with the default settings and, with `--sweep`, a grid chosen on the tune split.
    Transcribe {
        /// The folder with truth.json and the episodes' audio.
        dir: PathBuf,
        /// Threads Whisper uses.
        #[arg(long, default_value_t = default_threads())]
        threads: usize,
        /// Also try segmentation settings on the tune split and report the best on the test split.
        #[arg(long)]
        sweep: bool,
    },
    /// One written `bench scale` index served and measured (run by `bench scale` in a process
    /// of its own, so RSS and open time are a fresh server's).
    #[command(hide = true)]
    ScaleServe {
        /// The index directory (served with the parameters its manifest names).
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        workload: PathBuf,
        #[arg(long)]
        dims: usize,
        /// Other ef to measure after the manifest's.
        #[arg(long, value_delimiter = ',')]
        sweep: Vec<usize>,
    },
}

/// The engine `eval` scores: the index's own model, ranked as the flags say.
fn eval_options(args: &EvalArgs) -> EngineOptions {
    let mut ranking = Ranking {
        same_language: args.same_language,
        ..Ranking::default()
    };
    if args.dense_only {
        ranking.hybrid = None;
    }
    if args.translate_lead > 0 {
        ranking.translate_when = TranslateWhen::OtherLanguageLeads(args.translate_lead);
    }
    ranking.whole = match args.whole {
        WholeRule::Off => WholeFusion::Off,
        WholeRule::Max => WholeFusion::Max,
        WholeRule::Weighted => WholeFusion::Weighted(args.whole_weight),
    };
    EngineOptions {
        threads: default_threads(),
        translate: args.translate.fusion(),
        keyword: args.keyword,
        ranking,
        require_translator: true,
        expect_model: args.model.clone(),
    }
}

/// A report as a table row (`--row`), JSON (`--json`) or the full text report.
fn print_report(
    report: &eval::Report,
    row: Option<&str>,
    header: bool,
    json: bool,
) -> anyhow::Result<()> {
    if let Some(label) = row {
        if header {
            println!("{}", eval::ROW_HEADER);
        }
        println!("{}", eval::row(label, report));
    } else if json {
        println!("{}", serde_json::to_string_pretty(report)?);
    } else {
        print!("{}", eval::render(report));
    }
    Ok(())
}

fn parse_offsets(text: &str) -> Result<[f32; 2], String> {
    let bad = || format!("`{text}` is not two numbers `EN,ES`");
    let parts: Vec<f32> = text
        .split(',')
        .map(|p| p.trim().parse::<f32>())
        .collect::<Result<_, _>>()
        .map_err(|_| bad())?;
    match parts.as_slice() {
        [en, es] => Ok([*en, *es]),
        _ => Err(bad()),
    }
}

/// The commit the binary runs from, when it runs in a git checkout (for report manifests).
fn git_commit() -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "podseek=info,warn,symphonia=error".into()),
        )
        .init();
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Read every source: pages and JSON files from disk, feeds (files or URLs) with their linked
/// chapters and transcripts, and the `remembered` feeds an index holds (fetched under `policy`,
/// as are all linked documents). A feed that cannot be read at all is reported and skipped, so
/// one dead feed does not stop the others; diagnostics are printed as they are.
fn load_sources(
    sources: &[String],
    remembered: &[String],
    policy: &fetch::FetchPolicy,
) -> anyhow::Result<Parsed> {
    let mut all = Parsed::default();
    let mut feeds: Vec<(String, fetch::Origin)> = remembered
        .iter()
        .map(|f| (f.clone(), fetch::Origin::Untrusted))
        .collect();
    for source in sources {
        if fetch::is_url(source) {
            feeds.push((source.clone(), fetch::Origin::Operator));
            continue;
        }
        let bytes = std::fs::read(source).with_context(|| format!("cannot read {source}"))?;
        if corpus::feed::looks_like_feed(&String::from_utf8_lossy(&bytes[..bytes.len().min(1024)]))
        {
            feeds.push((local_feed_name(source), fetch::Origin::Operator));
            continue;
        }
        let mut p = corpus::parse_file(source, &bytes);
        all.episodes.append(&mut p.episodes);
        all.diagnostics.append(&mut p.diagnostics);
    }
    if !feeds.is_empty() {
        load_feeds(&feeds, policy, &mut all)?;
    }
    print_diagnostics(&all.diagnostics);
    Ok(all)
}

/// Same notes of one kind (a binary file gives one per line) after the first few.
const NOTES_PER_KIND: usize = 5;

/// Print diagnostics; a run of the same kind of note is cut to its first few and a count.
fn print_diagnostics(diagnostics: &[corpus::Diagnostic]) {
    let kind = |d: &corpus::Diagnostic| -> String {
        d.message.chars().filter(|c| !c.is_ascii_digit()).collect()
    };
    let mut seen: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for d in diagnostics {
        let n = seen.entry(kind(d)).or_default();
        *n += 1;
        if *n <= NOTES_PER_KIND {
            eprintln!("{}: {d}", if d.skipped { "skipped" } else { "note" });
        }
    }
    for (message, n) in seen {
        if n > NOTES_PER_KIND {
            let more = n - NOTES_PER_KIND;
            let example: String = message.chars().take(60).collect();
            eprintln!("… and {more} more like this (\"{example}…\")");
        }
    }
}

/// A local feed by its absolute path, so `ingest --refresh` finds it from any directory.
fn local_feed_name(source: &str) -> String {
    std::fs::canonicalize(source).map_or_else(|_| source.to_string(), |p| p.display().to_string())
}

fn load_feeds(
    feeds: &[(String, fetch::Origin)],
    policy: &fetch::FetchPolicy,
    all: &mut Parsed,
) -> anyhow::Result<()> {
    let fetcher = fetch::Fetcher::new(fetch::Limits::default(), policy.clone())?;
    let runtime = tokio::runtime::Runtime::new()?;
    let progress = progress::for_stderr();
    for (feed, origin) in feeds {
        match runtime.block_on(fetcher.load_feed(feed, *origin, progress.as_ref())) {
            Ok(mut p) => {
                all.episodes.append(&mut p.episodes);
                all.diagnostics.append(&mut p.diagnostics);
            }
            Err(e) => all.diagnostics.push(corpus::Diagnostic {
                position: corpus::Position {
                    file: feed.clone(),
                    line: 1,
                    column: 1,
                },
                episode: None,
                message: format!("feed not read: {e}"),
                skipped: true,
            }),
        }
    }
    Ok(())
}

/// The feeds the index at `dir` holds episodes from.
fn known_feeds(store: &dyn index::Store) -> anyhow::Result<Vec<String>> {
    let Some(stored) = store.open(None)? else {
        return Ok(Vec::new());
    };
    let catalog = stored.catalog();
    let mut feeds = Vec::new();
    for id in catalog.episode_ids() {
        if let Some(feed) = catalog.episode(id)?.and_then(|e| e.feed) {
            feeds.push(feed.feed_url);
        }
    }
    feeds.sort();
    feeds.dedup();
    Ok(feeds)
}

/// Exit 2 when input was skipped, so scripts notice.
fn parse_exit(parsed: &Parsed) -> ExitCode {
    if parsed.skipped_anything() {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Parse(args) => parse_command(args),
        Command::Embed(args) => embed_command(args),
        Command::Ingest(args) => ingest_command(args),
        Command::Transcribe(args) => transcribe_command(args),
        Command::Transcript(args) => transcript_command(args),
        Command::Delete(args) => delete_command(args),
        Command::Compact(CompactArgs { index }) => {
            let before = LocalSnapshot::open(&index, None)?.manifest.segments.len();
            let generation = index::local::compact(&index)?;
            println!(
                "compacted {before} segment(s) into one: {} is live in {}",
                generation,
                index.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Search(args) => search_command(args),
        Command::Serve(args) => serve_command(args),
        Command::Mcp(args) => mcp_command(args),
        Command::Eval(args) => eval_command(args),
        Command::Bench { what } => bench_command(what),
    }
}

fn parse_command(args: ParseArgs) -> anyhow::Result<ExitCode> {
    let ParseArgs { sources, json } = args;
    let parsed = load_sources(&sources, &[], &fetch::FetchPolicy::default())?;
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(
            &mut out,
            &serde_json::json!({"episodes": parsed.episodes, "diagnostics": parsed.diagnostics}),
        )?;
        writeln!(out)?;
    } else {
        write!(out, "{}", corpus::summary(&parsed))?;
    }
    Ok(parse_exit(&parsed))
}

fn embed_command(args: EmbedArgs) -> anyhow::Result<ExitCode> {
    let EmbedArgs {
        model,
        passage,
        texts,
    } = args;
    let embedder = embed::load(&model, 1)?;
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let vectors = if passage {
        embedder.embed_passages(&refs)?
    } else {
        refs.iter()
            .map(|t| embedder.embed_query(t))
            .collect::<Result<_, _>>()?
    };
    let items: Vec<_> = texts
        .iter()
        .zip(vectors)
        .map(|(t, v)| serde_json::json!({"text": t, "vector": v}))
        .collect();
    println!(
        "{}",
        serde_json::to_string(
            &serde_json::json!({"model": embedder.model_id(), "dims": embedder.dims(), "kind": if passage {"passage"} else {"query"}, "embeddings": items})
        )?
    );
    Ok(ExitCode::SUCCESS)
}

fn ingest_command(args: IngestArgs) -> anyhow::Result<ExitCode> {
    let IngestArgs {
        sources,
        refresh,
        model,
        index,
        store,
        threads,
        chunking,
        translate,
        hearing,
        fetching,
    } = args;
    let store = index::open_store(store.as_deref(), &index)?;
    let mut remembered = Vec::new();
    if refresh {
        let known = known_feeds(store.as_ref())?;
        if known.is_empty() {
            eprintln!("note: --refresh: the index holds no feed episodes yet");
        }
        remembered = known.into_iter().filter(|f| !sources.contains(f)).collect();
    }
    let mut parsed = load_sources(&sources, &remembered, &fetching.policy())?;
    if parsed.episodes.is_empty() {
        bail!("no episodes to ingest (see the messages above); the index was not changed");
    }
    let heard = hear_for_ingest(
        &mut parsed,
        hearing,
        &fetching,
        threads,
        store.as_ref(),
        &index,
    )?;
    let embedder = embed::load(&model, threads)?;
    chapter_heard(&mut parsed, &heard, embedder.as_ref())?;
    let mut options = IngestOptions::default();
    options.chunking = chunking.settings();
    if translate {
        options.translator = Some(Arc::new(Apertium::new()?));
    }
    options.progress = Arc::from(progress::for_stderr());
    let started = std::time::Instant::now();
    let report = ingest::ingest_into(
        store.as_ref(),
        embedder.as_ref(),
        parsed.episodes.clone(),
        &options,
    )?;
    print_ingest_report(
        &report,
        embedder.model_id(),
        &store.location(),
        started.elapsed(),
    );
    Ok(parse_exit(&parsed))
}

/// What an ingest did, in one line (and a note per duplicated episode id).
fn print_ingest_report(
    report: &ingest::IngestReport,
    model_id: &str,
    location: &str,
    took: std::time::Duration,
) {
    for id in &report.duplicates {
        eprintln!(
            "note: episode id `{id}` appears more than once in the input; the first one was kept"
        );
    }
    println!(
        "indexed {} episodes ({} added, {} replaced, {} unchanged), {} chapters, {} chunks ({} embedded now) with {} into {} in {:.1}s",
        report.episodes_total,
        report.episodes_added,
        report.episodes_replaced,
        report.episodes_unchanged,
        report.chapters_total,
        report.chunks_total,
        report.chunks_embedded,
        model_id,
        location,
        took.as_secs_f64()
    );
}

/// What `ingest` hears: its transcript folder (beside a local index, else `./transcripts`) and
/// whether to transcribe what the folder does not have.
fn hear_for_ingest(
    parsed: &mut Parsed,
    hearing: HearingArgs,
    fetching: &FetchArgs,
    threads: usize,
    store: &dyn index::Store,
    index: &std::path::Path,
) -> anyhow::Result<Vec<(usize, podseek::transcribe::Transcript)>> {
    let local = !store.location().starts_with("milvus://");
    let folder = hearing.transcripts.unwrap_or_else(|| {
        if local {
            index.join("transcripts")
        } else {
            "transcripts".into()
        }
    });
    let options = HearOptions {
        transcribe: !hearing.no_transcribe,
        jobs: hearing.transcribe_jobs,
        threads,
        policy: fetching.policy(),
        ..HearOptions::default()
    };
    hear_all(parsed, &TranscriptStore::new(folder), &options, None)
}

/// Find or make transcripts for the episodes that have audio and nothing it says, attach them,
/// and print what was heard; returns the transcripts by episode position.
fn hear_all(
    parsed: &mut Parsed,
    store: &TranscriptStore,
    options: &HearOptions,
    shard: Option<(usize, usize)>,
) -> anyhow::Result<Vec<(usize, podseek::transcribe::Transcript)>> {
    let wanted: Vec<usize> = parsed
        .episodes
        .iter()
        .enumerate()
        .filter_map(|(i, e)| hear::needs_hearing(e).map(|url| (i, url)))
        .filter(|(_, url)| shard.is_none_or(|(s, n)| hear::in_shard(url, s, n)))
        .map(|(i, _)| i)
        .collect();
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    let progress = progress::for_stderr();
    let heard = hear::hear(&parsed.episodes, &wanted, store, options, progress.as_ref())?;
    print_diagnostics(&heard.diagnostics);
    eprintln!(
        "heard {} of {} audio-only episodes ({} transcribed now, {} from {})",
        heard.transcripts.len(),
        wanted.len(),
        heard.transcribed,
        heard.reused,
        store.dir().display()
    );
    parsed.diagnostics.extend(heard.diagnostics);
    for (i, t) in &heard.transcripts {
        hear::attach(&mut parsed.episodes[*i], t);
    }
    Ok(heard.transcripts)
}

/// Episodes that had no chapters get chapters made from what was heard.
fn chapter_heard(
    parsed: &mut Parsed,
    heard: &[(usize, podseek::transcribe::Transcript)],
    embedder: &dyn embed::Embedder,
) -> anyhow::Result<()> {
    for (i, transcript) in heard {
        let episode = &mut parsed.episodes[*i];
        if episode
            .feed
            .as_ref()
            .is_some_and(|f| f.chapters_from == "none")
        {
            podseek::topics::give_chapters(episode, transcript, embedder)?;
        }
    }
    Ok(())
}

fn transcribe_command(args: TranscribeArgs) -> anyhow::Result<ExitCode> {
    let TranscribeArgs {
        sources,
        out,
        shard,
        threads,
        jobs,
        fetching,
    } = args;
    let mut parsed = load_sources(&sources, &[], &fetching.policy())?;
    let options = HearOptions {
        jobs,
        threads,
        policy: fetching.policy(),
        ..HearOptions::default()
    };
    let store = TranscriptStore::new(&out);
    let heard = hear_all(&mut parsed, &store, &options, shard)?;
    let seconds: f64 = heard.iter().map(|(_, t)| t.duration_s).sum();
    println!(
        "{} transcripts in {} ({:.0} s of audio)",
        heard.len(),
        out.display(),
        seconds
    );
    Ok(parse_exit(&parsed))
}

fn transcript_command(args: TranscriptArgs) -> anyhow::Result<ExitCode> {
    let TranscriptArgs {
        episode,
        format,
        index,
        store,
    } = args;
    let store = index::open_store(store.as_deref(), &index)?;
    let Some(opened) = store.open(None)? else {
        bail!("the index at {} is empty", store.location());
    };
    let Some(found) = opened.catalog().episode(&episode)? else {
        bail!("no episode with id `{episode}` in {}", store.location());
    };
    let cues: Vec<corpus::Cue> = found
        .chapters
        .iter()
        .flat_map(|c| c.transcript.clone())
        .collect();
    if cues.is_empty() {
        bail!("episode `{episode}` has no transcript");
    }
    print!("{}", podseek::transcribe::export::render(&cues, format));
    Ok(ExitCode::SUCCESS)
}

fn delete_command(args: DeleteArgs) -> anyhow::Result<ExitCode> {
    let DeleteArgs { ids, index, store } = args;
    let store = index::open_store(store.as_deref(), &index)?;
    let model = index::open_live(store.as_ref(), None)?
        .manifest()
        .model_id
        .clone();
    let embedder = embed::load(&model, 1)?;
    let report = ingest::delete_from(
        store.as_ref(),
        embedder.as_ref(),
        &ids,
        &IngestOptions::default(),
    )?;
    println!(
        "deleted {} episodes; {} episodes, {} chapters, {} chunks remain in {}",
        report.episodes_deleted,
        report.episodes_total,
        report.chapters_total,
        report.chunks_total,
        store.location()
    );
    Ok(ExitCode::SUCCESS)
}

fn search_command(args: SearchArgs) -> anyhow::Result<ExitCode> {
    let SearchArgs {
        question,
        k,
        lang,
        episode,
        podcast,
        index,
        store,
        mode,
        translate,
        json,
    } = args;
    let store = index::open_store(store.as_deref(), &index)?;
    let options = EngineOptions {
        translate: translate.fusion(),
        ..EngineOptions::default()
    };
    let engine = engine::open(store.as_ref(), options)?;
    let hits = engine.search(&Query {
        text: question.clone(),
        k: Some(k),
        lang,
        episode,
        podcast,
        mode,
    })?;
    if json {
        let answer = SearchResponse::new(question, hits);
        println!("{}", serde_json::to_string_pretty(&answer)?);
    } else {
        print!("{}", podseek::print::hits_table(&hits));
    }
    Ok(ExitCode::SUCCESS)
}

fn serve_command(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let ServeArgs {
        addr,
        index,
        store,
        threads,
        translate,
        keyword,
        admin_key_file,
        search_key_file,
        require_search_key,
        public_reads,
        cors_origins,
        allowed_hosts,
        queue,
        deadline,
        fetching,
    } = args;
    if !(deadline.is_finite() && deadline > 0.0) {
        bail!("--deadline must be a positive number of seconds");
    }
    let limits = serve::admission::Limits {
        queue: queue.max(1),
        deadline: std::time::Duration::from_secs_f64(deadline),
        ..serve::admission::Limits::default()
    };
    let store = index::open_store(store.as_deref(), &index)?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(serve::serve(serve::ServeOptions {
        addr,
        store,
        model: None,
        threads,
        translate: translate.fusion(),
        keyword,
        keys: serve::KeySources {
            admin_file: admin_key_file,
            search_file: search_key_file,
        },
        require_search_key,
        public_reads,
        cors_origins,
        allowed_hosts,
        limits,
        fetch_policy: fetching.policy(),
        connections: serve::listen::ConnectionLimits::default(),
    }))?;
    Ok(ExitCode::SUCCESS)
}

fn mcp_command(args: McpArgs) -> anyhow::Result<ExitCode> {
    let McpArgs { index, store } = args;
    let store = index::open_store(store.as_deref(), &index)?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(serve::mcp::serve_stdio(store))?;
    Ok(ExitCode::SUCCESS)
}

fn eval_command(args: EvalArgs) -> anyhow::Result<ExitCode> {
    let store = index::open_store(args.store.as_deref(), &args.index)?;
    let opened = index::open_live(store.as_ref(), args.model.as_deref())?;
    let records = opened.records()?;
    let chapter_lang = records
        .episodes
        .iter()
        .flat_map(|e| e.chapters.iter().map(|c| (c.id.clone(), c.lang)))
        .collect();
    let manifest = eval_manifest(&args, opened.manifest(), &store.location());
    let queries = eval::select_split(eval::load_queries(&args.queries)?, &args.split)?;
    let qrels = eval::load_qrels(&args.qrels)?;
    let report = match args.system {
        System::Bm25 => {
            let bm25 = podseek::search::keyword::Bm25::build(&records.episodes)?;
            let system = eval::System::Bm25(&bm25);
            eval::evaluate(&system, &queries, &qrels, &chapter_lang, manifest, args.k)?
        }
        System::Dense => {
            let engine = engine::over(opened, eval_options(&args))?;
            let system = eval::System::Dense {
                engine: &engine,
                mode: args.mode,
            };
            eval::evaluate(&system, &queries, &qrels, &chapter_lang, manifest, args.k)?
        }
    };
    if let Some(path) = &args.run_out {
        let tag = format!("podseek-{}", args.system.name());
        std::fs::write(path, eval::trec_run(&report, &tag))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    print_report(&report, args.row.as_deref(), args.header, args.json)?;
    Ok(ExitCode::SUCCESS)
}

/// What a report says it scored: the system, the index and the query set.
fn eval_manifest(args: &EvalArgs, m: &index::Manifest, location: &str) -> serde_json::Value {
    let mode = args
        .mode
        .to_possible_value()
        .map(|v| v.get_name().to_string());
    serde_json::json!({
        "system": args.system.name(), "mode": mode, "hybrid": !args.dense_only && args.system == System::Dense,
        "model": m.model_id, "index": location, "corpus_hash": m.corpus_hash, "chunking": m.chunking, "hnsw": m.hnsw,
        "queries": args.queries.display().to_string(), "split": args.split, "qrels": args.qrels.display().to_string(), "commit": git_commit(),
    })
}

fn bench_command(what: BenchCommand) -> anyhow::Result<ExitCode> {
    match what {
        BenchCommand::Embed {
            models,
            corpus,
            queries,
            threads,
        } => bench_embed_command(&models, &corpus, &queries, threads),
        BenchCommand::Http {
            url,
            clients,
            seconds,
            queries,
            unique,
        } => bench_http_command(&url, clients, seconds, &queries, unique),
        BenchCommand::Ann {
            index,
            queries,
            ef,
            quantization,
        } => bench_ann_command(&index, &queries, &ef, &quantization),
        BenchCommand::Attack {
            url,
            pid,
            seconds,
            check_rss_growth_mb,
        } => bench_attack_command(&url, pid, seconds, check_rss_growth_mb),
        BenchCommand::Scale {
            chunks,
            from,
            quantization,
            queries,
            ef,
            ef_construction,
            connectivity,
            dir,
            keep,
        } => {
            let params = scale_params(&quantization, ef[0], ef_construction, connectivity);
            bench_scale_command(chunks, &from, &params, &ef[1..], queries, &dir, keep)
        }
        BenchCommand::ScaleServe {
            dir,
            workload,
            dims,
            sweep,
        } => bench_scale_serve_command(&dir, &workload, dims, &sweep),
        BenchCommand::Transcribe {
            dir,
            threads,
            sweep,
        } => bench_transcribe_command(&dir, threads, sweep),
    }
}

/// One build's HNSW parameters per quantization asked for.
fn scale_params(
    quantization: &[Quantization],
    ef: usize,
    ef_construction: usize,
    connectivity: usize,
) -> Vec<HnswParams> {
    quantization
        .iter()
        .map(|&quantization| HnswParams {
            quantization,
            expansion_search: ef,
            expansion_add: ef_construction,
            connectivity,
        })
        .collect()
}

fn bench_transcribe_command(
    dir: &std::path::Path,
    threads: usize,
    sweep: bool,
) -> anyhow::Result<ExitCode> {
    use podseek::eval::hearing;
    let truth = hearing::read_truth(dir)?;
    let transcriber = podseek::transcribe::Transcriber::load(&embed::models_root(), threads)?;
    let heard = hearing::hear(dir, &truth, &transcriber)?;
    let embedder = embed::load(embed::DEFAULT_MODEL, threads)?;
    let embedded = hearing::embed_all(&heard, embedder.as_ref())?;
    println!(
        "episode\tlang\tsplit\taudio_s\twall_s\tx_real_time\twer\tchapters\tfound\tpk\twindowdiff"
    );
    let mut totals: std::collections::BTreeMap<String, [f64; 4]> = Default::default();
    for (h, e) in heard.iter().zip(&embedded) {
        let (errors, words) = h.word_errors();
        let seg = hearing::segmentation(h, e.as_ref(), &podseek::topics::Settings::default());
        println!(
            "{}\t{}\t{}\t{:.0}\t{:.1}\t{:.1}\t{:.3}\t{}\t{}\t{:.3}\t{:.3}",
            h.truth.file,
            h.truth.lang.code(),
            h.truth.split,
            h.transcript.duration_s,
            h.wall_s,
            h.transcript.duration_s / h.wall_s,
            errors as f64 / words as f64,
            h.truth.chapter_starts_s.len(),
            seg.found,
            seg.pk,
            seg.windowdiff
        );
        for key in [
            format!("{} {}", h.truth.lang.code(), h.truth.split),
            "all".to_string(),
        ] {
            let t = totals.entry(key).or_default();
            t[0] += h.transcript.duration_s;
            t[1] += h.wall_s;
            t[2] += errors as f64;
            t[3] += words as f64;
        }
    }
    for (key, [audio, wall, errors, words]) in &totals {
        println!("total {key}: {audio:.0} s of audio in {wall:.1} s ({:.1}x real time), WER {:.3} over {words:.0} words", audio / wall, errors / words);
    }
    println!(
        "peak RSS: {:.0} MB (Whisper, VAD and the embedding model loaded)",
        hearing::peak_rss_mb().unwrap_or(0.0)
    );
    if sweep {
        sweep_segmentation(&heard, &embedded);
    }
    Ok(ExitCode::SUCCESS)
}

/// Segmentation settings tried on the tune split; the best by mean WindowDiff is reported on test.
fn sweep_segmentation(
    heard: &[podseek::eval::hearing::Heard],
    embedded: &[Option<podseek::topics::Embedded>],
) {
    use podseek::eval::hearing;
    use podseek::topics::Settings;
    let mean = |split: &str, settings: &Settings| -> (f32, f32) {
        let part: Vec<_> = heard
            .iter()
            .zip(embedded)
            .filter(|(h, _)| h.truth.split == split)
            .collect();
        let sum = part.iter().fold((0.0, 0.0), |acc, (h, e)| {
            let s = hearing::segmentation(h, e.as_ref(), settings);
            (acc.0 + s.pk, acc.1 + s.windowdiff)
        });
        let n = part.len().max(1) as f32;
        (sum.0 / n, sum.1 / n)
    };
    let mut best: Option<(f32, Settings)> = None;
    println!("\nsweep on the tune split: window_s\tmin_chapter_s\tpk\twindowdiff");
    for window_s in [10.0, 20.0, 30.0, 45.0, 60.0] {
        for min_chapter_s in [20.0, 30.0, 60.0] {
            let settings = Settings {
                window_s,
                min_chapter_s,
                ..Default::default()
            };
            let (pk, wd) = mean("tune", &settings);
            println!("{window_s}\t{min_chapter_s}\t{pk:.3}\t{wd:.3}");
            if best.is_none_or(|(b, _)| wd < b) {
                best = Some((wd, settings));
            }
        }
    }
    let (_, chosen) = best.expect("a grid");
    for (name, settings) in [("default", Settings::default()), ("chosen on tune", chosen)] {
        let (pk, wd) = mean("test", &settings);
        println!("test split, {name} {settings:?}: Pk {pk:.3}, WindowDiff {wd:.3}");
    }
}

fn bench_embed_command(
    models: &[String],
    corpus: &std::path::Path,
    queries: &std::path::Path,
    threads: usize,
) -> anyhow::Result<ExitCode> {
    let parsed = load_sources(
        &[corpus.display().to_string()],
        &[],
        &fetch::FetchPolicy::default(),
    )?;
    let texts = question_texts(queries)?;
    let mut rows = Vec::new();
    for m in models {
        let model = embed::load(m, threads)?;
        rows.push(eval::bench::bench_embed(
            model.as_ref(),
            threads,
            &parsed.episodes,
            &texts,
        )?);
        eprintln!("{m}: done");
    }
    print!("{}", eval::bench::render_embed(&rows));
    Ok(ExitCode::SUCCESS)
}

fn bench_http_command(
    url: &[String],
    clients: usize,
    seconds: u64,
    queries: &std::path::Path,
    unique: bool,
) -> anyhow::Result<ExitCode> {
    let texts = question_texts(queries)?;
    let runtime = tokio::runtime::Runtime::new()?;
    let report = runtime.block_on(eval::load::run(
        url,
        clients,
        std::time::Duration::from_secs(seconds),
        &texts,
        unique,
    ))?;
    println!(
        "{} clients for {:.0}s: {} requests, {} accepted, {} shed (503), {} errors, {:.1} accepted/s, accepted p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        report.clients, report.seconds, report.requests, report.accepted, report.shed, report.errors, report.requests_per_s, report.p50_ms, report.p99_ms, report.max_ms
    );
    Ok(if report.errors == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn bench_attack_command(
    url: &str,
    pid: Option<u32>,
    seconds: f64,
    check_rss_growth_mb: Option<f64>,
) -> anyhow::Result<ExitCode> {
    use eval::attack::{self, Attack};
    let runtime = tokio::runtime::Runtime::new()?;
    let mut reports = Vec::new();
    for kind in Attack::ALL {
        eprintln!("attack: {kind:?} for {seconds} s");
        reports.push(runtime.block_on(attack::run(url, pid, kind, seconds))?);
    }
    print!("{}", attack::table(&reports));
    let Some(max_growth) = check_rss_growth_mb else {
        return Ok(ExitCode::SUCCESS);
    };
    let mut failures = Vec::new();
    for r in &reports {
        if r.polite.errors > 0 || r.polite.answered == 0 || !(r.polite.p99_ms < 1000.0) {
            failures.push(format!(
                "{}: the polite client saw {:?}",
                r.attack, r.polite
            ));
        }
        if r.attackers.get("open").is_some_and(|n| *n > 0) {
            failures.push(format!("{}: attacking connections still open", r.attack));
        }
        let growth = r.rss_settled_mb.zip(r.rss_before_mb).map(|(a, b)| a - b);
        if growth.is_some_and(|mb| mb > max_growth) {
            failures.push(format!(
                "{}: memory grew by {growth:?} MB and stayed, over {max_growth}",
                r.attack
            ));
        }
    }
    for f in &failures {
        eprintln!("failed: {f}");
    }
    Ok(if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn bench_scale_serve_command(
    dir: &std::path::Path,
    workload: &std::path::Path,
    dims: usize,
    sweep: &[usize],
) -> anyhow::Result<ExitCode> {
    let workload: eval::scale::Workload = serde_json::from_slice(
        &std::fs::read(workload).with_context(|| format!("cannot read {}", workload.display()))?,
    )?;
    let report = eval::scale::serve(dir, dims, sweep, &workload)?;
    println!("{}", serde_json::to_string(&report)?);
    Ok(ExitCode::SUCCESS)
}

fn bench_scale_command(
    chunks: usize,
    from: &std::path::Path,
    params: &[HnswParams],
    sweep: &[usize],
    queries: usize,
    dir: &std::path::Path,
    keep: bool,
) -> anyhow::Result<ExitCode> {
    let source = LocalSnapshot::open(from, None)?;
    let records = index::Snapshot::records(&source)?;
    // Synthetic rows are mixtures of real passages' vectors, not of whole chapters'.
    let passages: std::collections::HashSet<u64> = records
        .chunks
        .iter()
        .filter(|c| c.kind != podseek::chunk::ChunkKind::Chapter)
        .map(|c| c.key)
        .collect();
    let base: Vec<Vec<f32>> = source
        .live_vectors()
        .filter(|(key, _)| passages.contains(key))
        .map(|(_, v)| v.to_vec())
        .collect();
    let texts = eval::scale::Texts::of(&records);
    drop(source);
    eprintln!(
        "synthesizing {chunks} chunks from {} real vectors and their texts",
        base.len()
    );
    let corpus = eval::scale::synthesize(&base, texts, chunks);
    eprintln!("exact top 10 for {queries} questions, unfiltered and per filter");
    let workload = eval::scale::workload(&base, &corpus, queries)?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let workload_path = dir.join("workload.json");
    std::fs::write(&workload_path, serde_json::to_vec(&workload)?)
        .with_context(|| format!("cannot write {}", workload_path.display()))?;
    drop(workload);
    let mut rows = Vec::new();
    for p in params {
        let q = p.quantization;
        let target = eval::scale::index_dir(dir, q);
        eprintln!("{q:?}: building {}", target.display());
        let built = eval::scale::build(&corpus, p, &target)?;
        eprintln!(
            "{q:?}: {:.0} vectors/s (distances on usearch's {} kernels), written in {:.1} s; serving it in a new process",
            built.vectors_per_s, built.kernels, built.write_s
        );
        eval::scale::evict_from_page_cache(&target)?;
        let served = scale_serve_child(&target, &workload_path, corpus.dims, sweep)?;
        if !keep {
            let _ = std::fs::remove_dir_all(&target);
        }
        rows.push((built, served));
    }
    print!(
        "{}",
        eval::scale::render(corpus.table.len(), corpus.dims, &rows)
    );
    Ok(ExitCode::SUCCESS)
}

fn scale_serve_child(
    target: &std::path::Path,
    workload: &std::path::Path,
    dims: usize,
    sweep: &[usize],
) -> anyhow::Result<eval::scale::ServeReport> {
    let sweep: Vec<String> = sweep.iter().map(|ef| ef.to_string()).collect();
    let sweep = (!sweep.is_empty())
        .then(|| ["--sweep".to_string(), sweep.join(",")])
        .into_iter()
        .flatten();
    let output = std::process::Command::new(std::env::current_exe()?)
        .args(["bench", "scale-serve", "--dir"])
        .arg(target)
        .arg("--workload")
        .arg(workload)
        .args(["--dims", &dims.to_string()])
        .args(sweep)
        .stderr(std::process::Stdio::inherit())
        .output()?;
    if !output.status.success() {
        bail!("serving {} failed ({})", target.display(), output.status);
    }
    Ok(serde_json::from_slice(&output.stdout)?)
}

fn bench_ann_command(
    index: &std::path::Path,
    queries: &std::path::Path,
    ef: &[usize],
    quantizations: &[Quantization],
) -> anyhow::Result<ExitCode> {
    let opened = LocalSnapshot::open(index, None)?;
    let embedder = embed::load(&opened.manifest.model_id, default_threads())?;
    let texts = question_texts(queries)?;
    let vectors = texts
        .iter()
        .map(|t| embedder.embed_query(t))
        .collect::<Result<Vec<_>, _>>()?;
    let rows = eval::bench::bench_ann(&opened, &vectors, ef, quantizations)?;
    println!(
        "model {}, M={}, ef_construction={}",
        opened.manifest.model_id,
        opened.manifest.hnsw.connectivity,
        opened.manifest.hnsw.expansion_add
    );
    print!(
        "{}",
        eval::bench::render_ann(&rows, opened.manifest.chunks, vectors.len())
    );
    Ok(ExitCode::SUCCESS)
}

/// The question texts of a BEIR queries file.
fn question_texts(path: &std::path::Path) -> anyhow::Result<Vec<String>> {
    Ok(eval::load_queries(path)?
        .into_iter()
        .map(|q| q.text)
        .collect())
}
