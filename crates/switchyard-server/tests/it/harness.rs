//! Boots the real gateway on 127.0.0.1:0 with a temporary SQLite store.

use std::collections::HashMap;
use std::sync::atomic::AtomicI64;
use std::sync::Arc;

use switchyard_core::catalog::Catalog;
use switchyard_core::money::Money;
use switchyard_server::config::Config;
use switchyard_server::keys::{create as create_key, KeySpec};
use switchyard_server::state::{AppState, Clock, SharedState};
use switchyard_store::Store;
use tokio::sync::oneshot;

pub const ACCOUNT: &str = "acct";
/// The audit key every test gateway signs its audit anchors with.
pub const AUDIT_KEY: &str = "test-audit-key";

/// A stopped gateway's database, kept until this is dropped.
pub struct Stopped {
    pub store_url: String,
    _dir: tempfile::TempDir,
}

pub struct TestGateway {
    pub base: String,
    pub state: SharedState,
    pub key: String,
    pub http: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    _dir: tempfile::TempDir,
}

/// A catalogue with one model served by the given (slug, base_url, prompt price, completion
/// price) OpenAI-compatible providers, in that order.
pub fn catalog(providers: &[(&str, &str, &str, &str)]) -> String {
    let with_kind: Vec<(&str, &str, &str, &str, &str)> = providers
        .iter()
        .map(|(slug, url, p, c)| (*slug, "openai", *url, *p, *c))
        .collect();
    catalog_of_kinds(&with_kind)
}

/// Like [`catalog`], with each provider's kind: (slug, kind, base_url, prompt, completion).
pub fn catalog_of_kinds(providers: &[(&str, &str, &str, &str, &str)]) -> String {
    let mut text = String::new();
    for (slug, kind, url, _, _) in providers {
        text.push_str(&format!(
            "[[providers]]\nslug = \"{slug}\"\nname = \"{}\"\nkind = \"{kind}\"\nbase_url = \"{url}\"\napi_key_env = \"{}_KEY\"\ndata_policy = {{ training = false, retains_prompts = false, zdr = true }}\n\n",
            slug.to_uppercase(),
            slug.to_uppercase()
        ));
    }
    text.push_str("[[models]]\nid = \"test/model\"\nname = \"Test: Model\"\ncontext_length = 8000\ninput_modalities = [\"text\", \"image\"]\n\n");
    for (slug, _, _, prompt, completion) in providers {
        text.push_str(&format!(
            "[[models.endpoints]]\nprovider = \"{slug}\"\nupstream_model = \"{slug}-model\"\nmax_completion_tokens = 1000\npricing = {{ prompt = \"{prompt}\", completion = \"{completion}\" }}\nsupported_parameters = [\"temperature\", \"top_p\", \"max_tokens\", \"tools\", \"tool_choice\", \"stop\", \"seed\", \"response_format\", \"reasoning\"]\n\n"
        ));
    }
    text
}

pub struct Builder {
    catalog: String,
    credits: &'static str,
    config: Config,
}

impl TestGateway {
    pub fn builder(catalog: String) -> Builder {
        let mut config = Config::default();
        config.server.upstream_timeout_secs = 2.0;
        config.server.stream_idle_timeout_secs = 2.0;
        config.server.keepalive_secs = 30.0;
        config.server.body_limit_bytes = 64 * 1024;
        config.server.default_account = ACCOUNT.to_owned();
        Builder {
            catalog,
            credits: "10",
            config,
        }
    }

    /// The gateway's database, for a second instance on it.
    pub fn store_url(&self) -> String {
        format!("sqlite://{}", self._dir.path().join("gw.db").display())
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn post(&self, path: &str, body: serde_json::Value) -> reqwest::RequestBuilder {
        self.http
            .post(self.url(path))
            .bearer_auth(&self.key)
            .json(&body)
    }

    /// A new management key named `admin` on the test account.
    pub async fn admin_key(&self) -> String {
        self.new_key(KeySpec {
            name: "admin".into(),
            management: true,
            ..KeySpec::default()
        })
        .await
    }

    pub async fn new_key(&self, spec: KeySpec) -> String {
        create_key(&self.state.store, ACCOUNT, &spec, self.state.now_ms())
            .await
            .expect("key")
            .0
    }

    /// Moves the gateway's clock forward.
    pub fn advance_clock(&self, ms: i64) {
        match &self.state.clock {
            Clock::Manual(t) => {
                t.fetch_add(ms, std::sync::atomic::Ordering::SeqCst);
            }
            Clock::System => panic!("test gateways use a manual clock"),
        }
    }

    /// Stops the server and waits for background settlement.
    pub async fn stop(mut self) -> Stopped {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.expect("join").expect("serve");
        }
        Stopped {
            store_url: format!("sqlite://{}", self._dir.path().join("gw.db").display()),
            _dir: std::mem::replace(&mut self._dir, tempfile::tempdir().expect("tempdir")),
        }
    }

    /// Waits for background settlement without stopping.
    pub async fn settled(&self) {
        // Settlement tasks are tracked: close the tracker, wait for it to drain, reopen it.
        self.state.tasks.close();
        self.state.tasks.wait().await;
        self.state.tasks.reopen();
        // The minute's aggregated authentication failures are written as at shutdown.
        self.state.auth_failures.close_all(&self.state.recorder);
        self.state.recorder.flush().await;
    }

    /// A management or API call with `key`: `body` is sent as JSON unless it is null. The
    /// status and the JSON answer (null when it is not JSON).
    pub async fn call(
        &self,
        key: &str,
        method: &str,
        path: &str,
        body: serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let mut r = self
            .http
            .request(method.parse().expect("method"), self.url(path))
            .bearer_auth(key);
        if !body.is_null() {
            r = r.json(&body);
        }
        let r = r.send().await.expect("send");
        (
            r.status().as_u16(),
            r.json().await.unwrap_or(serde_json::Value::Null),
        )
    }

    /// Every audit record's body, in chain order, once background settlement is written.
    pub async fn audit_records(&self) -> Vec<serde_json::Value> {
        self.settled().await;
        self.state
            .store
            .audit_page(0, 100_000)
            .await
            .expect("audit page")
            .into_iter()
            .map(|r| serde_json::from_str(&r.body).expect("audit body"))
            .collect()
    }
}

impl Builder {
    pub fn credits(mut self, usd: &'static str) -> Self {
        self.credits = usd;
        self
    }

    pub fn config(mut self, f: impl FnOnce(&mut Config)) -> Self {
        f(&mut self.config);
        self
    }

    pub async fn build(self) -> TestGateway {
        let (state, key, dir) = self.state().await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let (tx, rx) = oneshot::channel::<()>();
        let server = tokio::spawn(switchyard_server::serve(
            listener,
            Arc::clone(&state),
            async move {
                let _ = rx.await;
            },
        ));
        TestGateway {
            base,
            state,
            key,
            http: reqwest::Client::new(),
            shutdown: Some(tx),
            server: Some(server),
            _dir: dir,
        }
    }

    /// The gateway's state, its database and a standard key, without a server: for driving the
    /// pipeline's stages directly.
    pub async fn state(self) -> (Arc<AppState>, String, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("gw.db").display());
        let store = Store::connect(&url).await.expect("store");
        let now = Clock::System.now_ms();
        store
            .ensure_account(ACCOUNT, "Test", now)
            .await
            .expect("account");
        store
            .add_credits(ACCOUNT, Money::parse_usd(self.credits).expect("credits"))
            .await
            .expect("credits");
        let catalog = Catalog::from_toml("test", &self.catalog).expect("catalog");
        let secrets: HashMap<String, String> = catalog
            .providers()
            .iter()
            .filter_map(|p| p.api_key_env.clone())
            .map(|env| (env.clone(), format!("secret-{env}")))
            .chain([
                (self.config.audit.key_env.clone(), AUDIT_KEY.to_owned()),
                (
                    self.config.prompt_logging.key_env.clone(),
                    "test-content-key".to_owned(),
                ),
            ])
            .collect();
        let clock = Clock::Manual(Arc::new(AtomicI64::new(now)));
        let state =
            Arc::new(AppState::new(self.config, catalog, store, secrets, clock).expect("state"));
        let key = create_key(
            &state.store,
            ACCOUNT,
            &KeySpec {
                name: "test".into(),
                ..KeySpec::default()
            },
            now,
        )
        .await
        .expect("key")
        .0;
        (state, key, dir)
    }
}
