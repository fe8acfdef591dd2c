use serde_json::{json, Value};
use switchyard_core::chat::{Message, Stop};

use super::*;

#[test]
fn a_plain_request_is_one_user_message() {
    let r = parse(
        br#"{"model": "openai/gpt-4o", "prompt": "Once upon a time", "max_tokens": 16,
            "temperature": 0.7, "stop": ["\n"], "stream": true, "user": "u-1",
            "provider": {"only": ["openai"]}, "models": ["a/b"], "seed": 4, "logprobs": 2}"#,
    )
    .expect("valid");
    assert_eq!(r.chat.model.as_deref(), Some("openai/gpt-4o"));
    assert_eq!(r.chat.models, Some(vec!["a/b".to_owned()]));
    assert_eq!(r.chat.messages.len(), 1);
    assert!(
        matches!(&r.chat.messages[0], Message::User { content, .. } if content.text() == "Once upon a time")
    );
    assert_eq!(r.chat.max_tokens, Some(16));
    assert_eq!(r.chat.temperature, Some(0.7));
    assert_eq!(r.chat.stop, Some(Stop::Many(vec!["\n".to_owned()])));
    assert!(r.chat.is_stream());
    assert_eq!(r.chat.user.as_deref(), Some("u-1"));
    assert_eq!(r.chat.seed, Some(4));
    // The legacy count becomes chat's switch and count.
    assert_eq!(
        (r.chat.logprobs, r.chat.top_logprobs),
        (Some(true), Some(2))
    );
    assert_eq!(r.logprobs, Some(2));
    assert!(r.chat.provider.is_some());
    assert_eq!(r.needs_legacy_api(), None);
    assert_eq!(r.prompts(), Some(vec!["Once upon a time"]));
}

#[test]
fn legacy_only_fields_are_kept_beside_the_chat_form() {
    // (body, the field that needs the legacy API, prompts)
    let cases: [(Value, Option<&str>, Vec<&str>); 7] = [
        (json!({"prompt": "x"}), None, vec!["x"]),
        (json!({"prompt": ["x"]}), None, vec!["x"]),
        (json!({"prompt": "", "suffix": ""}), None, vec![""]),
        (
            json!({"prompt": "def f(", "suffix": "return x"}),
            Some("suffix"),
            vec!["def f("],
        ),
        (
            json!({"prompt": "x", "echo": true}),
            Some("echo"),
            vec!["x"],
        ),
        (
            json!({"prompt": ["a", "b"]}),
            Some("prompt"),
            vec!["a", "b"],
        ),
        (
            json!({"prompt": "x", "n": 2, "best_of": 3}),
            Some("n"),
            vec!["x"],
        ),
    ];
    for (body, field, prompts) in cases {
        let mut body = body;
        body["model"] = json!("m/x");
        let r = parse_value(&body).unwrap_or_else(|e| panic!("{body}: {e}"));
        assert_eq!(r.needs_legacy_api(), field, "{body}");
        assert_eq!(r.prompts(), Some(prompts), "{body}");
    }
    let r =
        parse_value(&json!({"prompt": "x", "echo": false, "n": 1, "best_of": 1})).expect("valid");
    assert_eq!((r.echo, r.n, r.best_of), (false, Some(1), Some(1)));
    assert_eq!(r.needs_legacy_api(), None);
    // No model: the catalogue's default model routes it.
    assert_eq!(r.chat.model, None);
}

#[test]
fn refuses_what_it_cannot_serve_by_name() {
    let cases = [
        (json!("x"), "must be a JSON object"),
        (json!({"model": "m"}), "prompt: field required"),
        (
            json!({"prompt": [1, 2, 3]}),
            "token arrays are not supported",
        ),
        (
            json!({"prompt": [[1, 2]]}),
            "token arrays are not supported",
        ),
        (json!({"prompt": []}), "prompt must not be an empty array"),
        (json!({"prompt": ["a", null]}), "prompt[1] must be a string"),
        (
            json!({"prompt": 5}),
            "prompt must be a string or an array of strings",
        ),
        (
            json!({"prompt": "x", "suffix": 1}),
            "suffix must be a string",
        ),
        (
            json!({"prompt": "x", "echo": "yes"}),
            "echo must be a boolean",
        ),
        (
            json!({"prompt": "x", "n": 0}),
            "n must be an integer from 1 to 128",
        ),
        (
            json!({"prompt": "x", "best_of": 21}),
            "best_of must be an integer from 1 to 20",
        ),
        (
            json!({"prompt": "x", "n": 3, "best_of": 2}),
            "best_of (2) must be at least n (3)",
        ),
        (
            json!({"prompt": "x", "logprobs": 6}),
            "logprobs must be an integer from 0 to 5",
        ),
        (
            json!({"prompt": "x", "logprobs": true}),
            "logprobs must be an integer from 0 to 5",
        ),
        (
            json!({"prompt": "x", "temperature": 3}),
            "temperature must be in [0, 2]",
        ),
        (
            json!({"prompt": "x", "max_tokens": 0}),
            "max_tokens must be at least 1",
        ),
        (
            json!({"prompt": "x", "messages": []}),
            "unknown field `messages`",
        ),
        (json!({"prompt": "x", "tools": []}), "unknown field `tools`"),
        (
            json!({"prompt": "x", "provider": {"sortt": "price"}}),
            "unknown field `sortt`",
        ),
    ];
    for (body, needle) in cases {
        let err = parse_value(&body).expect_err(&body.to_string());
        assert!(
            err.0.contains(needle),
            "{body}: {:?} lacks {needle:?}",
            err.0
        );
    }
    let err = parse(b"{").expect_err("malformed");
    assert!(err.0.starts_with("Invalid JSON"), "{}", err.0);
}

#[test]
fn renders_a_text_completion() {
    let completion = json!({
        "id": "gen-1", "object": "chat.completion", "created": 1700000000, "model": "openai/gpt-4o",
        "provider": "OpenAI", "system_fingerprint": null,
        "choices": [
            {"index": 0, "finish_reason": "length", "native_finish_reason": "length",
             "message": {"role": "assistant", "content": "Hello there", "reasoning": "hm"},
             "logprobs": {"content": [
                {"token": "Hello", "logprob": -0.1, "bytes": [72], "top_logprobs": [{"token": "Hello", "logprob": -0.1}, {"token": "Hi", "logprob": -2.5}]},
                {"token": " there", "logprob": -0.3, "bytes": [32], "top_logprobs": []}
             ]}},
            {"index": 1, "finish_reason": "stop", "message": {"role": "assistant", "content": [{"type": "text", "text": "A"}, {"type": "text", "text": "B"}]}},
        ],
        "usage": {"prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6, "cost": 0.00001},
    });
    assert_eq!(
        response_from_chat(&completion),
        json!({
            "id": "gen-1", "object": "text_completion", "created": 1700000000, "model": "openai/gpt-4o",
            "provider": "OpenAI", "system_fingerprint": null,
            "choices": [
                {"text": "Hello there", "index": 0, "finish_reason": "length", "logprobs": {
                    "tokens": ["Hello", " there"],
                    "token_logprobs": [-0.1, -0.3],
                    "top_logprobs": [{"Hello": -0.1, "Hi": -2.5}, {}],
                    "text_offset": [0, 5],
                }},
                {"text": "AB", "index": 1, "finish_reason": "stop", "logprobs": null},
            ],
            "usage": {"prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6, "cost": 0.00001},
        })
    );
    // Legacy logprobs from an endpoint serving the legacy API pass as they came.
    let native = json!({"tokens": ["a"], "token_logprobs": [-1.0], "top_logprobs": null, "text_offset": [7]});
    let out = response_from_chat(&json!({"choices": [
        {"index": 0, "finish_reason": "stop", "message": {"content": "a"}, "logprobs": native}
    ]}));
    assert_eq!(out["choices"][0]["logprobs"], native);
}

#[test]
fn renders_stream_chunks() {
    let mut t = StreamTranscoder::new();
    let chunk = |choices: Value| json!({"id": "gen-1", "object": "chat.completion.chunk", "created": 1, "model": "m/x", "provider": "P", "choices": choices});
    let lp = |token: &str| json!({"content": [{"token": token, "logprob": -0.5, "top_logprobs": [{"token": token, "logprob": -0.5}]}]});
    let inputs = [
        chunk(
            json!([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": null}]),
        ),
        chunk(json!([{"index": 0, "delta": {"reasoning": "thinking"}, "finish_reason": null}])),
        chunk(
            json!([{"index": 0, "delta": {"content": "Hé"}, "finish_reason": null, "logprobs": lp("Hé")}]),
        ),
        chunk(
            json!([{"index": 0, "delta": {"content": "llo"}, "finish_reason": null, "logprobs": lp("llo")}]),
        ),
        chunk(
            json!([{"index": 0, "delta": {}, "finish_reason": "stop", "native_finish_reason": "stop"}]),
        ),
        json!({"id": "gen-1", "object": "chat.completion.chunk", "created": 1, "model": "m/x", "provider": "P",
               "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5, "cost": 0.1}}),
        json!({"id": "gen-1", "object": "chat.completion.chunk", "created": 1, "model": "m/x",
               "error": {"code": 502, "message": "upstream failed"},
               "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}]}),
    ];
    let outputs: Vec<Option<Value>> = inputs.iter().map(|c| t.chunk(c)).collect();
    let head = |choices: Value| json!({"id": "gen-1", "object": "text_completion", "created": 1, "model": "m/x", "provider": "P", "choices": choices});
    assert_eq!(
        outputs,
        vec![
            None,
            None,
            Some(head(
                json!([{"text": "Hé", "index": 0, "finish_reason": null, "logprobs": {
                "tokens": ["Hé"], "token_logprobs": [-0.5], "top_logprobs": [{"Hé": -0.5}], "text_offset": [0]}}])
            )),
            // Offsets run on in characters across chunks.
            Some(head(
                json!([{"text": "llo", "index": 0, "finish_reason": null, "logprobs": {
                "tokens": ["llo"], "token_logprobs": [-0.5], "top_logprobs": [{"llo": -0.5}], "text_offset": [2]}}])
            )),
            Some(head(
                json!([{"text": "", "index": 0, "finish_reason": "stop", "logprobs": null}])
            )),
            Some(
                json!({"id": "gen-1", "object": "text_completion", "created": 1, "model": "m/x", "provider": "P",
                        "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5, "cost": 0.1}})
            ),
            Some(
                json!({"id": "gen-1", "object": "text_completion", "created": 1, "model": "m/x",
                        "error": {"code": 502, "message": "upstream failed"},
                        "choices": [{"text": "", "index": 0, "finish_reason": "error", "logprobs": null}]})
            ),
        ]
    );
    let framed = frame(&json!({"object": "text_completion", "choices": []}));
    assert_eq!(
        String::from_utf8(framed).expect("utf8"),
        "data: {\"choices\":[],\"object\":\"text_completion\"}\n\n"
    );
    assert_eq!(DONE, b"data: [DONE]\n\n");
}
