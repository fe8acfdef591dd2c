//! The pipeline's edge: every client format answers every refusal with the request's
//! `X-Generation-Id`, audited under that id; Responses, legacy completions and embeddings go
//! through the same pipeline as chat.

use serde_json::{json, Value};

use crate::harness::{catalog, TestGateway};
use crate::mock::{completion, stream_events, MockUpstream, Reply};

/// The catalogue of [`catalog`] plus an embedding model on the same provider.
fn with_embeddings(url: &str) -> String {
    let mut text = catalog(&[("alpha", url, "0.000001", "0.000002")]);
    text.push_str(
        "[[models]]\nid = \"test/embed\"\nname = \"Test: Embed\"\naliases = [\"embed-small\"]\nkind = \"embedding\"\ndimensions = 3\nsupports_dimensions = true\ncontext_length = 8000\n\n[[models.endpoints]]\nprovider = \"alpha\"\nupstream_model = \"embed-up\"\npricing = { prompt = \"0.0000001\" }\n\n",
    );
    text
}

#[tokio::test]
async fn every_refusal_carries_its_generation_id_and_is_audited_under_it() {
    let mock = MockUpstream::start(vec![]).await;
    let gw = TestGateway::builder(with_embeddings(&mock.url()))
        .build()
        .await;
    let big = "x".repeat(70 * 1024);
    let chat = json!({"model": "test/model", "messages": [{"role": "user", "content": "hi"}]});
    let paths = [
        ("/api/v1/chat/completions", "chat"),
        ("/api/v1/messages", "messages"),
        ("/api/v1/responses", "responses"),
        ("/api/v1/completions", "completions"),
        ("/api/v1/embeddings", "embeddings"),
    ];
    let mut seen = Vec::new();
    for (path, format) in paths {
        // (authorization, content type, body, expected status)
        let cases: Vec<(Option<String>, &str, String, u16)> = vec![
            (None, "application/json", chat.to_string(), 401),
            (
                Some(format!("sk-or-v1-{}", "0".repeat(64))),
                "application/json",
                chat.to_string(),
                401,
            ),
            (Some(gw.key.clone()), "text/plain", chat.to_string(), 415),
            (Some(gw.key.clone()), "application/json", big.clone(), 413),
            (Some(gw.key.clone()), "application/json", "{not json".into(), 400),
            (
                Some(gw.key.clone()),
                "application/json",
                json!({"model": "no/such", "messages": [{"role": "user", "content": "hi"}], "prompt": "hi", "input": "hi", "max_tokens": 5})
                    .to_string(),
                400,
            ),
        ];
        for (key, content_type, body, status) in cases {
            let mut request = gw
                .http
                .post(gw.url(path))
                .header("content-type", content_type)
                .body(body);
            if let Some(key) = key {
                request = request.bearer_auth(key);
            }
            let response = request.send().await.expect("send");
            assert_eq!(response.status(), status, "{path} expected {status}");
            let id = response
                .headers()
                .get("x-generation-id")
                .unwrap_or_else(|| panic!("{path} {status} has no X-Generation-Id"))
                .to_str()
                .expect("ascii")
                .to_owned();
            assert!(id.starts_with("gen-"), "{id}");
            let body: Value = response.json().await.expect("json error body");
            // Every envelope (OpenRouter's, Anthropic's, Responses') has `error.message`.
            let message = &body["error"]["message"];
            assert!(
                message.as_str().is_some_and(|m| !m.is_empty()),
                "{path}: {body}"
            );
            seen.push((id, status, format));
        }
    }
    let records = gw.audit_records().await;
    // Refusals before the key is known are counted per source and minute: each is a record's
    // sample or counted, under its format, in its source's record of the minute.
    let aggregates: Vec<&Value> = records
        .iter()
        .filter(|r| r["kind"] == "auth_failures")
        .collect();
    let unauthorized: Vec<&(String, u16, &str)> = seen
        .iter()
        .filter(|(_, status, _)| *status == 401)
        .collect();
    let counted: u64 = aggregates.iter().filter_map(|r| r["count"].as_u64()).sum();
    assert_eq!(counted, unauthorized.len() as u64, "{aggregates:?}");
    for (_, format) in paths {
        let refused = unauthorized.iter().filter(|(_, _, f)| *f == format).count() as u64;
        let in_records: u64 = aggregates
            .iter()
            .filter_map(|r| r["formats"][format].as_u64())
            .sum();
        assert_eq!(in_records, refused, "{format}: {aggregates:?}");
    }
    let first = unauthorized.first().expect("some 401s");
    assert!(
        aggregates
            .iter()
            .any(|r| r["sample_generation_id"] == json!(first.0) && r["status"] == 401),
        "the minute's first 401 is its record's sample"
    );
    for (id, status, format) in seen.iter().filter(|(_, status, _)| *status != 401) {
        let record = records
            .iter()
            .find(|r| r["generation_id"] == json!(id))
            .unwrap_or_else(|| panic!("no audit record for {format} {status} ({id})"));
        assert_eq!(record["status"], json!(status), "{record}");
        assert_eq!(record["format"], json!(format), "{record}");
        assert_eq!(
            record["routing"]["attempts"],
            json!([]),
            "nothing was sent upstream"
        );
    }
    assert!(mock.requests().is_empty());
}

#[tokio::test]
async fn responses_plain_and_streamed_through_a_chat_provider() {
    let mock = MockUpstream::start(vec![
        Reply::Json(200, completion("Hello there", 10, 2)),
        Reply::Sse {
            events: stream_events(&["Hel", "lo"], (10, 2)),
            delay: std::time::Duration::ZERO,
            cut: false,
        },
    ])
    .await;
    let gw = TestGateway::builder(catalog(&[("alpha", &mock.url(), "0.000001", "0.000002")]))
        .build()
        .await;
    let response = gw
        .post(
            "/api/v1/responses",
            json!({"model": "test/model", "instructions": "Be brief.", "input": "Say hello", "max_output_tokens": 50}),
        )
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 200);
    let id = response.headers()["x-generation-id"]
        .to_str()
        .expect("id")
        .to_owned();
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["object"], "response");
    assert_eq!(body["id"], json!(id));
    assert_eq!(body["status"], "completed");
    assert_eq!(body["output"][0]["type"], "message");
    assert_eq!(body["output"][0]["content"][0]["text"], "Hello there");
    assert_eq!(body["usage"]["input_tokens"], 10);
    assert_eq!(body["usage"]["output_tokens"], 2);
    assert!(body["usage"]["cost"].as_f64().is_some_and(|c| c > 0.0));
    let sent = &mock.requests()[0].body;
    assert_eq!(
        sent["messages"],
        json!([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello"}])
    );
    assert_eq!(sent["max_tokens"], 50);

    let text = gw
        .post(
            "/api/v1/responses",
            json!({"model": "test/model", "input": "Say hello", "stream": true}),
        )
        .send()
        .await
        .expect("send")
        .text()
        .await
        .expect("text");
    let events: Vec<Value> = text
        .split("\n\n")
        .filter_map(|frame| frame.lines().find_map(|l| l.strip_prefix("data: ")))
        .map(|d| serde_json::from_str(d).expect("event json"))
        .collect();
    let types: Vec<&str> = events
        .iter()
        .map(|e| e["type"].as_str().expect("type"))
        .collect();
    assert_eq!(types.first(), Some(&"response.created"), "{types:?}");
    assert_eq!(types.last(), Some(&"response.completed"), "{types:?}");
    assert!(types.contains(&"response.output_text.delta"), "{types:?}");
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e["sequence_number"], json!(i), "{e}");
    }
    let done = events.last().expect("completed");
    assert_eq!(done["response"]["output"][0]["content"][0]["text"], "Hello");
    assert!(done["response"]["usage"]["cost"].as_f64().is_some());

    let records = gw.audit_records().await;
    assert_eq!(records.len(), 2);
    for r in &records {
        assert_eq!(r["format"], "responses");
        assert_eq!(r["status"], 200);
        assert_eq!(r["served"]["provider"], "alpha");
    }
}

#[tokio::test]
async fn responses_refuse_what_a_stateless_gateway_cannot_do() {
    let mock = MockUpstream::start(vec![]).await;
    let gw = TestGateway::builder(catalog(&[("alpha", &mock.url(), "0.000001", "0.000002")]))
        .build()
        .await;
    for (field, body) in [
        (
            "previous_response_id",
            json!({"model": "test/model", "input": "hi", "previous_response_id": "resp_1"}),
        ),
        (
            "store",
            json!({"model": "test/model", "input": "hi", "store": true}),
        ),
        (
            "web_search",
            json!({"model": "test/model", "input": "hi", "tools": [{"type": "web_search"}]}),
        ),
    ] {
        let response = gw
            .post("/api/v1/responses", body)
            .send()
            .await
            .expect("send");
        assert_eq!(response.status(), 400, "{field}");
        let body: Value = response.json().await.expect("json");
        let message = body["error"]["message"].as_str().expect("message");
        assert!(message.contains(field), "{field} not named in {message}");
    }
    assert!(mock.requests().is_empty());
}

#[tokio::test]
async fn legacy_completions_go_to_a_chat_endpoint_as_one_user_message() {
    let mock = MockUpstream::start(vec![Reply::Json(200, completion(" world", 3, 1))]).await;
    let gw = TestGateway::builder(catalog(&[("alpha", &mock.url(), "0.000001", "0.000002")]))
        .build()
        .await;
    let response = gw
        .post(
            "/api/v1/completions",
            json!({"model": "test/model", "prompt": "Hello", "max_tokens": 5}),
        )
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["object"], "text_completion");
    assert_eq!(body["choices"][0]["text"], " world");
    assert!(body["usage"]["cost"].as_f64().is_some());
    let sent = &mock.requests()[0];
    assert!(sent.path.ends_with("/chat/completions"), "{}", sent.path);
    assert_eq!(
        sent.body["messages"],
        json!([{"role": "user", "content": "Hello"}])
    );
    // `suffix` needs an endpoint that serves the legacy API natively: none here.
    let response = gw
        .post(
            "/api/v1/completions",
            json!({"model": "test/model", "prompt": "a", "suffix": "b"}),
        )
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.expect("json");
    assert!(body["error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("suffix")));
}

#[tokio::test]
async fn embeddings_are_routed_held_metered_and_audited() {
    let mock = MockUpstream::start(vec![Reply::Json(
        200,
        json!({"object": "list", "model": "embed-up", "data": [
            {"object": "embedding", "index": 1, "embedding": [0.5, 0.25, 0.0]},
            {"object": "embedding", "index": 0, "embedding": [1.0, 0.0, -1.0]}
        ], "usage": {"prompt_tokens": 8, "total_tokens": 8}}),
    )])
    .await;
    let gw = TestGateway::builder(with_embeddings(&mock.url()))
        .build()
        .await;
    let response = gw
        .post(
            "/api/v1/embeddings",
            json!({"model": "embed-small", "input": ["first text", "second text"]}),
        )
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["object"], "list");
    assert_eq!(body["model"], "test/embed");
    assert_eq!(body["data"][0]["embedding"], json!([1.0, 0.0, -1.0]));
    assert_eq!(body["data"][1]["index"], 1);
    assert_eq!(body["usage"]["prompt_tokens"], 8);
    assert_eq!(body["usage"]["cost"], json!(0.0000008));
    let sent = &mock.requests()[0];
    assert!(sent.path.ends_with("/embeddings"), "{}", sent.path);
    assert_eq!(sent.body["input"], json!(["first text", "second text"]));
    assert_eq!(sent.body["model"], "embed-up");
    // A chat model is not an embedding model, and the other way round.
    let response = gw
        .post(
            "/api/v1/embeddings",
            json!({"model": "test/model", "input": "x"}),
        )
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 400);
    let response = gw
        .post(
            "/api/v1/chat/completions",
            json!({"model": "test/embed", "messages": [{"role": "user", "content": "x"}]}),
        )
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 400);
    let records = gw.audit_records().await;
    let served = records
        .iter()
        .find(|r| r["status"] == 200)
        .expect("served record");
    assert_eq!(served["format"], "embeddings");
    assert_eq!(served["tokens"]["prompt"], 8);
    assert_eq!(served["cost"], "0.0000008");
    let raw = serde_json::to_string(&records).expect("json");
    assert!(
        !raw.contains("first text"),
        "no input text in the audit chain"
    );
}

/// The request bodies a real client sent (captured by the compatibility suite).
fn captured(client: &str, scenario: &str) -> Vec<(String, Value)> {
    let path = format!(
        "{}/../../tests/compat/captures/{client}/{scenario}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).expect("capture");
    let capture: Value = serde_json::from_str(&text).expect("json");
    capture["requests"]
        .as_array()
        .expect("requests")
        .iter()
        .filter(|r| r["method"] == "POST" || r.get("method").is_none())
        .map(|r| {
            (
                r["path"].as_str().unwrap_or("").to_owned(),
                r["body"].clone(),
            )
        })
        .collect()
}

#[tokio::test]
async fn claude_codes_default_requests_are_served() {
    let events = stream_events(&["Hello"], (10, 2));
    let mock = MockUpstream::start(
        (0..8)
            .map(|_| Reply::Sse {
                events: events.clone(),
                delay: std::time::Duration::ZERO,
                cut: false,
            })
            .collect(),
    )
    .await;
    let mut text = catalog(&[("alpha", &mock.url(), "0.000001", "0.000002")]);
    // Claude Code asks for up to 128,000 tokens: the model needs the context of a Claude model.
    text = text.replace("context_length = 8000", "context_length = 400000");
    text = text.replace(
        "max_completion_tokens = 1000",
        "max_completion_tokens = 128000",
    );
    text = text.replace(
        "name = \"Test: Model\"\n",
        "name = \"Test: Model\"\naliases = [\"claude-opus-5-5\", \"claude-haiku-5\"]\n",
    );
    let gw = TestGateway::builder(text).build().await;
    for scenario in [
        "default-model-text",
        "default-model-tool",
        "other-model-text",
    ] {
        for (path, mut body) in captured("claude-code", scenario) {
            if !path.contains("/messages") {
                continue;
            }
            if scenario == "other-model-text" {
                body["model"] = json!("test/model");
            }
            let model = body["model"].as_str().unwrap_or("").to_owned();
            if !model.starts_with("claude-opus-5-5") && model != "test/model" {
                body["model"] = json!("test/model");
            }
            let response = gw
                .http
                .post(gw.url("/api/v1/messages?beta=true"))
                .header("x-api-key", &gw.key)
                .header("anthropic-version", "2023-06-01")
                .json(&body)
                .send()
                .await
                .expect("send");
            let status = response.status();
            let text = response.text().await.expect("text");
            assert_eq!(status, 200, "{scenario} {path}: {text}");
        }
    }
}

#[tokio::test]
async fn message_start_carries_the_input_tokens_an_anthropic_upstream_gave() {
    let mock = MockUpstream::start(vec![Reply::Sse {
        events: crate::kinds::anthropic_events(),
        delay: std::time::Duration::ZERO,
        cut: false,
    }])
    .await;
    let gw = TestGateway::builder(crate::harness::catalog_of_kinds(&[(
        "claude",
        "anthropic",
        &mock.url(),
        "0.000003",
        "0.000015",
    )]))
    .build()
    .await;
    let text = gw
        .post(
            "/api/v1/messages",
            json!({"model": "test/model", "max_tokens": 50, "stream": true,
                   "messages": [{"role": "user", "content": "hi"}]}),
        )
        .send()
        .await
        .expect("send")
        .text()
        .await
        .expect("text");
    let events = crate::messages::anthropic_events(&text);
    let (name, start) = events.first().expect("an event");
    assert_eq!(name, "message_start", "{text}");
    assert_eq!(start["message"]["usage"]["input_tokens"], 10, "{text}");
}

#[tokio::test]
async fn anthropic_clients_get_anthropics_envelope_with_a_request_id_for_unknown_paths() {
    let mock = MockUpstream::start(vec![]).await;
    let gw = TestGateway::builder(catalog(&[("alpha", &mock.url(), "0.000001", "0.000002")]))
        .build()
        .await;
    for (method, path, status) in [
        ("POST", "/api/v1/messages/batches", 404),
        ("GET", "/api/v1/messages", 405),
    ] {
        let response = gw
            .http
            .request(method.parse().expect("method"), gw.url(path))
            .header("x-api-key", &gw.key)
            .send()
            .await
            .expect("send");
        assert_eq!(response.status(), status, "{path}");
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["type"], "error", "{body}");
        assert!(body["error"]["type"].is_string(), "{body}");
        assert!(
            body["request_id"]
                .as_str()
                .is_some_and(|id| id.starts_with("gen-")),
            "{body}"
        );
    }
}

#[tokio::test]
async fn responses_are_served_by_anthropic_and_gemini_endpoints_with_reasoning_sealed() {
    for (kind, reply) in [
        ("anthropic", crate::kinds::anthropic_message()),
        ("gemini", crate::kinds::gemini_response()),
    ] {
        let mock = MockUpstream::start(vec![
            Reply::Json(200, reply.clone()),
            Reply::Json(200, reply),
        ])
        .await;
        let gw = TestGateway::builder(crate::harness::catalog_of_kinds(&[(
            "up",
            kind,
            &mock.url(),
            "0.000003",
            "0.000015",
        )]))
        .build()
        .await;
        let response = gw
            .post(
                "/api/v1/responses",
                json!({"model": "test/model", "input": "Say hello", "max_output_tokens": 100}),
            )
            .send()
            .await
            .expect("send");
        assert_eq!(response.status(), 200, "{kind}");
        let body: Value = response.json().await.expect("json");
        let text: String = body["output"]
            .as_array()
            .expect("output")
            .iter()
            .filter(|item| item["type"] == "message")
            .flat_map(|item| item["content"].as_array().cloned().unwrap_or_default())
            .filter_map(|part| part["text"].as_str().map(str::to_owned))
            .collect();
        assert!(!text.is_empty(), "{kind}: {body}");
        assert!(
            body["usage"]["cost"].as_f64().is_some_and(|c| c > 0.0),
            "{kind}"
        );
        if kind == "anthropic" {
            // The thinking block comes back sealed: its signature never in the clear.
            let reasoning = body["output"]
                .as_array()
                .expect("output")
                .iter()
                .find(|item| item["type"] == "reasoning")
                .expect("a reasoning item");
            let sealed = reasoning["encrypted_content"].as_str().expect("sealed");
            assert!(
                !sealed.contains("sig-1") && !sealed.contains("hmm"),
                "{sealed}"
            );
            // Sent back in the next turn, it reaches Anthropic as the thinking block it was.
            let mut input = vec![json!({"role": "user", "content": "Say hello"})];
            input.extend(body["output"].as_array().cloned().unwrap_or_default());
            input.push(json!({"role": "user", "content": "Again"}));
            let again = gw
                .post(
                    "/api/v1/responses",
                    json!({"model": "test/model", "input": input, "max_output_tokens": 100}),
                )
                .send()
                .await
                .expect("send");
            assert_eq!(again.status(), 200);
            let sent = &mock.requests()[1].body;
            let assistant = &sent["messages"][1];
            assert_eq!(assistant["role"], "assistant", "{sent}");
            assert_eq!(assistant["content"][0]["type"], "thinking", "{sent}");
            assert_eq!(assistant["content"][0]["signature"], "sig-1", "{sent}");
        }
        let sent = &mock.requests()[0];
        match kind {
            "anthropic" => assert!(sent.path.ends_with("/messages"), "{}", sent.path),
            _ => assert!(sent.path.contains(":generateContent"), "{}", sent.path),
        }
    }
}
