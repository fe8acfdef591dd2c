//! The inference operations (chat, Messages, Responses, embeddings), streamed and not, with
//! every error status the gateway gives them; then the generation each left behind
//! (`/generation`, `/generation/content`).

use serde_json::{json, Value};

use super::{Checker, Op, World};

const CHAT: Op = Op("POST", "/chat/completions");
const MESSAGES: Op = Op("POST", "/messages");
const RESPONSES: Op = Op("POST", "/responses");
const EMBEDDINGS: Op = Op("POST", "/embeddings");
const GENERATION: Op = Op("GET", "/generation");
const CONTENT: Op = Op("GET", "/generation/content");

/// A chat body for a model.
fn chat(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "hi"}]})
}

/// The body of each inference operation for a model.
fn body(op: Op, model: &str, stream: bool) -> Value {
    match op {
        MESSAGES => json!({"model": model, "max_tokens": 50, "stream": stream,
            "messages": [{"role": "user", "content": "hi"}]}),
        RESPONSES => json!({"model": model, "input": "hi", "stream": stream}),
        EMBEDDINGS => json!({"model": model, "input": "hi"}),
        _ => json!({"model": model, "stream": stream,
            "messages": [{"role": "user", "content": "hi"}]}),
    }
}

/// Calls an inference operation with the world's standard key.
async fn infer(
    c: &mut Checker,
    w: &World,
    op: Op,
    body: Value,
    expected: u16,
    what: &str,
) -> super::Answer {
    let request =
        w.gw.http
            .post(w.gw.url(&format!("/api/v1{}", op.1)))
            .bearer_auth(&w.gw.key)
            .header("X-OpenRouter-Metadata", "enabled")
            .header("User-Agent", "contract-test/1.0")
            .json(&body);
    c.call(op, request, expected, what).await
}

pub async fn check(c: &mut Checker, w: &World) {
    let gw = &w.gw;
    let post = |path: &str| gw.http.post(gw.url(&format!("/api/v1{path}")));

    // Served, with `openrouter_metadata`.
    let served = infer(c, w, CHAT, chat("test/model"), 200, "served").await;
    let metadata = &served.body["openrouter_metadata"];
    c.expect(
        metadata["summary"].is_string() && metadata["pipeline"].is_array(),
        format!("openrouter_metadata has a summary and a pipeline: {metadata}"),
    );
    let streamed = infer(c, w, CHAT, body(CHAT, "test/stream", true), 200, "stream").await;
    c.expect(
        streamed.events.len() >= 3,
        format!("a stream of chunks: {:?}", streamed.events),
    );
    let cut = infer(
        c,
        w,
        CHAT,
        body(CHAT, "test/cut", true),
        200,
        "cut mid-stream",
    )
    .await;
    c.expect(
        cut.events
            .last()
            .is_some_and(|e| e["data"]["error"].is_object()),
        format!(
            "a cut chat stream ends with the error chunk: {:?}",
            cut.events.last()
        ),
    );
    let fallback = infer(
        c,
        w,
        CHAT,
        json!({"model": "test/fallback", "provider": {"sort": "price"},
        "messages": [{"role": "user", "content": "hi"}]}),
        200,
        "fallback",
    )
    .await;

    // Every error status of chat.
    infer(
        c,
        w,
        CHAT,
        json!({"model": "test/model", "messages": "hi"}),
        400,
        "bad messages",
    )
    .await;
    c.call(
        CHAT,
        post("/chat/completions").json(&chat("test/model")),
        401,
        "no key",
    )
    .await;
    c.call(
        CHAT,
        post("/chat/completions")
            .bearer_auth(&w.broke)
            .json(&chat("test/model")),
        402,
        "a limit that covers nothing",
    )
    .await;
    c.call(
        CHAT,
        post("/chat/completions")
            .bearer_auth(&w.admin)
            .json(&chat("test/model")),
        403,
        "a management key",
    )
    .await;
    infer(
        c,
        w,
        CHAT,
        json!({"model": "test/model", "provider": {"only": ["nobody"]},
        "messages": [{"role": "user", "content": "hi"}]}),
        404,
        "no endpoint allowed",
    )
    .await;
    let huge = "x".repeat(70 * 1024);
    infer(
        c,
        w,
        CHAT,
        json!({"model": "test/model", "messages": [{"role": "user", "content": huge}]}),
        413,
        "too large",
    )
    .await;
    c.call(
        CHAT,
        post("/chat/completions")
            .bearer_auth(&gw.key)
            .header("content-type", "text/plain")
            .body("hi"),
        415,
        "not JSON",
    )
    .await;
    infer(c, w, CHAT, chat("test/busy"), 429, "rate limited").await;
    infer(c, w, CHAT, chat("test/broken"), 502, "provider failed").await;
    infer(
        c,
        w,
        CHAT,
        chat("test/overloaded"),
        503,
        "provider overloaded",
    )
    .await;
    infer(c, w, CHAT, chat("test/slow"), 408, "provider timed out").await;

    // Anthropic's Messages and OpenAI's Responses, against their shapes in the document.
    for op in [MESSAGES, RESPONSES] {
        infer(c, w, op, body(op, "test/model", false), 200, "served").await;
        infer(c, w, op, body(op, "test/stream", true), 200, "stream").await;
        let cut = infer(c, w, op, body(op, "test/cut", true), 200, "cut mid-stream").await;
        c.expect(
            cut.events
                .last()
                .is_some_and(|e| e["event"] == "error" || e["data"]["type"] == "response.failed"),
            format!(
                "{} ends a cut stream with its error event: {:?}",
                op.1,
                cut.events.last()
            ),
        );
        infer(c, w, op, json!({"model": "test/model"}), 400, "no input").await;
        c.call(
            op,
            post(op.1).json(&body(op, "test/model", false)),
            401,
            "no key",
        )
        .await;
        c.call(
            op,
            post(op.1)
                .bearer_auth(&w.admin)
                .json(&body(op, "test/model", false)),
            403,
            "a management key",
        )
        .await;
        let mut unroutable = body(op, "test/model", false);
        unroutable["provider"] = json!({"only": ["nobody"]});
        infer(c, w, op, unroutable, 404, "no endpoint allowed").await;
        infer(c, w, op, body(op, "test/busy", false), 429, "rate limited").await;
        infer(
            c,
            w,
            op,
            body(op, "test/overloaded", false),
            503,
            "overloaded",
        )
        .await;
    }
    c.call(
        RESPONSES,
        post("/responses")
            .bearer_auth(&w.broke)
            .json(&body(RESPONSES, "test/model", false)),
        402,
        "a limit that covers nothing",
    )
    .await;
    infer(
        c,
        w,
        RESPONSES,
        body(RESPONSES, "test/broken", false),
        502,
        "provider failed",
    )
    .await;
    infer(
        c,
        w,
        RESPONSES,
        body(RESPONSES, "test/slow", false),
        408,
        "timed out",
    )
    .await;

    // Embeddings.
    infer(
        c,
        w,
        EMBEDDINGS,
        body(EMBEDDINGS, "test/embed", false),
        200,
        "served",
    )
    .await;
    infer(
        c,
        w,
        EMBEDDINGS,
        json!({"model": "test/embed"}),
        400,
        "no input",
    )
    .await;
    c.call(
        EMBEDDINGS,
        post("/embeddings").json(&body(EMBEDDINGS, "test/embed", false)),
        401,
        "no key",
    )
    .await;
    c.call(
        EMBEDDINGS,
        post("/embeddings")
            .bearer_auth(&w.broke)
            .json(&body(EMBEDDINGS, "test/embed", false)),
        402,
        "a limit that covers nothing",
    )
    .await;
    infer(
        c,
        w,
        EMBEDDINGS,
        json!({"model": "test/embed", "input": "hi", "provider": {"only": ["nobody"]}}),
        404,
        "no endpoint allowed",
    )
    .await;

    // The generations the requests left.
    gw.settled().await;
    let get = |path: String| gw.http.get(gw.url(&format!("/api/v1{path}")));
    for (answer, what) in [
        (&served, "served"),
        (&streamed, "streamed"),
        (&fallback, "fallback"),
    ] {
        let Some(id) = answer.generation_id.clone() else {
            c.expect(false, format!("{what}: no X-Generation-Id"));
            continue;
        };
        let g = c
            .call(
                GENERATION,
                get(format!("/generation?id={id}")).bearer_auth(&gw.key),
                200,
                what,
            )
            .await;
        let d = &g.body["data"];
        c.expect(
            d["api_type"] == "completions" && d["user_agent"] == "contract-test/1.0",
            format!("{what}: api_type and user_agent recorded: {d}"),
        );
        if what == "fallback" {
            c.expect(
                d["provider_responses"]
                    .as_array()
                    .is_some_and(|r| r.len() == 2),
                format!("both attempts in provider_responses: {d}"),
            );
        }
        let content = c
            .call(
                CONTENT,
                get(format!("/generation/content?id={id}")).bearer_auth(&gw.key),
                200,
                what,
            )
            .await;
        c.expect(
            content.body["data"]["output"]["completion"].is_string(),
            format!("{what}: the logged completion: {}", content.body),
        );
    }
    c.call(
        GENERATION,
        get("/generation?id=gen-nothing".into()).bearer_auth(&gw.key),
        404,
        "unknown",
    )
    .await;
    c.call(
        GENERATION,
        get("/generation".into()).bearer_auth(&gw.key),
        400,
        "no id",
    )
    .await;
    c.call(
        GENERATION,
        get("/generation?id=gen-nothing".into()),
        401,
        "no key",
    )
    .await;
    c.call(
        CONTENT,
        get("/generation/content?id=gen-nothing".into()).bearer_auth(&gw.key),
        404,
        "unknown",
    )
    .await;
    c.call(
        CONTENT,
        get("/generation/content?id=gen-nothing".into()),
        401,
        "no key",
    )
    .await;
}
