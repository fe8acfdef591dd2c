//! The contract test: every operation of OpenRouter's OpenAPI document that the gateway
//! implements is called against the real server (success and each error status it gives), and
//! every answer is validated with a JSON Schema validator against the response schema the
//! document gives for that operation, status and content type (each `data:` event of a stream
//! against the stream's event schema). The operations of the document the gateway does not
//! implement are listed, and `docs/openrouter-compatibility.md` is checked against both, so the
//! gap stays visible and the table cannot drift.

mod inference;
mod management;
mod presets;
mod read;
mod schema;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::{json, Value};
use switchyard_core::money::Money;
use switchyard_server::keys::KeySpec;

use crate::harness::{TestGateway, ACCOUNT};
use crate::mock::{completion, stream_events, MockUpstream, Reply};
use schema::Contract;

/// An operation of the document: its method and path template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Op(pub &'static str, pub &'static str);

/// Statuses the gateway gives that the document does not list for the operation, each with
/// why; their answers are validated against the contract's generic error envelope.
const UNDOCUMENTED: &[(Op, u16, &str)] = &[
    (
        Op("POST", "/chat/completions"),
        415,
        "a body that is not JSON is refused as such",
    ),
    (
        Op("GET", "/generation"),
        400,
        "the id query parameter is missing",
    ),
    (
        Op("GET", "/keys"),
        403,
        "a standard key calls the management API",
    ),
];

/// An answer as the checker saw it.
pub struct Answer {
    /// The JSON body (`null` for a stream).
    pub body: Value,
    /// The data of each event of a stream, with its event name when it has one.
    pub events: Vec<Value>,
    /// `X-Generation-Id`.
    pub generation_id: Option<String>,
}

/// Calls operations, validates their answers and remembers what was covered.
pub struct Checker {
    contract: &'static Contract,
    /// Statuses seen per operation.
    seen: BTreeMap<Op, BTreeSet<u16>>,
    /// Undocumented statuses seen.
    undocumented: BTreeSet<(Op, u16)>,
    failures: Vec<String>,
}

/// The events of an SSE body: each `data:` payload but `[DONE]`, with the `event:` name
/// before it when there is one; comments (keep-alives) are skipped.
fn sse_events(text: &str) -> Result<Vec<Value>, String> {
    let mut events = Vec::new();
    for frame in text.split("\n\n") {
        let mut name = None;
        let mut data = String::new();
        for line in frame.lines() {
            if let Some(v) = line.strip_prefix("event:") {
                name = Some(v.trim().to_owned());
            } else if let Some(v) = line.strip_prefix("data:") {
                data.push_str(v.trim_start());
            }
        }
        if data.is_empty() || data == "[DONE]" {
            continue;
        }
        let parsed: Value =
            serde_json::from_str(&data).map_err(|e| format!("event {data:?}: {e}"))?;
        events.push(match name {
            Some(name) => json!({"event": name, "data": parsed}),
            None => json!({ "data": parsed }),
        });
    }
    Ok(events)
}

impl Checker {
    fn new() -> Checker {
        Checker {
            contract: Contract::get(),
            seen: BTreeMap::new(),
            undocumented: BTreeSet::new(),
            failures: Vec::new(),
        }
    }

    /// Sends a request for `op`, expects `expected`, validates the answer and returns it.
    pub async fn call(
        &mut self,
        op: Op,
        request: reqwest::RequestBuilder,
        expected: u16,
        what: &str,
    ) -> Answer {
        let response = request.send().await.expect("send");
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_owned();
        let generation_id = response
            .headers()
            .get("x-generation-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let text = response.text().await.expect("body");
        let at = format!("{} {} ({what})", op.0, op.1);
        if status != expected {
            self.failures.push(format!(
                "{at}: status {status}, expected {expected}: {}",
                text.chars().take(400).collect::<String>()
            ));
        }
        self.seen.entry(op).or_default().insert(status);
        let (body, events) = if content_type == "text/event-stream" {
            match sse_events(&text) {
                Ok(events) => (Value::Null, events),
                Err(e) => {
                    self.failures.push(format!("{at}: {e}"));
                    (Value::Null, Vec::new())
                }
            }
        } else {
            match serde_json::from_str(&text) {
                Ok(body) => (body, Vec::new()),
                Err(e) => {
                    self.failures.push(format!(
                        "{at}: {content_type} body is not JSON ({e}): {}",
                        text.chars().take(200).collect::<String>()
                    ));
                    (Value::Null, Vec::new())
                }
            }
        };
        let instances: Vec<&Value> = if events.is_empty() {
            vec![&body]
        } else {
            events.iter().collect()
        };
        let documented = self.contract.statuses(op.0, op.1).contains(&status);
        for instance in instances {
            let errors = if documented {
                self.contract
                    .errors(op.0, op.1, status, &content_type, instance)
                    .unwrap_or_else(|e| vec![e])
            } else if UNDOCUMENTED
                .iter()
                .any(|(o, s, _)| *o == op && *s == status)
            {
                self.undocumented.insert((op, status));
                self.contract
                    .component_errors("BadRequestResponse", instance)
            } else {
                vec![format!(
                    "status {status} is not documented for this operation"
                )]
            };
            for e in errors {
                self.failures
                    .push(format!("{at} {status}: {e}\n  in {instance}"));
            }
        }
        Answer {
            body,
            events,
            generation_id,
        }
    }

    /// Validates a value against a component schema (what an operation's answer carries
    /// inside a free-form member, such as an error's metadata).
    pub fn component(&mut self, name: &str, instance: &Value, what: &str) {
        for e in self.contract.component_errors(name, instance) {
            self.failures.push(format!("{name} ({what}): {e}"));
        }
    }

    /// Records a failed expectation.
    pub fn expect(&mut self, ok: bool, what: impl Into<String>) {
        if !ok {
            self.failures.push(what.into());
        }
    }
}

/// The gateway every section calls: one model per upstream behaviour, each on its own mock.
pub struct World {
    pub gw: TestGateway,
    /// A management key of the account.
    pub admin: String,
    /// A standard key that can cover nothing (402).
    pub broke: String,
    _mocks: Vec<MockUpstream>,
}

/// Models of the contract test's catalogue and what their upstream does.
const MODELS: &[(&str, &str, &str)] = &[
    ("test/model", "good", "OpenAI"),
    ("test/stream", "streamer", "Groq"),
    ("test/broken", "broken", "Local vLLM"),
    ("test/busy", "busy", "Fireworks"),
    ("test/overloaded", "overloaded", "DeepInfra"),
    ("test/slow", "slow", "Mistral"),
    ("test/cut", "cutter", "Together"),
];

async fn world() -> World {
    // A whole stream, or its first two events and then the connection cut.
    let sse = |cut: bool| Reply::Sse {
        events: stream_events(&["Hel", "lo"], (3, 2))
            .into_iter()
            .take(if cut { 2 } else { usize::MAX })
            .collect(),
        delay: Duration::from_millis(1),
        cut,
    };
    let replies = [
        Reply::Json(200, completion("Hello", 3, 2)),
        sse(false),
        Reply::Json(500, json!({"error": {"message": "boom"}})),
        Reply::Json(429, json!({"error": {"message": "slow down"}})),
        Reply::Json(529, json!({"error": {"message": "overloaded"}})),
        Reply::Hang,
        sse(true),
    ];
    let mut mocks = Vec::new();
    let mut text = String::new();
    for ((model, slug, name), reply) in MODELS.iter().zip(replies) {
        let mock = MockUpstream::start(vec![reply]).await;
        text.push_str(&format!(
            "[[providers]]\nslug = \"{slug}\"\nname = \"{name}\"\nkind = \"openai\"\nbase_url = \"{}\"\napi_key_env = \"{}_KEY\"\ndata_policy = {{ training = false, retains_prompts = false, zdr = true }}\n\n",
            mock.url(),
            slug.to_uppercase()
        ));
        let card = if *model == "test/model" {
            "knowledge_cutoff = \"2024-10\"\ncategories = [\"programming\"]\nper_request_limits = { prompt_tokens = 6000, completion_tokens = 1000 }\ndefault_parameters = { temperature = 0.7, top_k = 40 }\nreasoning = { mandatory = false, default_effort = \"medium\", supported_efforts = [\"high\", \"medium\", \"low\"], supports_max_tokens = true }\n"
        } else {
            ""
        };
        // The first model lists its parameters; the others take what their kind forwards.
        let parameters = if *model == "test/model" {
            "supported_parameters = [\"temperature\", \"max_tokens\", \"tools\", \"tool_choice\", \"reasoning\"]\n"
        } else {
            ""
        };
        text.push_str(&format!(
            "[[models]]\nid = \"{model}\"\nname = \"Test: {model}\"\ncreated = 1700000000\ncontext_length = 8000\ninput_modalities = [\"text\", \"image\"]\n{card}\n[[models.endpoints]]\nprovider = \"{slug}\"\nupstream_model = \"{slug}-model\"\nmax_completion_tokens = 1000\npricing = {{ prompt = \"0.000001\", completion = \"0.000002\" }}\n{parameters}\n"
        ));
        mocks.push(mock);
    }
    // A model that falls back: its cheaper endpoint fails, the other serves.
    text.push_str("[[models]]\nid = \"test/fallback\"\nname = \"Test: fallback\"\ncontext_length = 8000\n\n[[models.endpoints]]\nprovider = \"broken\"\nupstream_model = \"b\"\npricing = { prompt = \"0.0000001\", completion = \"0.0000001\" }\n\n[[models.endpoints]]\nprovider = \"good\"\nupstream_model = \"g\"\npricing = { prompt = \"0.000001\", completion = \"0.000002\" }\n\n");
    // An embedding model.
    let embedder = MockUpstream::start(vec![Reply::Json(
        200,
        json!({"object": "list", "model": "e", "data": [{"object": "embedding", "index": 0, "embedding": [0.25, -0.5]}], "usage": {"prompt_tokens": 2, "total_tokens": 2}}),
    )])
    .await;
    text.push_str(&format!(
        "[[providers]]\nslug = \"embedder\"\nname = \"Nebius\"\nkind = \"openai\"\nbase_url = \"{}\"\napi_key_env = \"EMBEDDER_KEY\"\ndata_policy = {{ training = false, retains_prompts = false, zdr = true }}\n\n[[models]]\nid = \"test/embed\"\nname = \"Test: embed\"\nkind = \"embedding\"\ndimensions = 2\ncontext_length = 8000\n\n[[models.endpoints]]\nprovider = \"embedder\"\nupstream_model = \"e\"\npricing = {{ prompt = \"0.0000001\" }}\n",
        embedder.url()
    ));
    mocks.push(embedder);
    let gw = TestGateway::builder(text)
        .config(|c| c.server.upstream_timeout_secs = 0.5)
        .build()
        .await;
    let admin = gw.admin_key().await;
    let broke = gw
        .new_key(KeySpec {
            name: "broke".into(),
            limit: Some(Money::from_picos(1)),
            ..KeySpec::default()
        })
        .await;
    gw.state
        .store
        .set_account_settings(ACCOUNT, &json!({"prompt_logging": true}))
        .await
        .expect("settings");
    gw.state.settings.invalidate(ACCOUNT).await;
    World {
        gw,
        admin,
        broke,
        _mocks: mocks,
    }
}

/// The rows of the operations table in `docs/openrouter-compatibility.md`: (method, path) to
/// the status the table gives (`implemented`, `refused`, `not applicable`).
fn compatibility_table() -> BTreeMap<(String, String), String> {
    let mut p = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    p.extend(["..", "..", "docs", "openrouter-compatibility.md"]);
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let mut rows = BTreeMap::new();
    for line in text.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // | `GET` | `/models` | implemented | ... |
        if cells.len() < 5 || !cells[1].starts_with('`') {
            continue;
        }
        let method = cells[1].trim_matches('`').to_owned();
        let path = cells[2].trim_matches('`').to_owned();
        let previous = rows.insert((method.clone(), path.clone()), cells[3].to_owned());
        assert!(previous.is_none(), "{method} {path} is listed twice");
    }
    rows
}

#[tokio::test]
async fn every_implemented_operation_answers_as_the_contract_says() {
    let world = world().await;
    let mut checker = Checker::new();
    read::check(&mut checker, &world).await;
    inference::check(&mut checker, &world).await;
    management::check(&mut checker, &world).await;
    presets::check(&mut checker, &world).await;

    let implemented: BTreeSet<(String, String)> = checker
        .seen
        .iter()
        .filter(|(_, statuses)| statuses.iter().any(|s| (200..300).contains(s)))
        .map(|(op, _)| (op.0.to_owned(), op.1.to_owned()))
        .collect();
    // Every operation of the document the gateway does not implement answers the contract's 404.
    let operations = checker.contract.operations();
    let mut gaps = Vec::new();
    for (method, path) in &operations {
        if implemented.contains(&(method.clone(), path.clone())) {
            continue;
        }
        gaps.push(format!("{method} {path}"));
        let concrete = path.replace(['{', '}'], "");
        let request = world
            .gw
            .http
            .request(
                method.parse().expect("method"),
                world.gw.url(&format!("/api/v1{concrete}")),
            )
            .bearer_auth(&world.gw.key)
            .json(&json!({}));
        let r = request.send().await.expect("send");
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        checker.expect(
            status == 404 || status == 405,
            format!("{method} {path} is not implemented but answers {status}: {body}"),
        );
        checker.component("NotFoundResponse", &body, &format!("{method} {path}"));
    }
    eprintln!(
        "{} operations of the contract are implemented; {} are not:\n  {}",
        implemented.len(),
        gaps.len(),
        gaps.join("\n  ")
    );
    for (op, status, why) in UNDOCUMENTED {
        checker.expect(
            checker.undocumented.contains(&(*op, *status)),
            format!(
                "{} {} {status} ({why}) is listed as undocumented but was not seen",
                op.0, op.1
            ),
        );
    }

    // The compatibility table lists every operation of the document once, implemented exactly
    // when the gateway serves it.
    let table = compatibility_table();
    for (method, path) in &operations {
        let listed = table.get(&(method.clone(), path.clone()));
        let served = implemented.contains(&(method.clone(), path.clone()));
        match listed.map(String::as_str) {
            None => checker.expect(
                false,
                format!("the compatibility table lacks {method} {path}"),
            ),
            Some("implemented") => checker.expect(
                served,
                format!("the compatibility table says {method} {path} is implemented; it is not"),
            ),
            Some("refused" | "not applicable") => checker.expect(
                !served,
                format!("the compatibility table says {method} {path} is not implemented; it is"),
            ),
            Some(other) => checker.expect(
                false,
                format!("{method} {path}: {other:?} is not implemented, refused or not applicable"),
            ),
        }
    }
    for (method, path) in table.keys() {
        checker.expect(
            operations.contains(&(method.clone(), path.clone())),
            format!(
                "the compatibility table lists {method} {path}, which the document does not have"
            ),
        );
    }
    assert!(
        checker.failures.is_empty(),
        "{} answers differ from the contract:\n{}",
        checker.failures.len(),
        checker.failures.join("\n")
    );
}

#[test]
fn the_validator_catches_an_answer_off_the_contract() {
    let contract = Contract::get();
    let good = json!({"data": {"count": 3}});
    assert!(contract
        .errors("GET", "/models/count", 200, "application/json", &good)
        .expect("documented")
        .is_empty());
    for bad in [json!({"data": {"count": "3"}}), json!({"count": 3})] {
        assert!(!contract
            .errors("GET", "/models/count", 200, "application/json", &bad)
            .expect("documented")
            .is_empty());
    }
    // A `$ref` is followed: a model whose tokenizer is outside the family enum is refused.
    let model = |tokenizer: &str| {
        json!({"id": "a/b", "canonical_slug": "a/b", "name": "B", "created": 1, "context_length": 1,
        "pricing": {"prompt": "0", "completion": "0"}, "top_provider": {"is_moderated": false},
        "per_request_limits": null, "supported_parameters": [], "default_parameters": null,
        "supported_voices": null, "links": {"details": "/x"},
        "architecture": {"modality": "text->text", "input_modalities": ["text"], "output_modalities": ["text"], "tokenizer": tokenizer}})
    };
    assert!(contract.component_errors("Model", &model("GPT")).is_empty());
    assert!(!contract
        .component_errors("Model", &model("openai"))
        .is_empty());
    // Only a provider's display name may be outside its enum.
    let endpoint = |name: &str| json!({"provider_name": name, "status": 200});
    assert!(contract
        .component_errors("ProviderResponse", &endpoint("My Own Server"))
        .is_empty());
    assert!(!contract
        .component_errors(
            "ProviderResponse",
            &json!({"provider_name": "OpenAI", "status": "x"})
        )
        .is_empty());
    // Undocumented statuses and content types are reported, not passed.
    assert!(contract
        .errors("GET", "/models/count", 418, "application/json", &good)
        .is_err());
    assert!(contract
        .errors("GET", "/models/count", 200, "text/html", &good)
        .is_err());
}
