//! MCP with a real client (rmcp): `podseek mcp` as a subprocess over stdio, and `/mcp` on a real
//! `podseek serve`. Lists tools, checks each tool's structured output against its declared
//! schema, runs English and Spanish questions across languages, and expects `isError` for bad input.

use rmcp::model::{CallToolRequestParams, CallToolResult, Tool};
use rmcp::service::RunningService;
use rmcp::transport::{ConfigureCommandExt, StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{RoleClient, ServiceExt};
use serde_json::{json, Map, Value};

use crate::fixtures::{bin, root, sample_index_dir, Server};

/// A JSON Schema check for the subset schemars emits (types, properties, required, items, $ref,
/// anyOf/oneOf, enums, nullable types): enough to catch an output that breaks its declared shape.
fn validate(value: &Value, schema: &Value, root: &Value, path: &str) -> Result<(), String> {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let name = r.rsplit('/').next().unwrap();
        let target = root
            .get("$defs")
            .or_else(|| root.get("definitions"))
            .and_then(|d| d.get(name))
            .ok_or(format!("{path}: unresolved {r}"))?;
        return validate(value, target, root, path);
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(options) = schema.get(key).and_then(Value::as_array) {
            return options
                .iter()
                .any(|o| validate(value, o, root, path).is_ok())
                .then_some(())
                .ok_or(format!("{path}: matches no {key} option: {value}"));
        }
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
        if !allowed.contains(value) {
            return Err(format!("{path}: {value} not in {allowed:?}"));
        }
    }
    if let Some(t) = schema.get("type") {
        let types: Vec<&str> = match t {
            Value::String(s) => vec![s.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        let ok = types.iter().any(|t| match *t {
            "object" => value.is_object(),
            "array" => value.is_array(),
            "string" => value.is_string(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "boolean" => value.is_boolean(),
            "null" => value.is_null(),
            _ => true,
        });
        if !ok {
            return Err(format!("{path}: {value} is not {types:?}"));
        }
    }
    if let (Some(props), Some(obj)) = (
        schema.get("properties").and_then(Value::as_object),
        value.as_object(),
    ) {
        for req in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if !obj.contains_key(req) {
                return Err(format!("{path}: missing required `{req}`"));
            }
        }
        for (k, v) in obj {
            if let Some(s) = props.get(k) {
                validate(v, s, root, &format!("{path}.{k}"))?;
            }
        }
    }
    if let (Some(items), Some(arr)) = (schema.get("items"), value.as_array()) {
        for (i, v) in arr.iter().enumerate() {
            validate(v, items, root, &format!("{path}[{i}]"))?;
        }
    }
    Ok(())
}

fn args(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

pub(crate) async fn call(
    client: &RunningService<RoleClient, ()>,
    tools: &[Tool],
    name: &'static str,
    arguments: Value,
) -> CallToolResult {
    let result = client
        .call_tool(CallToolRequestParams::new(name).with_arguments(args(arguments)))
        .await
        .unwrap();
    if result.is_error != Some(true) {
        let tool = tools.iter().find(|t| t.name == name).unwrap();
        let schema = Value::Object(
            tool.output_schema
                .as_ref()
                .expect("declared output schema")
                .as_ref()
                .clone(),
        );
        let structured = result
            .structured_content
            .clone()
            .expect("structured content");
        validate(&structured, &schema, &schema, name)
            .unwrap_or_else(|e| panic!("{name} output breaks its schema: {e}"));
        assert!(
            !result.content.is_empty(),
            "a text block for clients without structured output"
        );
    }
    result
}

async fn exercise(client: RunningService<RoleClient, ()>) {
    let info = client.peer_info().expect("server info");
    assert_eq!(
        info.server_info.as_ref().map(|s| s.name.as_str()),
        Some("podseek")
    );
    let tools = client.list_all_tools().await.unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    for expected in ["search_chapters", "get_chapter", "search", "fetch"] {
        assert!(names.contains(&expected), "{names:?}");
    }
    let search = tools.iter().find(|t| t.name == "search_chapters").unwrap();
    let ann = search.annotations.as_ref().unwrap();
    assert_eq!(
        (ann.read_only_hint, ann.idempotent_hint),
        (Some(true), Some(true))
    );
    assert!(search.description.as_ref().unwrap().contains("Spanish"));

    // English question → the Spanish protein chapter; Spanish question → English chapters.
    let r = call(&client, &tools, "search_chapters", json!({"query": "How do protein language models learn structure without supervision?", "k": 3})).await;
    let s = r.structured_content.unwrap();
    assert_eq!(s["hits"][0]["lang"], "es", "{s}");
    let r = call(
        &client,
        &tools,
        "search_chapters",
        json!({"query": "¿Por qué dejar la nube y montar servidores propios?", "k": 5}),
    )
    .await;
    let s = r.structured_content.unwrap();
    assert!(
        s["hits"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["lang"] == "en"),
        "{s}"
    );
    let id = s["hits"][0]["chapter_id"].as_str().unwrap().to_string();

    // Budget: the largest answer stays well under 5,000 tokens (~4 characters a token) in either
    // form a client reads: the structured content or the text block.
    let r = call(
        &client,
        &tools,
        "search_chapters",
        json!({"query": "agents", "k": 20, "max_chars_per_hit": 2000}),
    )
    .await;
    let structured = serde_json::to_string(&r.structured_content)
        .unwrap()
        .chars()
        .count();
    let text: usize = r
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.chars().count()))
        .sum();
    assert!(
        structured / 4 < 4000 && text / 4 < 4000,
        "about {} and {} tokens",
        structured / 4,
        text / 4
    );
    assert_eq!(r.structured_content.unwrap()["truncated"], true);

    let r = call(&client, &tools, "get_chapter", json!({"id": id})).await;
    assert_eq!(r.structured_content.unwrap()["id"], id.as_str());
    let r = call(
        &client,
        &tools,
        "search",
        json!({"query": "drones y guerra"}),
    )
    .await;
    let results = r.structured_content.unwrap()["results"]
        .as_array()
        .unwrap()
        .clone();
    assert!(!results.is_empty() && results[0]["url"].as_str().is_some());
    let r = call(&client, &tools, "fetch", json!({"id": results[0]["id"]})).await;
    assert!(
        r.structured_content.unwrap()["text"]
            .as_str()
            .unwrap()
            .len()
            > 50
    );

    for (tool, bad, needle) in [
        ("search_chapters", json!({"query": "   "}), "invalid `q`"),
        (
            "search_chapters",
            json!({"query": "hi", "k": 50}),
            "invalid `k`",
        ),
        (
            "search_chapters",
            json!({"query": "hi", "lang": "fr"}),
            "invalid `lang`",
        ),
        ("get_chapter", json!({"id": "nope~1"}), "no chapter with id"),
        ("fetch", json!({"id": "nope~1"}), "no chapter with id"),
    ] {
        let r = client
            .call_tool(CallToolRequestParams::new(tool).with_arguments(args(bad)))
            .await
            .unwrap();
        assert_eq!(r.is_error, Some(true), "{tool}");
        let text = format!("{:?}", r.content);
        assert!(text.contains(needle), "{tool}: {text}");
    }
    client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_over_stdio() {
    let index = sample_index_dir().to_path_buf();
    let transport = TokioChildProcess::new(tokio::process::Command::new(bin()).configure(|cmd| {
        cmd.arg("mcp")
            .arg("--index")
            .arg(&index)
            .current_dir(root());
    }))
    .unwrap();
    let client = ().serve(transport).await.unwrap();
    exercise(client).await;
}

/// `podseek mcp --store milvus://…`: an agent over stdio reads the same corpus from Milvus.
#[cfg(feature = "milvus")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_over_stdio_from_milvus() {
    let url = tokio::task::spawn_blocking(|| crate::fixtures::sample_milvus().to_string())
        .await
        .unwrap();
    let transport = TokioChildProcess::new(tokio::process::Command::new(bin()).configure(|cmd| {
        cmd.arg("mcp").arg("--store").arg(&url).current_dir(root());
    }))
    .unwrap();
    let client = ().serve(transport).await.unwrap();
    exercise(client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_over_streamable_http() {
    let server = Server::start(tokio::task::spawn_blocking(sample_index_dir).await.unwrap()).await;
    let transport = StreamableHttpClientTransport::from_uri(format!("{}/mcp", server.url));
    let client = ().serve(transport).await.unwrap();
    exercise(client).await;
    drop(server);
}
