//! The OpenAPI 3.1 document for the JSON API, served at `/openapi.json`.

use serde_json::{json, Value};

pub fn document() -> Value {
    let error = json!({"$ref": "#/components/schemas/Error"});
    let err = |description: &str| json!({"description": description, "content": {"application/json": {"schema": error}}});
    let query_params = json!([
        {"name": "q", "in": "query", "required": true, "description": "The question, English or Spanish (1–2000 characters).", "schema": {"type": "string", "maxLength": 2000}},
        {"name": "k", "in": "query", "description": "Chapters to return.", "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 10}},
        {"name": "lang", "in": "query", "description": "Only chapters in this language.", "schema": {"type": "string", "enum": ["en", "es", "all"]}},
        {"name": "episode", "in": "query", "description": "Only chapters of this episode id.", "schema": {"type": "string"}},
        {"name": "podcast", "in": "query", "description": "Only episodes of this podcast (its title, any case; feed episodes).", "schema": {"type": "string"}},
        {"name": "mode", "in": "query", "description": "`ann` (HNSW, default) or `exact` (scan all vectors).", "schema": {"type": "string", "enum": ["ann", "exact"]}}
    ]);
    let results = json!({"description": "Chapters, best first", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/SearchResponse"}}}});
    json!({
        "openapi": "3.1.0",
        "info": {"title": "podseek", "version": env!("CARGO_PKG_VERSION"), "description": "Cross-lingual semantic search over podcast chapters (English ⇄ Spanish)."},
        "paths": {
            "/v1/search": {
                "get": {"summary": "Search chapters", "parameters": query_params, "responses": {"200": results, "400": err("Invalid parameter (the error names the field)"), "503": err("Model still loading")}},
                "post": {
                    "summary": "Search chapters (JSON body)",
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/SearchRequest"}}}},
                    "responses": {"200": results, "400": err("Invalid body or field"), "413": err("Body too large"), "503": err("Model still loading")}
                }
            },
            "/v1/chapters/{id}": {"get": {"summary": "One chapter with its quotes, episode entities and neighbours",
                "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                "responses": {"200": {"description": "The chapter", "content": {"application/json": {"schema": {"type": "object"}}}}, "404": err("Unknown chapter id")}}},
            "/v1/episodes": {"get": {"summary": "All episodes with their chapters", "responses": {"200": {"description": "Episodes", "content": {"application/json": {"schema": {"type": "object"}}}}}}},
            "/healthz": {"get": {"summary": "Liveness", "responses": {"200": {"description": "The process is up"}}}},
            "/readyz": {"get": {"summary": "Readiness: index and model loaded", "responses": {"200": {"description": "Ready"}, "503": {"description": "Still loading, or loading failed"}}}},
            "/mcp": {"post": {"summary": "Model Context Protocol (Streamable HTTP)", "responses": {"200": {"description": "MCP response"}}}}
        },
        "components": {"schemas": {
            "SearchRequest": {"type": "object", "required": ["q"], "additionalProperties": false, "properties": {
                "q": {"type": "string", "maxLength": 2000}, "k": {"type": "integer", "minimum": 1, "maximum": 100},
                "lang": {"type": "string", "enum": ["en", "es", "all"]}, "episode": {"type": "string"}, "podcast": {"type": "string"}, "mode": {"type": "string", "enum": ["ann", "exact"]}}},
            "SearchResponse": {"type": "object", "properties": {"query": {"type": "string"}, "count": {"type": "integer"}, "hits": {"type": "array", "items": {"$ref": "#/components/schemas/Hit"}}}},
            "Hit": {"type": "object", "properties": {
                "rank": {"type": "integer"}, "score": {"type": "number", "description": "ranking score, higher is closer: the best chunk's cosine with the question plus a keyword bonus of at most 0.05; not a probability"},
                "chapter_id": {"type": "string"}, "chapter_title": {"type": "string"}, "start_s": {"type": "integer"}, "end_s": {"type": ["integer", "null"]},
                "timestamp": {"type": "string"}, "episode_id": {"type": "string"}, "episode_title": {"type": "string"}, "lang": {"type": "string"},
                "snippet": {"type": "string"}, "snippet_kind": {"type": "string", "enum": ["summary", "quote", "description", "transcript"]}, "speaker": {"type": ["string", "null"]},
                "evidence_start_s": {"type": "integer", "description": "transcript evidence: the second inside the chapter where the matching sentence is said"},
                "evidence_timestamp": {"type": "string"}, "podcast": {"type": "string"},
                "citation": {"type": "string"}, "url": {"type": ["string", "null"]}}},
            "Error": {"type": "object", "properties": {"error": {"type": "object", "properties": {"status": {"type": "integer"}, "field": {"type": ["string", "null"]}, "message": {"type": "string"}}}}}
        }}
    })
}
