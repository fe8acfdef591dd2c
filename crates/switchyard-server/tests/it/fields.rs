//! Request fields end to end: each is served (and what reaches the upstream shows it) or
//! refused with a 400 naming it before anything is sent.

use std::time::Duration;

use base64::Engine as _;
use serde_json::{json, Value};

use crate::harness::{catalog, catalog_of_kinds, TestGateway};
use crate::kinds::anthropic_message;
use crate::mock::{completion, stream_events, MockUpstream, Reply};

const CHAT: &str = "/api/v1/chat/completions";

/// The test catalogue with `extra` parameters added to every endpoint's supported list.
fn with_parameters(text: String, extra: &[&str]) -> String {
    let more: String = extra.iter().map(|p| format!(", \"{p}\"")).collect();
    text.replace("\"reasoning\"]", &format!("\"reasoning\"{more}]"))
}

async fn gateway(
    kind: &str,
    replies: Vec<Reply>,
    parameters: &[&str],
) -> (MockUpstream, TestGateway) {
    let mock = MockUpstream::start(replies).await;
    let text = catalog_of_kinds(&[("up", kind, &mock.url(), "0.000001", "0.000002")]);
    let gw = TestGateway::builder(with_parameters(text, parameters))
        .build()
        .await;
    (mock, gw)
}

fn body(fields: Value) -> Value {
    let mut b = json!({"model": "test/model", "max_tokens": 100,
                       "messages": [{"role": "user", "content": "hi"}]});
    if let (Some(b), Some(f)) = (b.as_object_mut(), fields.as_object()) {
        b.extend(f.clone());
    }
    b
}

async fn send(gw: &TestGateway, fields: Value) -> (u16, String) {
    let r = gw.post(CHAT, body(fields)).send().await.expect("send");
    (r.status().as_u16(), r.text().await.expect("text"))
}

fn data_lines(text: &str) -> Vec<Value> {
    text.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn reasoning_completion() -> Value {
    let mut c = completion("Paris", 5, 9);
    c["choices"][0]["message"]["reasoning"] = json!("The capital of France");
    c["choices"][0]["message"]["reasoning_details"] =
        json!([{"type": "reasoning.text", "text": "The capital of France"}]);
    c
}

fn gemini_thinking() -> Value {
    json!({"candidates": [{"content": {"role": "model", "parts": [
                {"text": "The capital of France", "thought": true}, {"text": "Paris"}]},
            "finishReason": "STOP", "index": 0}],
           "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 1, "thoughtsTokenCount": 8, "totalTokenCount": 14}})
}

#[tokio::test]
async fn reasoning_is_left_out_when_excluded_on_every_provider_kind() {
    let cases = [
        ("openai", reasoning_completion()),
        ("anthropic", anthropic_message()),
        ("gemini", gemini_thinking()),
    ];
    for (kind, reply) in cases {
        let replies = vec![Reply::Json(200, reply); 3];
        let (_mock, gw) = gateway(kind, replies, &[]).await;
        // Asked for, the reasoning comes back: the exclusions below are what remove it.
        let (status, text) = send(&gw, json!({"reasoning": {"effort": "low"}})).await;
        assert_eq!(status, 200, "{kind}: {text}");
        let shown: Value = serde_json::from_str(&text).expect("json");
        assert!(
            shown["choices"][0]["message"]["reasoning"].is_string(),
            "{kind}: {shown}"
        );
        for exclude in [
            json!({"reasoning": {"effort": "low", "exclude": true}}),
            json!({"include_reasoning": false}),
        ] {
            let (status, text) = send(&gw, exclude.clone()).await;
            assert_eq!(status, 200, "{kind} {exclude}: {text}");
            let answer: Value = serde_json::from_str(&text).expect("json");
            let message = &answer["choices"][0]["message"];
            assert!(message["content"].is_string(), "{kind}: {answer}");
            for field in ["reasoning", "reasoning_details"] {
                assert!(message.get(field).is_none(), "{kind} {exclude}: {answer}");
            }
            // The reasoning was still produced, and is billed.
            assert!(answer["usage"]["completion_tokens"].as_u64() > Some(0));
        }
    }
}

#[tokio::test]
async fn streamed_reasoning_is_left_out_when_excluded() {
    let mut events = stream_events(&["Par", "is"], (5, 9));
    events.insert(
        1,
        json!({"id": "c", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"reasoning": "The capital", "reasoning_details": [{"type": "reasoning.text", "text": "The capital"}]}, "finish_reason": null}]}).to_string(),
    );
    let reply = || Reply::Sse {
        events: events.clone(),
        delay: Duration::from_millis(1),
        cut: false,
    };
    let (_mock, gw) = gateway("openai", vec![reply(), reply()], &[]).await;
    let (_, shown) = send(&gw, json!({"stream": true})).await;
    assert!(shown.contains("The capital"), "{shown}");
    let (status, text) = send(&gw, json!({"stream": true, "reasoning": {"exclude": true}})).await;
    assert_eq!(status, 200);
    assert!(!text.contains("The capital"), "{text}");
    assert!(!text.contains("reasoning_details"), "{text}");
    let content: String = data_lines(&text)
        .iter()
        .filter_map(|c| {
            c["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(content, "Paris");
}

#[tokio::test]
async fn n_is_forwarded_where_supported_and_refused_elsewhere() {
    let mut two = completion("a", 5, 4);
    two["choices"]
        .as_array_mut()
        .expect("choices")
        .push(json!({"index": 1, "message": {"role": "assistant", "content": "b"}, "finish_reason": "stop"}));
    let (mock, gw) = gateway("openai", vec![Reply::Json(200, two)], &["n"]).await;
    let (status, text) = send(&gw, json!({"n": 2})).await;
    assert_eq!(status, 200, "{text}");
    let answer: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(answer["choices"].as_array().map(Vec::len), Some(2));
    assert_eq!(mock.requests()[0].body["n"], 2);

    // An OpenAI-compatible endpoint that does not list `n`, and the kinds that return one
    // choice: a 400 naming the field, nothing sent.
    for (kind, parameters) in [
        ("openai", &[][..]),
        ("anthropic", &["n"][..]),
        ("gemini", &["n"][..]),
    ] {
        let (mock, gw) = gateway(kind, vec![], parameters).await;
        let (status, text) = send(&gw, json!({"n": 3})).await;
        assert_eq!(status, 400, "{kind}: {text}");
        assert!(text.contains("n: "), "{kind}: {text}");
        assert!(mock.requests().is_empty(), "{kind}");
    }
}

#[tokio::test]
async fn prompt_cache_key_is_forwarded_and_keeps_the_conversation_on_one_provider() {
    let alpha = MockUpstream::start(vec![Reply::Json(200, completion("a", 1, 1)); 8]).await;
    let beta = MockUpstream::start(vec![Reply::Json(200, completion("b", 1, 1)); 8]).await;
    // Beta costs a hundred times more: without stickiness it is all but never chosen.
    let text = catalog(&[
        ("alpha", &alpha.url(), "0.000001", "0.000001"),
        ("beta", &beta.url(), "0.0001", "0.0001"),
    ]);
    let gw = TestGateway::builder(with_parameters(text, &["prompt_cache_key"]))
        .build()
        .await;
    let (status, text) = send(
        &gw,
        json!({"prompt_cache_key": "conv-1", "provider": {"only": ["beta"]}}),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(beta.requests()[0].body["prompt_cache_key"], "conv-1");
    for _ in 0..3 {
        let (status, text) = send(&gw, json!({"prompt_cache_key": "conv-1"})).await;
        assert_eq!(status, 200, "{text}");
    }
    assert_eq!(beta.requests().len(), 4, "the conversation stayed on beta");
    // Another conversation goes where routing sends it.
    let (status, _) = send(&gw, json!({"prompt_cache_key": "conv-2"})).await;
    assert_eq!(status, 200);
    assert_eq!(alpha.requests().len(), 1);
}

#[tokio::test]
async fn what_the_gateway_cannot_run_is_refused_naming_it() {
    let (mock, gw) = gateway("openai", vec![], &[]).await;
    let cases = [
        (
            json!({"tools": [{"type": "openrouter:web_search"}]}),
            "tools[0].type",
        ),
        (
            json!({"tools": [{"type": "web_search_preview"}]}),
            "no server tools",
        ),
        (json!({"plugins": [{"id": "web"}]}), "web search provider"),
        (json!({"plugins": [{"id": "moderation"}]}), "moderation"),
        (
            json!({"stop_server_tools_when": [{"type": "step_count_is", "step_count": 2}]}),
            "stop_server_tools_when",
        ),
        (json!({"transforms": ["summarize"]}), "transforms[0]"),
        (
            json!({"debug": {"echo_upstream_body": true}}),
            "debug.echo_upstream_body",
        ),
        (json!({"store": true}), "store: unknown field"),
        (json!({"functions": []}), "functions: unknown field"),
    ];
    for (fields, needle) in cases {
        let (status, text) = send(&gw, fields.clone()).await;
        assert_eq!(status, 400, "{fields}: {text}");
        let error: Value = serde_json::from_str(&text).expect("json");
        let message = error["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(needle), "{fields}: {message}");
    }
    assert!(mock.requests().is_empty());
}

#[tokio::test]
async fn middle_out_compresses_a_conversation_to_fit_the_context() {
    let (mock, gw) = gateway(
        "openai",
        vec![Reply::Json(200, completion("ok", 1, 1))],
        &[],
    )
    .await;
    // About 12,000 tokens by the gateway's estimate, for a model with 8,000.
    let mut messages = vec![json!({"role": "system", "content": "rules"})];
    for i in 0..24 {
        let role = if i % 2 == 0 { "user" } else { "assistant" };
        messages.push(json!({"role": role, "content": format!("m{i} {}", "x".repeat(2000))}));
    }
    let (status, text) = send(&gw, json!({"messages": messages})).await;
    assert_eq!(status, 404, "too long without the transform: {text}");
    let (status, text) = send(
        &gw,
        json!({"messages": messages, "transforms": ["middle-out"]}),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let sent = mock.requests()[0].body["messages"].clone();
    let sent = sent.as_array().expect("messages");
    assert!(sent.len() < messages.len());
    assert_eq!(sent[0]["content"], "rules");
    assert!(sent[1]["content"]
        .as_str()
        .is_some_and(|c| c.starts_with("m0 ")));
    assert!(sent[sent.len() - 1]["content"]
        .as_str()
        .is_some_and(|c| c.starts_with("m23 ")));
}

#[tokio::test]
async fn response_healing_repairs_json_answers() {
    let broken = "```json\n{\"city\": \"Paris\",}\n```";
    let replies = vec![Reply::Json(200, completion(broken, 5, 5)); 2];
    let (_mock, gw) = gateway("openai", replies, &[]).await;
    let format = json!({"type": "json_object"});
    let (status, text) = send(&gw, json!({"response_format": format})).await;
    assert_eq!(status, 200);
    let plain: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(plain["choices"][0]["message"]["content"], broken);
    let (status, text) = send(
        &gw,
        json!({"response_format": format, "plugins": [{"id": "response-healing"}]}),
    )
    .await;
    assert_eq!(status, 200);
    let healed: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(
        healed["choices"][0]["message"]["content"],
        "{\"city\": \"Paris\"}"
    );
}

/// A one-page PDF saying `text`.
fn pdf(text: &str) -> Vec<u8> {
    use lopdf::content::{Content, Operation};
    use lopdf::{dictionary, Document, Object, Stream};
    let mut doc = Document::with_version("1.5");
    let pages_id = doc.new_object_id();
    let font_id = doc.add_object(dictionary! {
        "Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Courier",
    });
    let resources_id = doc.add_object(dictionary! { "Font" => dictionary! { "F1" => font_id } });
    let content = Content {
        operations: vec![
            Operation::new("BT", vec![]),
            Operation::new("Tf", vec!["F1".into(), 24.into()]),
            Operation::new("Td", vec![72.into(), 700.into()]),
            Operation::new("Tj", vec![Object::string_literal(text)]),
            Operation::new("ET", vec![]),
        ],
    };
    let content_id = doc.add_object(Stream::new(
        dictionary! {},
        content.encode().expect("encode"),
    ));
    let page_id = doc.add_object(dictionary! {
        "Type" => "Page", "Parent" => pages_id, "Contents" => content_id,
    });
    doc.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! {
            "Type" => "Pages", "Kids" => vec![page_id.into()], "Count" => 1,
            "Resources" => resources_id, "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
        }),
    );
    let catalog_id = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
    doc.trailer.set("Root", catalog_id);
    let mut out = Vec::new();
    doc.save_to(&mut out).expect("save");
    out
}

#[tokio::test]
async fn file_parser_turns_a_pdf_into_text() {
    let (mock, gw) = gateway(
        "openai",
        vec![Reply::Json(200, completion("ok", 1, 1))],
        &[],
    )
    .await;
    let data = base64::engine::general_purpose::STANDARD.encode(pdf("Invoice 42 is due"));
    let messages = json!([{"role": "user", "content": [
        {"type": "text", "text": "Summarize"},
        {"type": "file", "file": {"filename": "invoice.pdf", "file_data": format!("data:application/pdf;base64,{data}")}}
    ]}]);
    // The model reads no files: without the plugin no endpoint can take the request.
    let (status, text) = send(&gw, json!({"messages": messages})).await;
    assert_eq!(status, 404, "{text}");
    let (status, text) = send(
        &gw,
        json!({"messages": messages, "plugins": [{"id": "file-parser", "pdf": {"engine": "pdf-text"}}]}),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let part = &mock.requests()[0].body["messages"][0]["content"][1];
    assert_eq!(part["type"], "text");
    let text = part["text"].as_str().unwrap_or_default();
    assert!(
        text.contains("Invoice 42 is due") && text.contains("invoice.pdf"),
        "{part}"
    );

    // What is not a PDF is a 400 naming the part.
    let bad = json!([{"role": "user", "content": [
        {"type": "file", "file": {"file_data": "data:application/pdf;base64,bm90IGEgcGRm"}}]}]);
    let (status, text) = send(
        &gw,
        json!({"messages": bad, "plugins": [{"id": "file-parser"}]}),
    )
    .await;
    assert_eq!(status, 400);
    assert!(text.contains("messages[0].content[0].file"), "{text}");
}

#[tokio::test]
async fn debug_echoes_the_upstream_body_first() {
    let reply = Reply::Sse {
        events: stream_events(&["hi"], (1, 1)),
        delay: Duration::from_millis(1),
        cut: false,
    };
    let (mock, gw) = gateway("openai", vec![reply], &[]).await;
    let (status, text) = send(
        &gw,
        json!({"stream": true, "temperature": 0.5, "debug": {"echo_upstream_body": true}}),
    )
    .await;
    assert_eq!(status, 200);
    let chunks = data_lines(&text);
    let echo = &chunks[0]["debug"]["echo_upstream_body"];
    assert_eq!(echo["model"], "up-model");
    assert_eq!(echo["temperature"], 0.5);
    assert_eq!(echo, &mock.requests()[0].body, "the echo is what was sent");
    assert!(chunks[1..].iter().all(|c| c.get("debug").is_none()));
}

#[tokio::test]
async fn top_level_cache_control_reaches_anthropic() {
    let (mock, gw) = gateway(
        "anthropic",
        vec![Reply::Json(200, anthropic_message())],
        &[],
    )
    .await;
    let (status, text) = send(
        &gw,
        json!({"cache_control": {"type": "ephemeral", "ttl": "1h"}}),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(
        mock.requests()[0].body["cache_control"],
        json!({"type": "ephemeral", "ttl": "1h"})
    );
}

#[tokio::test]
async fn a_reasoning_budget_becomes_an_effort_on_openai_compatible_endpoints() {
    let replies = vec![Reply::Json(200, completion("ok", 1, 1)); 3];
    let (mock, gw) = gateway("openai", replies, &[]).await;
    for (budget, effort) in [(90, "high"), (50, "medium"), (10, "low")] {
        let (status, _) = send(&gw, json!({"reasoning": {"max_tokens": budget}})).await;
        assert_eq!(status, 200);
        let sent = mock
            .requests()
            .last()
            .map(|r| r.body.clone())
            .unwrap_or_default();
        assert_eq!(sent["reasoning_effort"], effort, "budget {budget} of 100");
    }
}
