//! The inference attempts' HTTP client: connection failures and timeouts fall back, redirects
//! are not followed, connections are reused, TLS is verified against the roots configured.

use std::net::{IpAddr, Ipv4Addr};

use axum::http::Version;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, SanType};
use serde_json::{json, Value};

use crate::harness::{catalog, TestGateway};
use crate::mock::{completion, MockUpstream, Reply};

/// A chat request trying the cheaper provider first.
fn hi() -> Value {
    json!({"model": "test/model", "messages": [{"role": "user", "content": "hi"}],
           "provider": {"sort": "price"}})
}

/// An address nothing listens on: a port bound, then let go.
fn refused_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    format!("http://{addr}/v1")
}

fn overloaded() -> Reply {
    Reply::Json(503, json!({"error": {"message": "overloaded"}}))
}

/// Sends `hi()`; expects every provider to fail and returns the attempts' errors.
async fn previous_errors(gw: &TestGateway) -> Vec<Value> {
    let response = gw
        .post("/api/v1/chat/completions", hi())
        .send()
        .await
        .expect("send");
    assert!(!response.status().is_success(), "{}", response.status());
    let err: Value = response.json().await.expect("json");
    err["error"]["metadata"]["previous_errors"]
        .as_array()
        .cloned()
        .unwrap_or_else(|| panic!("no previous errors in {err}"))
}

#[tokio::test]
async fn a_refused_connection_is_a_connection_failure_and_the_next_provider_is_tried() {
    let beta = MockUpstream::start(vec![overloaded()]).await;
    let gw = TestGateway::builder(catalog(&[
        ("alpha", &refused_url(), "0.000001", "0.000001"),
        ("beta", &beta.url(), "0.000002", "0.000002"),
    ]))
    .build()
    .await;
    let previous = previous_errors(&gw).await;
    assert_eq!(previous.len(), 2, "{previous:?}");
    assert_eq!(previous[0]["provider"], "alpha");
    assert_eq!(
        previous[0]["message"],
        "Could not reach ALPHA: connection failed"
    );
    assert_eq!(previous[1]["provider"], "beta");
    assert_eq!(beta.requests().len(), 1);
}

#[tokio::test]
async fn an_upstream_silent_before_its_headers_times_out_and_the_next_provider_answers() {
    let alpha = MockUpstream::start(vec![Reply::Hang]).await;
    let beta = MockUpstream::start(vec![Reply::Json(200, completion("from beta", 3, 2))]).await;
    let gw = TestGateway::builder(catalog(&[
        ("alpha", &alpha.url(), "0.000001", "0.000001"),
        ("beta", &beta.url(), "0.000002", "0.000002"),
    ]))
    .config(|c| c.server.upstream_timeout_secs = 0.3)
    .build()
    .await;
    let response = gw
        .post("/api/v1/chat/completions", hi())
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["provider"], "BETA");
    assert_eq!(body["choices"][0]["message"]["content"], "from beta");
    assert_eq!(alpha.requests().len(), 1, "alpha was tried first");

    // Both silent: the timeout is what the client is told, per attempt.
    let beta_hangs = MockUpstream::start(vec![Reply::Hang]).await;
    let gw = TestGateway::builder(catalog(&[
        ("alpha", &alpha.url(), "0.000001", "0.000001"),
        ("beta", &beta_hangs.url(), "0.000002", "0.000002"),
    ]))
    .config(|c| c.server.upstream_timeout_secs = 0.3)
    .build()
    .await;
    let previous = previous_errors(&gw).await;
    assert_eq!(previous.len(), 2, "{previous:?}");
    for (attempt, name) in previous.iter().zip(["ALPHA", "BETA"]) {
        assert_eq!(
            attempt["message"],
            format!("{name} did not answer within 0.3s")
        );
        assert_eq!(attempt["code"], 408, "{attempt}");
    }
}

#[tokio::test]
async fn a_redirect_is_not_followed_and_counts_as_the_providers_failure() {
    let trap = MockUpstream::start(vec![Reply::Json(200, completion("trap", 1, 1))]).await;
    let alpha = MockUpstream::start(vec![Reply::Redirect(
        302,
        format!("{}/chat/completions", trap.url()),
    )])
    .await;
    let beta = MockUpstream::start(vec![Reply::Json(200, completion("from beta", 3, 2))]).await;
    let gw = TestGateway::builder(catalog(&[
        ("alpha", &alpha.url(), "0.000001", "0.000001"),
        ("beta", &beta.url(), "0.000002", "0.000002"),
    ]))
    .build()
    .await;
    let response = gw
        .post("/api/v1/chat/completions", hi())
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["provider"], "BETA");
    assert_eq!(alpha.requests().len(), 1);
    assert!(trap.requests().is_empty(), "the redirect was followed");

    // Alone, the redirect is reported as the provider's answer.
    let gw = TestGateway::builder(catalog(&[("alpha", &alpha.url(), "0.000001", "0.000001")]))
        .build()
        .await;
    let response = gw
        .post("/api/v1/chat/completions", hi())
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 502);
    assert!(trap.requests().is_empty(), "the redirect was followed");
}

#[tokio::test]
async fn sequential_requests_reuse_one_upstream_connection() {
    let mock = MockUpstream::start(vec![Reply::Json(200, completion("ok", 3, 2))]).await;
    let gw = TestGateway::builder(catalog(&[("alpha", &mock.url(), "0.000001", "0.000001")]))
        // One serving worker: one client, one pool.
        .config(|c| c.server.workers = 1)
        .build()
        .await;
    for _ in 0..5 {
        let response = gw
            .post("/api/v1/chat/completions", hi())
            .send()
            .await
            .expect("send");
        assert_eq!(response.status(), 200);
        response.bytes().await.expect("body");
    }
    assert_eq!(mock.requests().len(), 5);
    assert_eq!(
        mock.connections(),
        1,
        "each request opened its own connection"
    );
}

/// A certificate authority and a certificate it signed for 127.0.0.1: (CA PEM, chain PEM, key
/// PEM).
fn authority_and_server() -> (String, String, String) {
    let ca_key = KeyPair::generate().expect("key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "Switchyard test CA");
    let ca = ca.self_signed(&ca_key).expect("CA");
    let key = KeyPair::generate().expect("key");
    let mut server = CertificateParams::new(Vec::<String>::new()).expect("params");
    server.subject_alt_names = vec![SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST))];
    let server = server.signed_by(&key, &ca, &ca_key).expect("certificate");
    (ca.pem(), server.pem(), key.serialize_pem())
}

#[tokio::test]
async fn https_upstreams_are_verified_against_the_configured_authority() {
    let (ca, chain, key) = authority_and_server();
    let mock = MockUpstream::start_tls(
        vec![Reply::Json(200, completion("over tls", 3, 2))],
        &chain,
        &key,
    )
    .await;
    assert!(mock.url().starts_with("https://127.0.0.1:"));
    let dir = tempfile::tempdir().expect("tempdir");
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca).expect("write");
    let gw = TestGateway::builder(catalog(&[("alpha", &mock.url(), "0.000001", "0.000001")]))
        .config(|c| {
            c.server.upstream_ca_file = Some(ca_file.display().to_string());
            c.server.workers = 1;
        })
        .build()
        .await;
    for _ in 0..3 {
        let response = gw
            .post("/api/v1/chat/completions", hi())
            .send()
            .await
            .expect("send");
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["choices"][0]["message"]["content"], "over tls");
    }
    let requests = mock.requests();
    assert_eq!(requests.len(), 3);
    // The provider offered HTTP/2 (ALPN) and the client took it, over one connection.
    assert!(requests.iter().all(|r| r.version == Version::HTTP_2));
    assert_eq!(mock.connections(), 1);
    let sent = &requests[0].headers;
    assert_eq!(sent["authorization"], "Bearer secret-ALPHA_KEY");
    assert_eq!(sent["content-type"], "application/json");
    assert_eq!(sent["accept"], "*/*");
}

#[tokio::test]
async fn a_certificate_from_an_untrusted_authority_is_a_connection_failure() {
    // Signed by an authority the gateway was not told about.
    let (_, chain, key) = authority_and_server();
    let (other_ca, _, _) = authority_and_server();
    let alpha = MockUpstream::start_tls(
        vec![Reply::Json(200, completion("should not be read", 3, 2))],
        &chain,
        &key,
    )
    .await;
    let beta = MockUpstream::start(vec![overloaded()]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, other_ca).expect("write");
    let gw = TestGateway::builder(catalog(&[
        ("alpha", &alpha.url(), "0.000001", "0.000001"),
        ("beta", &beta.url(), "0.000002", "0.000002"),
    ]))
    .config(|c| c.server.upstream_ca_file = Some(ca_file.display().to_string()))
    .build()
    .await;
    let previous = previous_errors(&gw).await;
    assert_eq!(previous.len(), 2, "{previous:?}");
    assert_eq!(
        previous[0]["message"],
        "Could not reach ALPHA: connection failed"
    );
    assert!(
        alpha.requests().is_empty(),
        "a request crossed an untrusted TLS connection"
    );
    assert_eq!(beta.requests().len(), 1, "the next provider was tried");
}
