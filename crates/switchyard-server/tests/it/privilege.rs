//! Least privilege: a standard key reads only its own generations; `/metrics` needs a
//! management key unless it is served on its own address.

use serde_json::{json, Value};
use switchyard_server::keys::KeySpec;

use crate::harness::{catalog, TestGateway, ACCOUNT};
use crate::mock::{completion, MockUpstream, Reply};

async fn get(gw: &TestGateway, key: Option<&str>, url: &str) -> (u16, String) {
    let mut request = gw.http.get(url);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let r = request.send().await.expect("send");
    (r.status().as_u16(), r.text().await.expect("body"))
}

async fn gateway(
    config: impl FnOnce(&mut switchyard_server::config::Config),
) -> (MockUpstream, TestGateway) {
    let mock = MockUpstream::start(vec![Reply::Json(200, completion("ok", 10, 4))]).await;
    let gw = TestGateway::builder(catalog(&[("alpha", &mock.url(), "0.000001", "0.000002")]))
        .config(config)
        .build()
        .await;
    (mock, gw)
}

async fn key(gw: &TestGateway, name: &str, management: bool) -> String {
    gw.new_key(KeySpec {
        name: name.into(),
        management,
        ..KeySpec::default()
    })
    .await
}

#[tokio::test]
async fn a_standard_key_reads_only_its_own_generations() {
    let (_mock, gw) = gateway(|_| {}).await;
    gw.state
        .store
        .set_account_settings(ACCOUNT, &json!({"prompt_logging": true}))
        .await
        .expect("settings");
    let r = gw
        .post(
            "/api/v1/chat/completions",
            json!({"model": "test/model", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    let id = r.headers()["x-generation-id"]
        .to_str()
        .expect("id")
        .to_owned();
    r.text().await.expect("body");
    gw.settled().await;

    let sibling = key(&gw, "sibling", false).await;
    let admin = key(&gw, "admin", true).await;
    for path in ["/api/v1/generation", "/api/v1/generation/content"] {
        let url = gw.url(&format!("{path}?id={id}"));
        let cases = [(&gw.key, 200), (&sibling, 404), (&admin, 200)];
        for (key, want) in cases {
            let (status, body) = get(&gw, Some(key), &url).await;
            assert_eq!(status, want, "{path} with {key}: {body}");
            if want == 200 {
                let body: Value = serde_json::from_str(&body).expect("json");
                assert_eq!(body["data"]["id"], id.as_str());
            }
        }
    }
}

#[tokio::test]
async fn metrics_need_a_management_key_on_the_main_address() {
    let (_mock, gw) = gateway(|_| {}).await;
    let url = gw.url("/metrics");
    let standard = gw.key.clone();
    let admin = key(&gw, "admin", true).await;
    let cases = [
        (None, 401),
        (Some(standard.as_str()), 403),
        (Some(admin.as_str()), 200),
    ];
    for (key, want) in cases {
        let (status, body) = get(&gw, key, &url).await;
        assert_eq!(status, want, "{key:?}: {body}");
    }
    assert!(gw.state.metrics_address().is_none());
}

#[tokio::test]
async fn metrics_address_serves_metrics_there_without_auth_and_not_on_the_main_port() {
    let (_mock, gw) = gateway(|c| c.server.metrics_address = Some("127.0.0.1:0".to_owned())).await;
    let admin = key(&gw, "admin", true).await;
    let (status, body) = get(&gw, Some(&admin), &gw.url("/metrics")).await;
    assert_eq!(status, 404, "not on the main address: {body}");
    // The listener is bound when serving starts.
    let mut address = gw.state.metrics_address();
    for _ in 0..100 {
        if address.is_some() {
            break;
        }
        tokio::task::yield_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        address = gw.state.metrics_address();
    }
    let address = address.expect("metrics listener bound");
    let (status, body) = get(&gw, None, &format!("http://{address}/metrics")).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("switchyard_ledger_open_holds"), "{body}");
    let (status, _) = get(&gw, None, &format!("http://{address}/api/v1/models")).await;
    assert_eq!(status, 404, "the metrics address serves nothing else");
}
