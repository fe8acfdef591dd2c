#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Claude Code's requests, recorded shapes, through the Messages format and on through the
//! provider codecs that send them: intact to Anthropic, translated for the others.

use std::path::PathBuf;

use serde_json::{json, Value};
use switchyard_core::catalog::Catalog;
use switchyard_core::chat::ChatRequest;
use switchyard_formats::messages::{
    count_tokens_request, estimate_input_tokens, request_to_chat, MEDIA_PART_TOKENS,
};
use switchyard_providers::anthropic::{AnthropicCodec, CONTEXT_MANAGEMENT_BETA};
use switchyard_providers::openai::OpenAiCodec;
use switchyard_providers::{Codec, Target, UpstreamRequest};

fn fixture(name: &str) -> Value {
    let path: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "tests",
        "fixtures",
        "messages",
        name,
    ]
    .iter()
    .collect();
    let text = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&text).expect("fixture is JSON")
}

/// One model served by an Anthropic endpoint (listing mid-conversation system messages or not)
/// and an OpenAI-compatible one.
fn catalog(anthropic_parameters: &str) -> Catalog {
    Catalog::from_toml(
        "test",
        &format!(
            r#"
[[providers]]
slug = "anthropic"
name = "Anthropic"
kind = "anthropic"
base_url = "https://api.anthropic.com/v1"
api_key_env = "ANTHROPIC_API_KEY"

[[providers]]
slug = "compatible"
name = "Compatible"
kind = "openai"
base_url = "https://compatible.example/v1"
api_key_env = "COMPATIBLE_API_KEY"

[[models]]
id = "a/m"
name = "M"
context_length = 200000
input_modalities = ["text", "image", "file"]

[[models.endpoints]]
provider = "anthropic"
upstream_model = "claude-opus-4-8"
max_completion_tokens = 64000
pricing = {{ prompt = "0.000005", completion = "0.000025" }}
supported_parameters = [{anthropic_parameters}]

[[models.endpoints]]
provider = "compatible"
upstream_model = "opus-compatible"
pricing = {{ prompt = "0.000005", completion = "0.000025" }}
"#
        ),
    )
    .expect("catalog")
}

/// Sends a canonical request through the codec of endpoint `index` (0: Anthropic, 1: OpenAI).
fn send(catalog: &Catalog, index: usize, request: &ChatRequest) -> (UpstreamRequest, Value) {
    let endpoint = &catalog.model("a/m").expect("model").endpoints[index];
    let target = Target {
        provider: catalog.provider(&endpoint.provider).expect("provider"),
        endpoint,
        api_key: Some("key"),
    };
    let codec: &dyn Codec = if index == 0 {
        &AnthropicCodec
    } else {
        &OpenAiCodec
    };
    let upstream = codec.encode(request, &target).expect("encodes");
    let body = serde_json::from_slice(&upstream.body).expect("JSON body");
    (upstream, body)
}

fn header<'a>(upstream: &'a UpstreamRequest, name: &str) -> Option<&'a str> {
    upstream
        .headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The canonical request a fixture becomes, parsed as the pipeline parses it.
fn canonical(name: &str) -> (Value, ChatRequest) {
    let body = fixture(name);
    let chat = request_to_chat(&body).unwrap_or_else(|e| panic!("{name}: {e}"));
    let request = ChatRequest::from_value(chat.clone()).unwrap_or_else(|e| panic!("{name}: {e}"));
    (chat, request)
}

#[test]
fn claude_code_requests_are_accepted_or_refused_by_name() {
    // (fixture, None when accepted, else a part of the refusal)
    let cases = [
        ("claude_code_opus_adaptive.json", None),
        ("claude_code_sonnet_budget.json", None),
        ("claude_code_haiku_title.json", None),
        (
            "claude_code_web_search.json",
            Some("tools[0].type: server tool \"web_search_20250305\" is not supported"),
        ),
        // A token count is not a message: it has no max_tokens.
        (
            "claude_code_count_tokens.json",
            Some("max_tokens: field required"),
        ),
    ];
    for (name, refusal) in cases {
        let out = request_to_chat(&fixture(name));
        match (refusal, out) {
            (None, Ok(chat)) => {
                ChatRequest::from_value(chat.clone()).unwrap_or_else(|e| panic!("{name}: {e}"));
                insta::assert_json_snapshot!(name.trim_end_matches(".json"), chat);
            }
            (Some(needle), Err(e)) => assert!(e.0.contains(needle), "{name}: {e}"),
            (want, got) => panic!("{name}: wanted {want:?}, got {got:?}"),
        }
    }
}

#[test]
fn an_adaptive_opus_request_reaches_anthropic_intact() {
    let body = fixture("claude_code_opus_adaptive.json");
    let (_, request) = canonical("claude_code_opus_adaptive.json");
    // (endpoint lists mid-conversation system messages, system prompt blocks, turns)
    for (in_place, system_blocks, turns) in [(true, 3, 4), (false, 4, 3)] {
        let listed = if in_place {
            "\"mid_conversation_system_messages\""
        } else {
            ""
        };
        let (upstream, sent) = send(&catalog(listed), 0, &request);
        assert_eq!(upstream.url, "https://api.anthropic.com/v1/messages");
        assert_eq!(
            header(&upstream, "anthropic-beta"),
            Some(CONTEXT_MANAGEMENT_BETA)
        );
        for native in ["thinking", "output_config", "context_management"] {
            assert_eq!(sent[native], body[native], "{native}");
        }
        assert_eq!(sent["metadata"], body["metadata"]);
        assert_eq!(sent["max_tokens"], 32000);
        assert_eq!(sent["stream"], true);
        assert_eq!(sent["tools"].as_array().map(Vec::len), Some(5));
        assert_eq!(
            sent["tools"][4]["cache_control"],
            json!({"type": "ephemeral"})
        );
        let system = sent["system"].as_array().expect("system blocks");
        assert_eq!(system.len(), system_blocks, "in place: {in_place}");
        assert_eq!(system[1], body["system"][1]);
        assert_eq!(system[2], body["system"][2]);
        let messages = sent["messages"].as_array().expect("turns");
        assert_eq!(messages.len(), turns, "in place: {in_place}");
        // The signed thinking goes back first in its turn.
        assert_eq!(messages[1]["content"][0], body["messages"][1]["content"][0]);
        // The tool result keeps its cache breakpoint, on its text.
        assert_eq!(
            messages[2]["content"][0],
            json!({"type": "tool_result", "tool_use_id": "toolu_01Hq2Sd7pU6cVwXyZa1b2C3d", "content": [{
                "type": "text",
                "text": "src/parser.rs:42:fn parse_array(input: &str) -> Result<Vec<Value>, Error> {",
                "cache_control": {"type": "ephemeral"},
            }]})
        );
        let environment = &body["messages"][3]["content"][0];
        if in_place {
            assert_eq!(
                messages[3],
                json!({"role": "system", "content": [environment]})
            );
        } else {
            assert_eq!(&system[3], environment);
        }
    }
}

#[test]
fn an_adaptive_opus_request_is_translated_for_other_providers() {
    let (_, request) = canonical("claude_code_opus_adaptive.json");
    let (upstream, sent) = send(&catalog(""), 1, &request);
    assert_eq!(
        upstream.url,
        "https://compatible.example/v1/chat/completions"
    );
    for native in [
        "thinking",
        "output_config",
        "context_management",
        "metadata",
    ] {
        assert!(
            sent.get(native).is_none(),
            "{native} sent to an OpenAI endpoint"
        );
    }
    // Adaptive thinking at high effort.
    assert_eq!(sent["reasoning_effort"], "high");
    let roles: Vec<&str> = sent["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter_map(|m| m["role"].as_str())
        .collect();
    // The mid-conversation system message stays where it was.
    assert_eq!(roles, ["system", "user", "assistant", "tool", "system"]);
    assert_eq!(
        sent["tools"][0]["function"]["parameters"]["required"],
        json!(["command"])
    );
    assert!(sent["user"]
        .as_str()
        .is_some_and(|u| u.contains("session_id")));
}

#[test]
fn a_budgeted_sonnet_request_reaches_both_kinds() {
    let body = fixture("claude_code_sonnet_budget.json");
    let (chat, request) = canonical("claude_code_sonnet_budget.json");
    assert_eq!(chat["reasoning"], json!({"max_tokens": 31999}));
    assert_eq!(chat["temperature"], 1);

    let (_, sent) = send(&catalog(""), 0, &request);
    assert_eq!(sent["thinking"], body["thinking"]);
    // Anthropic refuses a temperature with thinking on.
    assert!(sent.get("temperature").is_none());
    let turns = sent["messages"].as_array().expect("turns");
    assert_eq!(turns.len(), 3);
    assert_eq!(turns[0]["content"][2]["type"], "image");
    let last: Vec<&str> = turns[2]["content"]
        .as_array()
        .expect("blocks")
        .iter()
        .filter_map(|b| b["type"].as_str())
        .collect();
    assert_eq!(last, ["tool_result", "tool_result", "text"]);
    assert_eq!(
        turns[2]["content"][1]["content"],
        "Error: <tool_use_error>File does not exist.</tool_use_error>"
    );
    assert_eq!(
        turns[2]["content"][2]["cache_control"],
        json!({"type": "ephemeral"})
    );

    let (_, sent) = send(&catalog(""), 1, &request);
    assert!(sent.get("thinking").is_none());
    assert_eq!(sent["temperature"], 1.0);
    let roles: Vec<&str> = sent["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter_map(|m| m["role"].as_str())
        .collect();
    assert_eq!(
        roles,
        ["system", "user", "assistant", "tool", "tool", "user"]
    );
}

#[test]
fn token_counts_of_a_claude_code_body() {
    let body = fixture("claude_code_count_tokens.json");
    let chat = count_tokens_request(&body).expect("a count_tokens body");
    let request = ChatRequest::from_value(chat).expect("canonical request");

    let catalog = catalog("");
    let endpoint = &catalog.model("a/m").expect("model").endpoints[0];
    let target = Target {
        provider: catalog.provider("anthropic").expect("provider"),
        endpoint,
        api_key: Some("key"),
    };
    let upstream = AnthropicCodec
        .encode_count_tokens(&request, &target)
        .expect("encodes");
    assert_eq!(
        upstream.url,
        "https://api.anthropic.com/v1/messages/count_tokens"
    );
    let sent: Value = serde_json::from_slice(&upstream.body).expect("JSON body");
    assert_eq!(
        sent,
        json!({
            "model": "claude-opus-4-8",
            "messages": [{"role": "user", "content": [{"type": "text", "text": "foo"}]}],
            "tools": [{"name": "mcp__github__create_issue",
                       "description": body["tools"][0]["description"],
                       "input_schema": body["tools"][0]["input_schema"]}],
            "thinking": {"type": "adaptive"},
        })
    );

    // The estimate for other kinds: "foo" and the tool definition, a quarter of their characters.
    let tool = serde_json::to_string(&request.tools.as_ref().expect("tools")[0]).expect("JSON");
    let want = (3 + tool.chars().count() as u64).div_ceil(4);
    assert_eq!(estimate_input_tokens(&request), want);
    // An image is a fixed amount.
    let (_, sonnet) = canonical("claude_code_sonnet_budget.json");
    assert!(estimate_input_tokens(&sonnet) > MEDIA_PART_TOKENS);
}
