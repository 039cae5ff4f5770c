//! The OpenAPI 3.1 document for the JSON API, served at `/openapi.json`: every route, every status
//! it can answer (errors included), and the key scheme. schemathesis checks the server against it.
//!
//! The schemas are generated from the request and answer types with schemars (`api.rs`, `search`,
//! `error.rs`); `GET /v1/search`'s parameters are `SearchRequest`'s fields. Written here by hand:
//! the routes and their statuses, and one schema JSON Schema cannot derive from a type: the write
//! body (`WriteRequest`, `EpisodeInput`, `ChapterInput`), because `corpus::json` reads that format
//! from any JSON value (files too) with rules of its own: `language` or its alias `lang`, not
//! both; a chapter start as seconds or as a timestamp the parser reads. Both rules are tested
//! against the parser below.

use std::sync::OnceLock;

use schemars::generate::{Contract, SchemaSettings};
use serde_json::{json, Map, Value};

use super::api::{EpisodeList, EpisodePageRequest, JobAnswer, SearchRequest};
use super::error::ErrorBody;
use super::writes::{MAX_CHAPTERS_PER_EPISODE, MAX_EPISODES_PER_BODY};
use crate::corpus::MAX_START_S;
use crate::search::{ChapterView, SearchResponse};

fn error(description: &str) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
}

fn object(description: &str, schema: &str) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}})
}

/// The answers every key-guarded route can give besides its own.
fn guarded(mut responses: Map<String, Value>) -> Value {
    responses.insert("401".into(), error("A key is required and none was sent"));
    responses.insert(
        "403".into(),
        error("The key sent does not allow this (or writes are disabled)"),
    );
    Value::Object(responses)
}

fn responses(pairs: &[(&str, Value)]) -> Map<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

/// The whitespace characters as a regex class body: the ranges of `char::is_whitespace` (what
/// `str::trim` removes), each end spelled as `\uXXXX`, because regex engines disagree on `\s`
/// (ECMAScript leaves out U+0085 and adds U+FEFF) and on `\d`. Derived, so a new Unicode version
/// cannot leave it behind; computed once.
fn whitespace_class() -> &'static str {
    static CLASS: OnceLock<String> = OnceLock::new();
    CLASS.get_or_init(|| {
        let mut ranges: Vec<(u32, u32)> = Vec::new();
        for c in (0..=0x10FFFF_u32).filter_map(char::from_u32) {
            if !c.is_whitespace() {
                continue;
            }
            match ranges.last_mut() {
                Some((_, end)) if *end + 1 == c as u32 => *end = c as u32,
                _ => ranges.push((c as u32, c as u32)),
            }
        }
        ranges
            .iter()
            .map(|&(a, b)| {
                if a == b {
                    format!("\\u{a:04X}")
                } else {
                    format!("\\u{a:04X}-\\u{b:04X}")
                }
            })
            .collect()
    })
}

/// The `pattern` of a text the server trims and then requires: at least one character the trim
/// keeps. schemathesis sent `q=%C2%85`, which `\S` allowed and the server refused as empty.
pub(super) fn not_only_whitespace() -> String {
    format!("[^{}]", whitespace_class())
}

/// A chapter start as `parse_timestamp` reads it: `M:SS` (up to four digits of minutes) or
/// `H:MM:SS` (up to two of hours), with whitespace around.
/// The language codes `corpus::Lang::from_code` reads, any case, blanks around: as a pattern,
/// since JSON Schema has no case-insensitive enum.
fn language_code() -> Value {
    let ws = format!("[{}]*", whitespace_class());
    let any_case = |word: &str| -> String {
        word.chars()
            .map(
                |c| match (c.to_lowercase().next(), c.to_uppercase().next()) {
                    (Some(l), Some(u)) if l != u => format!("[{l}{u}]"),
                    _ => c.to_string(),
                },
            )
            .collect()
    };
    let words: Vec<String> = ["en", "eng", "english", "es", "spa", "spanish", "español"]
        .iter()
        .map(|w| any_case(w))
        .collect();
    json!({"type": ["string", "null"], "pattern": format!("^{ws}({}){ws}$", words.join("|"))})
}

fn timestamp_pattern() -> String {
    let ws = format!("[{}]*", whitespace_class());
    format!("^{ws}([0-9]{{1,4}}:[0-5][0-9]|[0-9]{{1,2}}:[0-5][0-9]:[0-5][0-9]){ws}$")
}

/// A GET's query parameters: the fields of the request type `name`, without JSON's `null`.
fn query_params(components: &Map<String, Value>, name: &str) -> Value {
    let request = &components[name];
    let required = request["required"].as_array().cloned().unwrap_or_default();
    let params: Vec<Value> = request["properties"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, schema)| {
            let mut schema = without_null(schema.clone(), components);
            let description = schema
                .as_object_mut()
                .and_then(|s| s.remove("description"))
                .unwrap_or(Value::Null);
            json!({"name": name, "in": "query", "required": required.contains(&json!(name)),
                "description": description, "schema": schema})
        })
        .collect();
    Value::Array(params)
}

/// A field's schema as a query parameter's: `null` taken out of its types, enums and choices,
/// references to enums inlined.
fn without_null(mut schema: Value, components: &Map<String, Value>) -> Value {
    let Some(s) = schema.as_object_mut() else {
        return schema;
    };
    if let Some(Value::Array(types)) = s.get_mut("type") {
        types.retain(|t| t != "null");
        if types.len() == 1 {
            let only = types[0].clone();
            s.insert("type".into(), only);
        }
    }
    if let Some(Value::Array(values)) = s.get_mut("enum") {
        values.retain(|v| !v.is_null());
    }
    if s.get("default") == Some(&Value::Null) {
        s.remove("default");
    }
    if let Some(Value::Array(choices)) = s.remove("anyOf") {
        let kept: Vec<Value> = choices
            .into_iter()
            .filter(|c| c.get("type") != Some(&json!("null")))
            .collect();
        if let [one] = kept.as_slice() {
            let mut inner = resolve(one, components);
            if let (Some(inner), Some(d)) = (inner.as_object_mut(), s.get("description")) {
                inner.insert("description".into(), d.clone());
            }
            return inner;
        }
        s.insert("anyOf".into(), Value::Array(kept));
    }
    schema
}

fn resolve(schema: &Value, components: &Map<String, Value>) -> Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => components[r.trim_start_matches("#/components/schemas/")].clone(),
        None => schema.clone(),
    }
}

/// Job ids are `u64`s.
fn job_id_param() -> Value {
    json!([{"name": "id", "in": "path", "required": true, "description": "A job number from a 202 answer",
        "schema": {"type": "integer", "minimum": 0, "maximum": u64::MAX}}])
}

fn id_param(what: &str) -> Value {
    json!([{"name": "id", "in": "path", "required": true, "description": what, "schema": {"type": "string"}}])
}

fn busy() -> Value {
    error("Overloaded (with Retry-After) or the model is still loading")
}

fn paths(components: &Map<String, Value>) -> Value {
    let mut all = search_paths(components);
    all.extend(write_paths(components));
    all.extend(other_paths());
    Value::Object(all)
}

/// The 202 a write answers: its job, and the link to poll it (`GET /v1/jobs/{id}` with the job's
/// id): the one relationship between the write and read operations that a stateful tester would
/// otherwise have to guess (and could guess wrong: a job's id is not an episode's).
fn accepted() -> Value {
    json!({"description": "Queued; poll the job (also in `Location`)",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/JobAnswer"}}},
        "links": {"job": {"operationId": "getJob", "parameters": {"id": "$response.body#/job/id"}}}})
}

/// A search's 200, linked to the chapter view of its first hit.
fn results() -> Value {
    json!({"description": "Chapters, best first",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/SearchResponse"}}},
        "links": {"chapter": {"operationId": "getChapter", "parameters": {"id": "$response.body#/hits/0/chapter_id"}}}})
}

/// `/v1/search`, GET and POST.
fn search_paths(components: &Map<String, Value>) -> Map<String, Value> {
    let results = results();
    let late = error("No answer within the request deadline");
    let unknown_filter = error("The episode or podcast filter names none the index holds");
    let too_many = error("This client has too many searches in flight (with Retry-After)");
    let search_get = guarded(responses(&[
        ("200", results.clone()),
        (
            "400",
            error("Invalid parameter (the error names the field)"),
        ),
        ("404", unknown_filter.clone()),
        ("429", too_many.clone()),
        ("503", busy()),
        ("504", late.clone()),
    ]));
    let search_post = guarded(responses(&[
        ("200", results),
        ("400", error("Invalid body or field")),
        ("404", unknown_filter),
        ("413", error("Body over 64 KiB")),
        ("429", too_many),
        ("503", busy()),
        ("504", late),
    ]));
    into_map(json!({
        "/v1/search": {
            "get": {"operationId": "searchGet", "summary": "Search chapters", "parameters": query_params(components, "SearchRequest"), "responses": search_get},
            "post": {"operationId": "searchPost", "summary": "Search chapters (JSON body)",
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/SearchRequest"}}}},
                "responses": search_post}
        }
    }))
}

/// The episode list and the write API: episodes, deletions, jobs.
fn write_paths(components: &Map<String, Value>) -> Map<String, Value> {
    let accepted = accepted();
    into_map(json!({
        "/v1/episodes": {
            "get": {"operationId": "listEpisodes", "summary": "Episodes with their chapters, a page at a time",
                "parameters": query_params(components, "EpisodePageRequest"),
                "responses": guarded(responses(&[("200", object("A page of episodes with their chapters", "EpisodeList")), ("400", error("Invalid limit or cursor")), ("503", busy())]))},
            "post": {"operationId": "addEpisodes", "summary": "Add or replace episodes (JSON input format) or a feed (`{\"feed\": URL}`); admin key",
                "description": "All or nothing: a body with any episode or chapter the parser would skip is a 400 naming it. One rule is beyond the schema: two chapters of an episode may not start at the same second.",
                "security": [{"key": []}],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/WriteRequest"}}}},
                "responses": guarded(responses(&[("202", accepted.clone()), ("400", error("Invalid body: the error names the episode and field")), ("413", error("Body over 8 MiB")), ("503", error("The write queue is full (with Retry-After), or the model is loading"))]))}
        },
        "/v1/episodes/{id}": {"delete": {"operationId": "deleteEpisode", "summary": "Delete an episode; admin key",
            "security": [{"key": []}],
            "parameters": id_param("An episode id"),
            "responses": guarded(responses(&[("202", accepted), ("400", error("Malformed id")), ("404", error("Unknown episode id")), ("503", busy())]))}},
        "/v1/jobs/{id}": {"get": {"operationId": "getJob", "summary": "A write job's state and report; admin key",
            "security": [{"key": []}],
            "parameters": job_id_param(),
            "responses": guarded(responses(&[("200", object("The job", "JobAnswer")), ("400", error("Not a job number")), ("404", error("Unknown job"))]))}}
    }))
}

/// Chapters, health, metrics, this document, the page and MCP.
fn other_paths() -> Map<String, Value> {
    let html = json!({"200": {"description": "HTML", "content": {"text/html": {"schema": {"type": "string"}}}}});
    let any_object = |description: &str| json!({"description": description, "content": {"application/json": {"schema": {"type": "object"}}}});
    into_map(json!({
        "/v1/chapters/{id}": {"get": {"operationId": "getChapter", "summary": "One chapter with its quotes, transcript lines, episode entities and neighbours",
            "parameters": id_param("A chapter id"),
            "responses": guarded(responses(&[("200", object("The chapter", "ChapterView")), ("400", error("Malformed id")), ("404", error("Unknown chapter id")), ("503", busy())]))}},
        "/healthz": {"get": {"summary": "Liveness", "responses": {"200": any_object("The process is up")}}},
        "/readyz": {"get": {"summary": "Readiness: model loaded; the generation served, translation, writes, last reload error",
            "responses": {"200": any_object("Ready"), "503": any_object("Still loading, or loading failed")}}},
        "/metrics": {"get": {"summary": "Prometheus metrics (text exposition format)",
            "responses": guarded(responses(&[("200", json!({"description": "Metrics", "content": {"text/plain": {"schema": {"type": "string"}}}}))]))}},
        "/openapi.json": {"get": {"summary": "This document", "responses": {"200": any_object("OpenAPI 3.1")}}},
        "/": {"get": {"summary": "The search page", "responses": html.clone()}},
        "/chapters/{id}": {"get": {"summary": "The search page, opened on a chapter", "parameters": id_param("A chapter id"),
            "responses": html}},
        "/mcp": {"post": {"summary": "Model Context Protocol (Streamable HTTP); see the MCP specification",
            "responses": {"default": {"description": "An MCP answer"}}}}
    }))
}

fn into_map(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// An episode in the JSON input format, as `corpus::json` reads it (unknown fields refused;
/// `language` and its alias `lang` not both).
fn episode_input() -> Value {
    let optional_text = json!({"type": ["string", "null"]});
    json!({"type": "object", "required": ["title"], "additionalProperties": false,
        "dependentSchemas": {"language": {"properties": {"lang": false}}},
        "properties": {
            "title": {"type": "string", "pattern": not_only_whitespace()},
            "url": optional_text, "language": language_code(), "lang": language_code(),
            "description": {"type": "string"},
            "chapters": {"type": "array", "maxItems": MAX_CHAPTERS_PER_EPISODE, "items": {"$ref": "#/components/schemas/ChapterInput"}},
            "entities": {"type": "array", "items": {"type": "object", "required": ["name", "type", "description"], "properties": {
                "name": {"type": "string"}, "type": {"type": "string"}, "description": {"type": "string"}}}}}})
}

fn chapter_input() -> Value {
    json!({"type": "object", "required": ["title", "start"], "additionalProperties": false, "properties": {
        "title": {"type": "string", "pattern": not_only_whitespace()},
        "start": {"oneOf": [{"type": "number", "minimum": 0, "maximum": MAX_START_S}, {"type": "string", "pattern": timestamp_pattern()}]},
        "summary": {"type": "string"},
        "quotes": {"type": "array", "items": {"oneOf": [{"type": "string"},
            {"type": "object", "required": ["text"], "properties": {"text": {"type": "string"}, "speaker": {"type": ["string", "null"]}}}]}}}})
}

/// The schemas: generated from the types, plus the write body's.
fn schemas() -> Map<String, Value> {
    let settings = |contract| {
        let mut s = SchemaSettings::draft2020_12();
        s.definitions_path = "/components/schemas".into();
        s.contract = contract;
        s
    };
    // What the server reads is described as deserialized, what it answers as serialized.
    let mut requests = settings(Contract::Deserialize).into_generator();
    let mut answers = settings(Contract::Serialize).into_generator();
    // Each type is filed under its own name, with every type it refers to.
    requests.subschema_for::<SearchRequest>();
    requests.subschema_for::<EpisodePageRequest>();
    answers.subschema_for::<SearchResponse>();
    answers.subschema_for::<ChapterView>();
    answers.subschema_for::<EpisodeList>();
    answers.subschema_for::<JobAnswer>();
    answers.subschema_for::<ErrorBody>();
    let mut all = Map::new();
    all.extend(requests.take_definitions(true));
    all.extend(answers.take_definitions(true));
    all.insert("WriteRequest".into(), write_request());
    all.insert("EpisodeInput".into(), episode_input());
    all.insert("ChapterInput".into(), chapter_input());
    all
}

fn write_request() -> Value {
    json!({"description": "`{\"feed\": \"https://…\"}`, or episodes in the JSON input format (one object, an array, or `{\"episodes\": [...]}`)",
        "oneOf": [
            {"type": "object", "required": ["feed"], "additionalProperties": false, "properties": {"feed": {"type": "string", "pattern": "^[Hh][Tt][Tt][Pp][Ss]?://"}}},
            {"$ref": "#/components/schemas/EpisodeInput"},
            {"type": "array", "minItems": 1, "maxItems": MAX_EPISODES_PER_BODY, "items": {"$ref": "#/components/schemas/EpisodeInput"}},
            {"type": "object", "required": ["episodes"], "additionalProperties": false, "properties": {"episodes": {"type": "array", "minItems": 1, "maxItems": MAX_EPISODES_PER_BODY, "items": {"$ref": "#/components/schemas/EpisodeInput"}}}}]})
}

/// Adds what any request can be answered before its route sees it (`http::limit_head`, every
/// route): 414 for a long request target, 431 for oversized headers. A long query string is the
/// usual way to reach the first, so a client reading one operation's answers needs them there.
fn with_head_limits(paths: &mut Value) {
    let operations = paths
        .as_object_mut()
        .into_iter()
        .flat_map(|paths| paths.values_mut())
        .filter_map(Value::as_object_mut)
        .flat_map(|methods| methods.values_mut());
    for operation in operations {
        if let Some(responses) = operation
            .get_mut("responses")
            .and_then(Value::as_object_mut)
        {
            responses.insert("414".into(), error("The request target is over 8 KiB"));
            responses.insert("431".into(), error("The request's headers are over 16 KiB"));
        }
    }
}

/// The document, made once: it depends on nothing but the types, and `/openapi.json` is open to
/// anyone, so a request costs a serialization, not a schema generation.
pub fn document() -> &'static Value {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    DOCUMENT.get_or_init(generate)
}

fn generate() -> Value {
    let schemas = schemas();
    let mut paths = paths(&schemas);
    with_head_limits(&mut paths);
    json!({
        "openapi": "3.1.0",
        "info": {"title": "podseek", "version": env!("CARGO_PKG_VERSION"), "description": "Cross-lingual semantic search over podcast chapters (English ⇄ Spanish). Reads are open on loopback unless the server requires the search key; writes need the admin key."},
        "security": [{}, {"key": []}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"key": {"type": "http", "scheme": "bearer", "description": "The admin key (writes) or the search key (reads, when required)"}}
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corpus::parse_timestamp;
    use regex::Regex;

    #[test]
    fn the_text_pattern_refuses_exactly_what_trim_removes() {
        let pattern = Regex::new(&not_only_whitespace()).unwrap();
        let disagree: Vec<char> = (0..=0x10FFFF_u32)
            .filter_map(char::from_u32)
            .filter(|&c| pattern.is_match(&c.to_string()) == c.is_whitespace())
            .collect();
        assert!(disagree.is_empty(), "{disagree:?}");
    }

    /// Every string of up to eight characters over digits that straddle the limits, the colon and
    /// two kinds of whitespace.
    #[test]
    fn the_timestamp_pattern_accepts_exactly_what_the_parser_reads() {
        let pattern = Regex::new(&timestamp_pattern()).unwrap();
        let alphabet = ['0', '6', ':', ' ', '\u{85}'];
        let mut strings = vec![String::new()];
        let mut disagree = Vec::new();
        for _ in 0..8 {
            strings = strings
                .iter()
                .flat_map(|s| alphabet.iter().map(move |c| format!("{s}{c}")))
                .collect();
            disagree.extend(
                strings
                    .iter()
                    .filter(|s| pattern.is_match(s) != parse_timestamp(s).is_some())
                    .cloned(),
            );
        }
        for s in [
            "59:59",
            "9999:00",
            "99:59:59",
            "100:00:00",
            "10000:00",
            "1:60",
            "a1:00",
        ] {
            if pattern.is_match(s) != parse_timestamp(s).is_some() {
                disagree.push(s.to_string());
            }
        }
        assert!(disagree.is_empty(), "{disagree:?}");
    }
}
