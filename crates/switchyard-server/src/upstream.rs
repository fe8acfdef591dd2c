//! The HTTP client of inference attempts: hyper-util's pooled client over rustls (HTTP/1.1, or
//! HTTP/2 when the provider offers it through ALPN), one per serving worker.
//!
//! It keeps what the general-purpose client (reqwest, still `AppState::http` for everything
//! that is not an inference attempt) gave the attempts: a connect timeout covering TCP and the
//! TLS handshake, redirects never followed (hyper follows none: a 3xx is an answer the engine
//! reports like any non-2xx), idle pooled connections closed after 90 s, TCP_NODELAY, the
//! web PKI's roots plus the operator's (`[server] upstream_ca_file`), `Accept: */*` when the
//! codec sets none, and failures classified as timeouts or connection failures
//! ([`is_timeout`]). When the environment names an HTTP proxy (`HTTP_PROXY`, `HTTPS_PROXY`,
//! `ALL_PROXY`, either case), attempts go through reqwest instead, which honours those
//! variables and `NO_PROXY` as it always did.
//!
//! Invariant: timeouts of a whole attempt, of a body and of a stream's silence are the
//! engine's own tokio timers; this module bounds only the connection's setup.

use std::error::Error as StdError;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::{Request, Response, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

/// Any transport failure, with its causes.
pub type BoxError = Box<dyn StdError + Send + Sync>;

/// Time allowed to open a connection to a provider: TCP, then TLS.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// An idle pooled connection is closed after this.
pub const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// The connector: TCP (no delay), TLS when the scheme is https, all within [`CONNECT_TIMEOUT`].
type Connector = Timed<HttpsConnector<HttpConnector>>;

/// The client of a serving worker's inference attempts.
#[derive(Clone, Debug)]
pub enum UpstreamClient {
    /// hyper-util's client, straight to the provider (boxed: it is much larger than reqwest's
    /// handle).
    Direct(Box<Client<Connector, Full<Bytes>>>),
    /// reqwest's client, through the proxy the environment names.
    Proxied(reqwest::Client),
}

/// Why the upstream clients could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// `[server] upstream_ca_file` could not be read or holds no certificate.
    #[error("server.upstream_ca_file {path}: {reason}")]
    CaFile {
        /// The file.
        path: String,
        /// What was wrong with it.
        reason: String,
    },
    /// rustls refused the configuration (a certificate it cannot use as a root).
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    /// reqwest's client could not be built.
    #[error("HTTP client: {0}")]
    Http(#[from] reqwest::Error),
}

/// The certificates of a PEM file of extra root authorities.
pub fn read_roots(path: &str) -> Result<Vec<CertificateDer<'static>>, ClientError> {
    let fail = |reason: String| ClientError::CaFile {
        path: path.to_owned(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(Path::new(path))
        .map_err(|e| fail(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| fail(e.to_string()))?;
    if certs.is_empty() {
        return Err(fail("no PEM certificate in the file".to_owned()));
    }
    Ok(certs)
}

/// rustls' client configuration: the web PKI's roots (as reqwest's `rustls-tls` trusted) and
/// `extra_roots`.
pub fn tls_config(
    extra_roots: &[CertificateDer<'static>],
) -> Result<rustls::ClientConfig, ClientError> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    for cert in extra_roots {
        roots.add(cert.clone())?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// Whether the environment (read through `var`) names a proxy reqwest would use.
pub fn proxy_in_env(var: impl Fn(&str) -> Option<String>) -> bool {
    [
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
    ]
    .iter()
    .any(|name| var(name).is_some_and(|v| !v.trim().is_empty()))
}

impl UpstreamClient {
    /// hyper-util's client trusting the web PKI and `extra_roots`.
    pub fn direct(extra_roots: &[CertificateDer<'static>]) -> Result<Self, ClientError> {
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        http.enforce_http(false);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls_config(extra_roots)?)
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .build(Timed {
                inner: https,
                timeout: CONNECT_TIMEOUT,
            });
        Ok(UpstreamClient::Direct(Box::new(client)))
    }

    /// Posts `body` to `uri` with `headers`; the answer's body is unread.
    pub async fn post(
        &self,
        uri: Uri,
        headers: &[(String, String)],
        body: Vec<u8>,
    ) -> Result<Response<UpstreamBody>, BoxError> {
        match self {
            UpstreamClient::Direct(client) => {
                let mut request = Request::post(uri);
                if !headers
                    .iter()
                    .any(|(name, _)| name.eq_ignore_ascii_case("accept"))
                {
                    request = request.header(hyper::header::ACCEPT, "*/*");
                }
                for (name, value) in headers {
                    request = request.header(name.as_str(), value.as_str());
                }
                let request = request.body(Full::new(Bytes::from(body)))?;
                let response = client.request(request).await?;
                Ok(response.map(UpstreamBody::Direct))
            }
            UpstreamClient::Proxied(client) => {
                let mut request = client.post(uri.to_string()).body(body);
                for (name, value) in headers {
                    request = request.header(name, value);
                }
                let response = request.send().await?;
                Ok(Response::from(response).map(UpstreamBody::Proxied))
            }
        }
    }
}

/// An upstream answer's body, from either client.
#[derive(Debug)]
pub enum UpstreamBody {
    /// Read from hyper's connection.
    Direct(Incoming),
    /// Read through reqwest.
    Proxied(reqwest::Body),
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            UpstreamBody::Direct(body) => Pin::new(body)
                .poll_frame(cx)
                .map(|f| f.map(|f| f.map_err(Into::into))),
            UpstreamBody::Proxied(body) => Pin::new(body)
                .poll_frame(cx)
                .map(|f| f.map(|f| f.map_err(Into::into))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            UpstreamBody::Direct(body) => body.is_end_stream(),
            UpstreamBody::Proxied(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            UpstreamBody::Direct(body) => body.size_hint(),
            UpstreamBody::Proxied(body) => body.size_hint(),
        }
    }
}

/// A connection that was not open within its time.
#[derive(Debug, thiserror::Error)]
#[error("connecting timed out")]
pub struct ConnectTimeout;

/// A connector bounded in time.
#[derive(Clone, Debug)]
pub struct Timed<C> {
    inner: C,
    timeout: Duration,
}

impl<C> tower::Service<Uri> for Timed<C>
where
    C: tower::Service<Uri>,
    C::Future: Send + 'static,
    C::Error: Into<BoxError>,
{
    type Response = C::Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<C::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let connecting = self.inner.call(uri);
        let timeout = self.timeout;
        Box::pin(async move {
            match tokio::time::timeout(timeout, connecting).await {
                Ok(connected) => connected.map_err(Into::into),
                Err(_) => Err(Box::new(ConnectTimeout) as BoxError),
            }
        })
    }
}

/// Whether a transport failure (or any of its causes) is a timeout: the connect timeout, a
/// socket's, hyper's or reqwest's. Anything else failed the connection.
pub fn is_timeout(err: &(dyn StdError + 'static)) -> bool {
    let mut cause = Some(err);
    while let Some(e) = cause {
        if e.is::<ConnectTimeout>()
            || e.downcast_ref::<hyper::Error>()
                .is_some_and(hyper::Error::is_timeout)
            || e.downcast_ref::<reqwest::Error>()
                .is_some_and(reqwest::Error::is_timeout)
            || e.downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::TimedOut)
        {
            return true;
        }
        cause = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("wrapped")]
    struct Wrapped(#[source] BoxError);

    #[test]
    fn timeouts_are_found_among_the_causes() {
        let io = |kind| Box::new(std::io::Error::from(kind)) as BoxError;
        let cases: Vec<(BoxError, bool)> = vec![
            (Box::new(ConnectTimeout), true),
            (Box::new(Wrapped(Box::new(ConnectTimeout))), true),
            (io(std::io::ErrorKind::TimedOut), true),
            (Box::new(Wrapped(io(std::io::ErrorKind::TimedOut))), true),
            (io(std::io::ErrorKind::ConnectionRefused), false),
            (
                Box::new(Wrapped(io(std::io::ErrorKind::InvalidData))),
                false,
            ),
        ];
        for (err, timeout) in cases {
            assert_eq!(is_timeout(&*err), timeout, "{err:?}");
        }
    }

    #[test]
    fn a_proxy_is_any_of_reqwests_variables_set_and_not_blank() {
        let cases: &[(&[(&str, &str)], bool)] = &[
            (&[], false),
            (&[("NO_PROXY", "*")], false),
            (&[("HTTPS_PROXY", "")], false),
            (&[("HTTPS_PROXY", "  ")], false),
            (&[("HTTPS_PROXY", "http://proxy:3128")], true),
            (&[("http_proxy", "http://proxy:3128")], true),
            (&[("ALL_PROXY", "socks5://proxy:1080")], true),
            (&[("all_proxy", "http://proxy")], true),
        ];
        for (env, proxied) in cases {
            let var = |name: &str| {
                env.iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| (*v).to_owned())
            };
            assert_eq!(proxy_in_env(var), *proxied, "{env:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_not_open_in_time_is_a_timeout() {
        let never = tower::service_fn(|_: Uri| {
            std::future::pending::<Result<tokio::net::TcpStream, std::io::Error>>()
        });
        let mut timed = Timed {
            inner: never,
            timeout: CONNECT_TIMEOUT,
        };
        let uri: Uri = "http://127.0.0.1:9/".parse().expect("uri");
        let err = tower::Service::call(&mut timed, uri)
            .await
            .expect_err("never connects");
        assert!(is_timeout(&*err), "{err:?}");
    }

    #[tokio::test]
    async fn the_proxied_client_goes_through_the_proxy_and_hands_its_body_on() {
        use http_body_util::BodyExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let proxy = listener.local_addr().expect("addr");
        let seen = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let recorded = Arc::clone(&seen);
        let app = axum::Router::new().fallback(move |uri: Uri| {
            let recorded = Arc::clone(&recorded);
            async move {
                recorded.lock().expect("lock").push(uri.to_string());
                "from the proxy"
            }
        });
        tokio::spawn(async move { axum::serve(listener, app).await });
        let client = reqwest::Client::builder()
            .proxy(reqwest::Proxy::all(format!("http://{proxy}")).expect("proxy"))
            .build()
            .expect("client");
        let upstream = UpstreamClient::Proxied(client);
        let headers = [("content-type".to_owned(), "application/json".to_owned())];
        let uri: Uri = "http://provider.invalid/v1/chat/completions"
            .parse()
            .expect("uri");
        let response = upstream
            .post(uri, &headers, b"{}".to_vec())
            .await
            .expect("post");
        assert_eq!(response.status(), 200);
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        assert_eq!(body, "from the proxy");
        assert_eq!(
            *seen.lock().expect("lock"),
            ["http://provider.invalid/v1/chat/completions"]
        );
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused_naming_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("empty.pem");
        std::fs::write(&path, "not a certificate\n").expect("write");
        let path = path.display().to_string();
        let err = read_roots(&path).expect_err("no certificate");
        assert!(err.to_string().contains(&path), "{err}");
        let missing = dir.path().join("missing.pem").display().to_string();
        let err = read_roots(&missing).expect_err("missing");
        assert!(err.to_string().contains("upstream_ca_file"), "{err}");
    }
}
