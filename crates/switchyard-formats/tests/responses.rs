#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Responses API format: fixtures translated both ways, checked by snapshots and against the
//! OpenAPI document's schemas.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use serde_json::{json, Value};
use switchyard_core::chat::ChatRequest;
use switchyard_formats::responses::{
    error_body, frame, request_to_chat, response_from_chat, ResponseContext, Sealer,
    StreamTranscoder,
};

/// Seals by hex-encoding behind a prefix: reversible, and never the plain text.
struct HexSealer;

impl Sealer for HexSealer {
    fn seal(&self, plain: &[u8]) -> String {
        let hex: String = plain.iter().map(|b| format!("{b:02x}")).collect();
        format!("sealed:{hex}")
    }

    fn open(&self, sealed: &str) -> Option<Vec<u8>> {
        let hex = sealed.strip_prefix("sealed:")?;
        if hex.len() % 2 != 0 {
            return None;
        }
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
            .collect()
    }
}

fn path(parts: &[&str]) -> PathBuf {
    let mut p = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    p.extend(parts);
    p
}

fn fixture(name: &str) -> Value {
    let p = path(&["tests", "fixtures", "responses", name]);
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn chunks(name: &str) -> Vec<Value> {
    let p = path(&["tests", "fixtures", "responses", name]);
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("chunk"))
        .collect()
}

/// The OpenRouter OpenAPI document, as copied into the repository (`tests/contract/`).
fn openapi() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| {
        let p = path(&["..", "..", "tests", "contract", "openrouter-openapi.json"]);
        let text = std::fs::read_to_string(&p)
            .unwrap_or_else(|e| panic!("the OpenAPI document {}: {e}", p.display()));
        serde_json::from_str(&text).expect("OpenAPI JSON")
    })
}

/// What `#/components/schemas/<component>` finds wrong with `instance`, `$ref`s resolved
/// inside the document.
fn schema_errors(component: &str, instance: &Value) -> Vec<String> {
    let mut schema = openapi().clone();
    schema["$schema"] = json!("https://json-schema.org/draft/2020-12/schema");
    schema["$ref"] = json!(format!("#/components/schemas/{component}"));
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    validator
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

/// Asserts that `instance` validates against `#/components/schemas/<component>`.
fn validate(component: &str, instance: &Value) {
    let errors = schema_errors(component, instance);
    assert!(
        errors.is_empty(),
        "{component} rejects {}:\n{}",
        serde_json::to_string_pretty(instance).unwrap(),
        errors.join("\n")
    );
}

fn ctx(request: Value) -> ResponseContext {
    ResponseContext {
        id: "gen-test".into(),
        created_at: 1_700_000_000,
        completed_at: Some(1_700_000_004),
        request,
    }
}

#[test]
fn the_schema_check_catches_a_bad_response() {
    let mut out = response_from_chat(
        &fixture("response_text.json"),
        &ctx(fixture("request_plain.json")),
        &HexSealer,
    );
    out.as_object_mut().unwrap().remove("tool_choice");
    out["output"][0]["content"][0]["type"] = json!("text");
    let errors = schema_errors("OpenResponsesResult", &out);
    assert!(
        errors.iter().any(|e| e.contains("tool_choice")),
        "{errors:?}"
    );
    assert!(errors.iter().any(|e| e.contains("/output/0")), "{errors:?}");
}

/// What a fixture's snapshot shows of `value`: for the fixtures captured from real clients,
/// whose prompts and tool descriptions run to tens of kilobytes, every long string is shortened
/// to its head, its length and its tail, so that the snapshot stays readable while still showing
/// every field.
fn readable(fixture: &str, value: &Value) -> Value {
    if fixture.contains("codex") || fixture.contains("agents") {
        abbreviated(value)
    } else {
        value.clone()
    }
}

fn abbreviated(value: &Value) -> Value {
    const LONG: usize = 400;
    match value {
        Value::String(s) if s.chars().count() > LONG => {
            let chars: Vec<char> = s.chars().collect();
            let head: String = chars[..120].iter().collect();
            let tail: String = chars[chars.len() - 200..].iter().collect();
            json!(format!("{head}[… {} characters …]{tail}", chars.len()))
        }
        Value::Array(list) => Value::Array(list.iter().map(abbreviated).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), abbreviated(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[test]
fn requests_become_chat_requests() {
    for name in [
        "request_plain.json",
        "request_agent.json",
        "request_json_schema.json",
        "request_codex_default_model.json",
        "request_codex_other_model.json",
        "request_agents_function_tool.json",
        "request_agents_streamed.json",
    ] {
        let chat =
            request_to_chat(&fixture(name), &HexSealer).unwrap_or_else(|e| panic!("{name}: {e}"));
        ChatRequest::from_value(chat.clone())
            .unwrap_or_else(|e| panic!("{name}: the chat request is refused: {e}"));
        insta::assert_json_snapshot!(name.trim_end_matches(".json"), readable(name, &chat));
    }
}

/// Every Responses request the real clients sent (`tests/compat/captures`) is accepted.
#[test]
fn every_captured_request_translates() {
    let mut seen = 0;
    for client in ["codex", "openai-agents"] {
        let dir = path(&["..", "..", "tests", "compat", "captures", client]);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| entry.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        files.sort();
        for file in files {
            let capture: Value =
                serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
            for (i, request) in capture["requests"].as_array().unwrap().iter().enumerate() {
                if request["path"] != "/api/v1/responses" {
                    continue;
                }
                let at = format!("{} request {i}", file.display());
                let chat = request_to_chat(&request["body"], &HexSealer)
                    .unwrap_or_else(|e| panic!("{at}: {e}"));
                ChatRequest::from_value(chat).unwrap_or_else(|e| panic!("{at}: {e}"));
                seen += 1;
            }
        }
    }
    assert!(seen >= 11, "only {seen} captured requests were found");
}

#[test]
fn codex_tools_reach_the_model() {
    let chat = request_to_chat(&fixture("request_codex_default_model.json"), &HexSealer).unwrap();
    let tools = chat["tools"].as_array().unwrap();
    let tool = |name: &str| {
        tools
            .iter()
            .find(|t| t["function"]["name"] == name)
            .unwrap_or_else(|| panic!("no chat tool {name}"))
    };
    // The custom `exec` tool takes its JavaScript as `input`, and its grammar is described.
    let exec = &tool("functions__exec")["function"];
    assert_eq!(exec["parameters"]["required"], json!(["input"]));
    let description = exec["description"].as_str().unwrap();
    assert!(
        description.starts_with("Run JavaScript code"),
        "{description}"
    );
    assert!(
        description.contains(
            "The input must match this Lark grammar:\n```lark\nstart: pragma_source | plain_source"
        ),
        "{description}"
    );
    // Namespace members are tools of their own; the namespace's description goes with them.
    assert!(tool("clock__sleep")["function"]["description"]
        .as_str()
        .unwrap()
        .ends_with(
            "This tool belongs to the `clock` group: Tools for reading and waiting on time."
        ));
    tool("collaboration__spawn_agent");
    assert_eq!(
        tools.len(),
        12,
        "5 functions, 1 clock and 6 collaboration tools"
    );

    // The additional_tools item is gone from the conversation; the custom call and its output
    // are a tool call and a tool message.
    let messages = chat["messages"].as_array().unwrap();
    let roles: Vec<&str> = messages
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(
        roles,
        [
            "developer",
            "developer",
            "developer",
            "developer",
            "user",
            "user",
            "assistant",
            "tool"
        ]
    );
    assert_eq!(
        messages[6]["tool_calls"],
        json!([{"id": "call_rec1", "type": "function",
                "function": {"name": "functions__exec", "arguments": "{\"input\":\"text(\\\"tool-ran\\\")\"}"}}])
    );
    assert_eq!(
        messages[7]["content"][1],
        json!({"type": "text", "text": "tool-ran"})
    );
    assert_eq!(chat["parallel_tool_calls"], false);
    assert_eq!(chat["reasoning"], json!({"effort": "low"}));
    assert_eq!(chat["verbosity"], "low");
    assert_eq!(chat["session_id"], chat["prompt_cache_key"]);
    assert!(
        chat.get("client_metadata").is_none(),
        "client ids stay here"
    );
}

#[test]
fn a_conversation_keeps_its_turns() {
    let chat = request_to_chat(&fixture("request_agent.json"), &HexSealer).unwrap();
    let roles: Vec<&str> = chat["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(
        roles,
        [
            "system",
            "developer",
            "user",
            "assistant",
            "tool",
            "tool",
            "user"
        ]
    );
    let assistant = &chat["messages"][3];
    assert_eq!(assistant["content"], "Checking both cities.");
    assert_eq!(assistant["tool_calls"].as_array().unwrap().len(), 2);
    assert_eq!(
        assistant["reasoning_details"][0]["signature"],
        "EqQBCkgIBxABGAIiQJ0sig"
    );
    assert_eq!(
        assistant["reasoning_details"][1]["type"],
        "reasoning.encrypted"
    );
    assert_eq!(chat["session_id"], "conv-7f3a");
}

/// The response fixtures with the request each one answers.
const ANSWERS: &[(&str, &str)] = &[
    ("response_text.json", "request_plain.json"),
    ("response_tool_calls.json", "request_agent.json"),
    ("response_json_schema.json", "request_json_schema.json"),
    ("response_length.json", "request_plain.json"),
    (
        "response_codex_tool_calls.json",
        "request_codex_default_model.json",
    ),
    (
        "response_codex_other_model.json",
        "request_codex_other_model.json",
    ),
    (
        "response_agents_tool_call.json",
        "request_agents_function_tool.json",
    ),
];

#[test]
fn completions_become_responses() {
    for (answer, request) in ANSWERS {
        let out = response_from_chat(&fixture(answer), &ctx(fixture(request)), &HexSealer);
        validate("OpenResponsesResult", &out);
        insta::assert_json_snapshot!(answer.trim_end_matches(".json"), readable(request, &out));
    }
}

#[test]
fn codex_calls_come_back_as_codex_declared_them() {
    let request = fixture("request_codex_default_model.json");
    let out = response_from_chat(
        &fixture("response_codex_tool_calls.json"),
        &ctx(request.clone()),
        &HexSealer,
    );
    let output = out["output"].as_array().unwrap();
    assert_eq!(output[1]["type"], "custom_tool_call");
    assert_eq!(output[1]["namespace"], "functions");
    assert_eq!(output[1]["name"], "exec");
    assert_eq!(
        output[1]["input"],
        "const r = await tools.exec_command({cmd: \"echo tool-ran\"});\ntext(r.output);"
    );
    assert_eq!(output[2]["type"], "function_call");
    assert_eq!(output[2]["namespace"], "collaboration");
    assert_eq!(output[2]["name"], "spawn_agent");

    // Handed back on the next turn, the calls are the chat calls they came from.
    let mut next = request;
    let input = next["input"].as_array_mut().unwrap();
    input.extend(output.iter().cloned());
    input.push(json!({"type": "custom_tool_call_output", "call_id": "call_exec1", "output": [{"type": "input_text", "text": "tool-ran"}]}));
    input.push(
        json!({"type": "function_call_output", "call_id": "call_spawn1", "output": "spawned"}),
    );
    let chat = request_to_chat(&next, &HexSealer).unwrap();
    let messages = chat["messages"].as_array().unwrap();
    let original = &fixture("response_codex_tool_calls.json")["choices"][0]["message"];
    let assistant = &messages[messages.len() - 3];
    let calls = assistant["tool_calls"].as_array().unwrap();
    let sent = original["tool_calls"].as_array().unwrap();
    assert_eq!(calls.len(), sent.len());
    for (call, sent) in calls.iter().zip(sent) {
        assert_eq!(call["id"], sent["id"]);
        assert_eq!(call["function"]["name"], sent["function"]["name"]);
        // The same arguments, though not byte for byte: the custom call's are rebuilt from its
        // input.
        let arguments = |c: &Value| -> Value {
            serde_json::from_str(c["function"]["arguments"].as_str().unwrap()).unwrap()
        };
        assert_eq!(arguments(call), arguments(sent));
    }
    assert_eq!(assistant["reasoning"], original["reasoning"]);
    ChatRequest::from_value(chat).unwrap();
}

#[test]
fn reasoning_survives_a_round_trip_sealed() {
    let completion = fixture("response_tool_calls.json");
    let original = completion["choices"][0]["message"].clone();
    let response = response_from_chat(&completion, &ctx(fixture("request_agent.json")), &HexSealer);
    let sealed = response["output"][0]["encrypted_content"].as_str().unwrap();
    assert!(
        !sealed.contains("weather") && !sealed.contains("EqQBCkgIBxABGAIiQJ0sig"),
        "reasoning is sealed, not written in the clear: {sealed}"
    );
    assert_eq!(
        response["output"][0]["summary"][0]["text"],
        original["reasoning"]
    );

    // The client sends the output back, with the tool results, as the next request's input.
    let mut input = vec![json!({"role": "user", "content": "Weather in Paris and Oslo?"})];
    input.extend(response["output"].as_array().unwrap().iter().cloned());
    input.push(json!({"type": "function_call_output", "call_id": "toolu_01", "output": "18C"}));
    input.push(json!({"type": "function_call_output", "call_id": "toolu_02", "output": "4C"}));
    let chat = request_to_chat(
        &json!({"model": "anthropic/claude-sonnet-4", "input": input}),
        &HexSealer,
    )
    .unwrap();
    let assistant = &chat["messages"][1];
    assert_eq!(
        assistant["reasoning_details"],
        original["reasoning_details"]
    );
    assert_eq!(assistant["tool_calls"], original["tool_calls"]);
    assert_eq!(assistant["content"], original["content"]);
    assert_eq!(assistant["reasoning"], original["reasoning"]);
    assert_eq!(chat["messages"][2]["tool_call_id"], "toolu_01");
    assert_eq!(chat["messages"][3]["tool_call_id"], "toolu_02");
    ChatRequest::from_value(chat).unwrap();

    // A blob that was not sealed here is refused, naming the item.
    let mut forged = input;
    forged[1]["encrypted_content"] = json!("gAAAAABforeign");
    let e = request_to_chat(&json!({"input": forged}), &HexSealer).unwrap_err();
    assert!(e.0.starts_with("input[1].encrypted_content:"), "{e}");
}

/// Streams a chunk fixture; returns the events.
fn stream(name: &str, request: Value, usage_from_last: bool) -> Vec<(&'static str, Value)> {
    let chunks = chunks(name);
    let mut t = StreamTranscoder::new(ctx(request), "requested/model", Arc::new(HexSealer));
    let mut events = t.start();
    let mut usage = Value::Null;
    for chunk in &chunks {
        if let Some(u) = chunk.get("usage") {
            usage = u.clone();
        }
        events.extend(t.chunk(chunk));
    }
    if usage_from_last {
        events.extend(t.finish(&usage, 1_700_000_004));
    } else {
        events.extend(t.error(502, "Upstream connection reset"));
    }
    // Nothing after the end.
    assert!(t.finish(&usage, 1).is_empty() && t.error(500, "late").is_empty());
    events
}

fn check_events(events: &[(&'static str, Value)]) {
    for (i, (kind, data)) in events.iter().enumerate() {
        assert_eq!(data["type"], *kind);
        assert_eq!(data["sequence_number"], i, "sequence numbers count from 0");
        // `StreamEvents` is a oneOf keyed by `type`: validate against the schema it maps to, so
        // that a mismatch says what is wrong.
        let target = openapi()["components"]["schemas"]["StreamEvents"]["discriminator"]["mapping"]
            [*kind]
            .as_str()
            .unwrap_or_else(|| panic!("{kind} is not a stream event of the schema"));
        validate(target.trim_start_matches("#/components/schemas/"), data);
    }
}

fn names(events: &[(&'static str, Value)]) -> Vec<&'static str> {
    events.iter().map(|e| e.0).collect()
}

#[test]
fn a_text_stream() {
    let events = stream("stream_text.jsonl", fixture("request_plain.json"), true);
    check_events(&events);
    assert_eq!(
        names(&events),
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    let last = &events[9].1["response"];
    assert_eq!(
        last["output"][0]["content"][0]["text"],
        "A router walks into a bar."
    );
    assert_eq!(last["usage"]["total_tokens"], 28);
    assert_eq!(last["model"], "openai/gpt-4o");
    assert_eq!(events[0].1["response"]["model"], "requested/model");
    insta::assert_json_snapshot!("stream_text", events);
}

#[test]
fn an_interleaved_stream() {
    let events = stream(
        "stream_interleaved.jsonl",
        fixture("request_agent.json"),
        true,
    );
    check_events(&events);
    let added: Vec<&str> = events
        .iter()
        .filter(|e| e.0 == "response.output_item.added")
        .map(|e| e.1["item"]["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        added,
        [
            "reasoning",
            "message",
            "reasoning",
            "function_call",
            "function_call"
        ]
    );
    // Every item is closed before the next one opens.
    let mut open = false;
    for (kind, _) in &events {
        match *kind {
            "response.output_item.added" => {
                assert!(!open, "an item opened while another was open");
                open = true;
            }
            "response.output_item.done" => open = false,
            _ => {}
        }
    }
    let response = &events.last().unwrap().1["response"];
    assert_eq!(events.last().unwrap().0, "response.completed");
    let output = response["output"].as_array().unwrap();
    assert_eq!(output[1]["content"][0]["text"], "Checking both.");
    assert_eq!(output[3]["arguments"], "{\"city\":\"Paris\"}");
    assert_eq!(output[4]["call_id"], "toolu_02");
    assert!(
        !events
            .iter()
            .any(|e| e.1.to_string().contains("other choice")),
        "only choice 0 is rendered"
    );

    // Both reasoning items carry their signed details, merged from the deltas, and hand them
    // back on the next turn.
    let mut input = vec![json!({"role": "user", "content": "Weather?"})];
    input.extend(output.iter().cloned());
    let chat = request_to_chat(&json!({"input": input}), &HexSealer).unwrap();
    assert_eq!(
        chat["messages"][1]["reasoning_details"],
        json!([
            {"type": "reasoning.text", "text": "Two cities, two calls.", "signature": "sig-A", "format": "anthropic-claude-v1", "index": 0},
            {"type": "reasoning.text", "text": "Paris first.", "signature": "sig-B", "format": "anthropic-claude-v1", "index": 1},
        ])
    );
    assert_eq!(chat["messages"][1]["content"], "Checking both.");
    insta::assert_json_snapshot!("stream_interleaved", events);
}

#[test]
fn a_codex_tool_stream() {
    let events = stream(
        "stream_codex_tools.jsonl",
        fixture("request_codex_default_model.json"),
        true,
    );
    check_events(&events);
    let kinds = names(&events);
    let count = |kind: &str| kinds.iter().filter(|k| **k == kind).count();
    assert_eq!(count("response.custom_tool_call_input.done"), 1);
    assert_eq!(count("response.function_call_arguments.done"), 1);
    // The input streams as text while the arguments stream as JSON, whatever their split.
    let streamed: String = events
        .iter()
        .filter(|e| e.0 == "response.custom_tool_call_input.delta")
        .map(|e| e.1["delta"].as_str().unwrap())
        .collect();
    let input =
        "const r = await tools.exec_command({cmd: \"echo tool-ran\"});\ntext(r.output); // é ✓";
    assert_eq!(streamed, input);
    assert!(count("response.custom_tool_call_input.delta") > 5);
    let response = &events.last().unwrap().1["response"];
    assert_eq!(events.last().unwrap().0, "response.completed");
    let output = &response["output"];
    assert_eq!(output[0]["type"], "reasoning");
    assert_eq!(
        output[1],
        json!({"type": "custom_tool_call", "id": "ctc_gen-test_1", "call_id": "call_exec1",
               "namespace": "functions", "name": "exec", "input": input, "status": "completed"})
    );
    assert_eq!(output[2]["namespace"], "collaboration");
    assert_eq!(output[2]["name"], "spawn_agent");
    assert_eq!(
        output[2]["arguments"],
        "{\"task_name\":\"check\",\"message\":\"Look.\"}"
    );
    insta::assert_json_snapshot!("stream_codex_tools", abbreviated(&json!(events)));
}

#[test]
fn an_agents_text_stream() {
    let events = stream(
        "stream_text.jsonl",
        fixture("request_agents_streamed.json"),
        true,
    );
    check_events(&events);
    let response = &events.last().unwrap().1["response"];
    assert_eq!(response["instructions"], "Be brief.");
    assert_eq!(
        response["text"],
        json!({"format": {"type": "text"}, "verbosity": "low"})
    );
    assert_eq!(
        response["reasoning"],
        json!({"effort": "none", "summary": null})
    );
    assert_eq!(response["tools"], json!([]));
}

#[test]
fn a_stream_failing_midway() {
    let events = stream("stream_failure.jsonl", fixture("request_plain.json"), false);
    check_events(&events);
    let tail: Vec<&str> = names(&events).into_iter().rev().take(2).collect();
    assert_eq!(tail, ["response.failed", "error"]);
    // The unfinished call is never announced as done: a client must not run it.
    let done: Vec<&Value> = events
        .iter()
        .filter(|e| e.0 == "response.output_item.done")
        .map(|e| &e.1["item"])
        .collect();
    assert_eq!(done.len(), 1);
    assert_eq!(done[0]["type"], "message");
    let failed = &events.last().unwrap().1["response"];
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["error"]["code"], "server_error");
    assert_eq!(failed["error_type"], "provider_unavailable");
    assert_eq!(failed["output"][1]["status"], "incomplete");
    insta::assert_json_snapshot!("stream_failure", events);
}

#[test]
fn errors_and_frames() {
    let body = error_body(400, "store: true is not supported");
    validate("BadRequestResponse", &body);
    assert_eq!(body["error"]["code"], 400);
    assert_eq!(body["error"]["type"], "invalid_request_error");
    let event = (
        "response.in_progress",
        json!({"type": "response.in_progress"}),
    );
    assert_eq!(
        String::from_utf8(frame(&event)).unwrap(),
        "event: response.in_progress\ndata: {\"type\":\"response.in_progress\"}\n\n"
    );
}
