//! The OpenAPI 3.1 document for the JSON API, served at `/openapi.json`: every route, every status
//! it can answer (errors included), and the key scheme. schemathesis checks the server against it.

use serde_json::{json, Map, Value};

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

fn search_params() -> Value {
    json!([
        {"name": "q", "in": "query", "required": true, "description": "The question, English or Spanish (1–2000 characters, not only spaces).", "schema": {"type": "string", "minLength": 1, "maxLength": 2000, "pattern": "\\S"}},
        {"name": "k", "in": "query", "description": "Chapters to return.", "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 10}},
        {"name": "lang", "in": "query", "description": "Only chapters in this language; `all` or empty for both.", "schema": {"type": "string", "enum": ["en", "es", "all", ""]}},
        {"name": "episode", "in": "query", "description": "Only chapters of this episode id.", "schema": {"type": "string"}},
        {"name": "podcast", "in": "query", "description": "Only episodes of this podcast (its title, any case; feed episodes).", "schema": {"type": "string"}},
        {"name": "mode", "in": "query", "description": "`ann` (HNSW, default) or `exact` (scan all vectors).", "schema": {"type": "string", "enum": ["ann", "exact"]}}
    ])
}

fn id_param(what: &str) -> Value {
    json!([{"name": "id", "in": "path", "required": true, "description": what, "schema": {"type": "string"}}])
}

fn paths() -> Value {
    let results = object("Chapters, best first", "SearchResponse");
    let busy = error("Overloaded (with Retry-After) or the model is still loading");
    let late = error("No answer within the request deadline");
    let search_get = guarded(responses(&[
        ("200", results.clone()),
        (
            "400",
            error("Invalid parameter (the error names the field)"),
        ),
        (
            "404",
            error("The episode or podcast filter names none the index holds"),
        ),
        ("503", busy.clone()),
        ("504", late.clone()),
    ]));
    let search_post = guarded(responses(&[
        ("200", results),
        ("400", error("Invalid body or field")),
        (
            "404",
            error("The episode or podcast filter names none the index holds"),
        ),
        ("413", error("Body over 64 KiB")),
        ("503", busy.clone()),
        ("504", late),
    ]));
    let accepted = json!({"description": "Queued; poll the job (also in `Location`)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/JobAnswer"}}}});
    json!({
        "/v1/search": {
            "get": {"summary": "Search chapters", "parameters": search_params(), "responses": search_get},
            "post": {"summary": "Search chapters (JSON body)",
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/SearchRequest"}}}},
                "responses": search_post}
        },
        "/v1/chapters/{id}": {"get": {"summary": "One chapter with its quotes, transcript lines, episode entities and neighbours",
            "parameters": id_param("A chapter id"),
            "responses": guarded(responses(&[("200", object("The chapter", "Chapter")), ("400", error("Malformed id")), ("404", error("Unknown chapter id")), ("503", busy.clone())]))}},
        "/v1/episodes": {
            "get": {"summary": "All episodes with their chapters",
                "responses": guarded(responses(&[("200", object("Episodes", "Episodes")), ("503", busy.clone())]))},
            "post": {"summary": "Add or replace episodes (JSON input format) or a feed (`{\"feed\": URL}`); admin key",
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/WriteRequest"}}}},
                "responses": guarded(responses(&[("202", accepted.clone()), ("400", error("Invalid body: the error names the episode and field")), ("413", error("Body over 8 MiB")), ("503", error("The write queue is full (with Retry-After), or the model is loading"))]))}
        },
        "/v1/episodes/{id}": {"delete": {"summary": "Delete an episode; admin key",
            "parameters": id_param("An episode id"),
            "responses": guarded(responses(&[("202", accepted), ("400", error("Malformed id")), ("404", error("Unknown episode id")), ("503", busy)]))}},
        "/v1/jobs/{id}": {"get": {"summary": "A write job's state and report; admin key",
            "parameters": id_param("A job number from a 202 answer"),
            "responses": guarded(responses(&[("200", object("The job", "JobAnswer")), ("400", error("Not a job number")), ("404", error("Unknown job"))]))}},
        "/healthz": {"get": {"summary": "Liveness", "responses": {"200": {"description": "The process is up", "content": {"application/json": {"schema": {"type": "object"}}}}}}},
        "/readyz": {"get": {"summary": "Readiness: model loaded; the generation served, translation, writes, last reload error",
            "responses": {"200": {"description": "Ready", "content": {"application/json": {"schema": {"type": "object"}}}},
                          "503": {"description": "Still loading, or loading failed", "content": {"application/json": {"schema": {"type": "object"}}}}}}},
        "/metrics": {"get": {"summary": "Prometheus metrics (text exposition format)",
            "responses": guarded(responses(&[("200", json!({"description": "Metrics", "content": {"text/plain": {"schema": {"type": "string"}}}}))]))}},
        "/openapi.json": {"get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {"schema": {"type": "object"}}}}}}},
        "/": {"get": {"summary": "The search page", "responses": {"200": {"description": "HTML", "content": {"text/html": {"schema": {"type": "string"}}}}}}},
        "/chapters/{id}": {"get": {"summary": "The search page, opened on a chapter", "parameters": id_param("A chapter id"),
            "responses": {"200": {"description": "HTML", "content": {"text/html": {"schema": {"type": "string"}}}}}}},
        "/mcp": {"post": {"summary": "Model Context Protocol (Streamable HTTP); see the MCP specification",
            "responses": {"default": {"description": "An MCP answer"}}}}
    })
}

fn schemas() -> Value {
    json!({
        "SearchRequest": {"type": "object", "required": ["q"], "additionalProperties": false, "properties": {
            "q": {"type": "string", "minLength": 1, "maxLength": 2000, "pattern": "\\S"}, "k": {"type": ["integer", "null"], "minimum": 1, "maximum": 100},
            "lang": {"enum": ["en", "es", "all", "", null]}, "episode": {"type": ["string", "null"]}, "podcast": {"type": ["string", "null"]},
            "mode": {"enum": ["ann", "exact", null]}}},
        "SearchResponse": {"type": "object", "required": ["query", "count", "hits"], "properties": {"query": {"type": "string"}, "count": {"type": "integer"}, "hits": {"type": "array", "items": {"$ref": "#/components/schemas/Hit"}}}},
        "Hit": {"type": "object", "required": ["rank", "score", "chapter_id", "chapter_title", "start_s", "timestamp", "episode_id", "episode_title", "lang", "snippet", "snippet_kind", "citation"], "properties": {
            "rank": {"type": "integer"}, "score": {"type": "number", "description": "ranking score, higher is closer: the best chunk's cosine with the question plus a keyword bonus of at most 0.05; not a probability"},
            "chapter_id": {"type": "string"}, "chapter_title": {"type": "string"}, "start_s": {"type": "integer"}, "end_s": {"type": ["integer", "null"]},
            "timestamp": {"type": "string"}, "episode_id": {"type": "string"}, "episode_title": {"type": "string"}, "lang": {"type": "string"},
            "snippet": {"type": "string"}, "snippet_kind": {"type": "string", "enum": ["summary", "quote", "description", "transcript"]}, "speaker": {"type": ["string", "null"]},
            "evidence_start_s": {"type": "integer", "description": "transcript evidence: the second inside the chapter where the matching sentence is said"},
            "evidence_timestamp": {"type": "string"}, "podcast": {"type": "string"},
            "citation": {"type": "string"}, "url": {"type": ["string", "null"]}}},
        "Chapter": {"type": "object", "required": ["id", "title", "start_s", "timestamp", "episode_id"], "properties": {
            "id": {"type": "string"}, "title": {"type": "string"}, "start_s": {"type": "integer"}, "timestamp": {"type": "string"},
            "episode_id": {"type": "string"}, "summary": {"type": "string"}, "quotes": {"type": "array"}, "transcript": {"type": "array"}}},
        "Episodes": {"type": "object", "required": ["episodes"], "properties": {"episodes": {"type": "array", "items": {"type": "object"}}}},
        "WriteRequest": {"description": "`{\"feed\": \"https://…\"}`, or episodes in the JSON input format (one object, an array, or `{\"episodes\": [...]}`)",
            "oneOf": [
                {"type": "object", "required": ["feed"], "additionalProperties": false, "properties": {"feed": {"type": "string", "format": "uri"}}},
                {"type": "object", "required": ["title"], "properties": {"title": {"type": "string"}, "chapters": {"type": "array"}}},
                {"type": "array", "items": {"type": "object"}},
                {"type": "object", "required": ["episodes"], "properties": {"episodes": {"type": "array"}}}]},
        "JobAnswer": {"type": "object", "required": ["job"], "properties": {"job": {"type": "object", "required": ["id", "kind", "state"], "properties": {
            "id": {"type": "integer"}, "kind": {"type": "string"}, "state": {"type": "string", "enum": ["queued", "running", "done", "failed"]},
            "submitted_at": {"type": "integer"}, "report": {"type": "object"}, "notes": {"type": "array", "items": {"type": "string"}}, "error": {"type": "string"}}}}},
        "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "object", "required": ["status", "message"], "properties": {
            "status": {"type": "integer"}, "field": {"type": ["string", "null"]}, "message": {"type": "string"}}}}}
    })
}

pub fn document() -> Value {
    json!({
        "openapi": "3.1.0",
        "info": {"title": "podseek", "version": env!("CARGO_PKG_VERSION"), "description": "Cross-lingual semantic search over podcast chapters (English ⇄ Spanish). Reads are open on loopback unless the server requires the search key; writes need the admin key."},
        "security": [{}, {"key": []}],
        "paths": paths(),
        "components": {
            "schemas": schemas(),
            "securitySchemes": {"key": {"type": "http", "scheme": "bearer", "description": "The admin key (writes) or the search key (reads, when required)"}}
        }
    })
}
