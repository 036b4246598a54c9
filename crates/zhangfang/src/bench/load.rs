//! The load generator behind `zhangfang bench`: a number of keep-alive HTTP/1.1 connections
//! over TLS, each sending its next request as soon as the previous answer has been read in
//! full (a closed loop, as wrk and oha drive a server), for a fixed time after a warm-up.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderValue, CONTENT_TYPE, COOKIE, HOST};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// Where the load goes: the server's address, the one certificate it is trusted by, and the
/// session cookie every request carries.
#[derive(Clone)]
pub struct Target {
    addr: SocketAddr,
    connector: TlsConnector,
    host: HeaderValue,
    cookie: Option<HeaderValue>,
}

impl Target {
    /// A target that trusts only `cert_pem` (the scratch server's self-signed certificate).
    pub fn new(addr: SocketAddr, cert_pem: &[u8]) -> anyhow::Result<Target> {
        let mut roots = rustls::RootCertStore::empty();
        let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut &cert_pem[..])
            .collect::<Result<_, _>>()
            .context("the server's certificate")?;
        for cert in certs {
            roots.add(cert).context("the server's certificate")?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("TLS versions")?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Target {
            addr,
            connector: TlsConnector::from(Arc::new(config)),
            host: HeaderValue::from_str(&addr.to_string()).context("host header")?,
            cookie: None,
        })
    }

    /// The same target, with every request carrying `cookie` (`name=value`).
    pub fn with_cookie(&self, cookie: &str) -> anyhow::Result<Target> {
        Ok(Target {
            cookie: Some(HeaderValue::from_str(cookie).context("session cookie")?),
            ..self.clone()
        })
    }

    /// A request to this target; `body` is sent as JSON when given. A path that is not a valid
    /// URI (a cursor the server should never have given) is an error, counted like a failed
    /// answer.
    pub fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<&str>,
    ) -> Result<Request<Full<Bytes>>, String> {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, self.host.clone());
        if let Some(c) = &self.cookie {
            req = req.header(COOKIE, c.clone());
        }
        let body = match body {
            Some(b) => {
                req = req.header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                Full::new(Bytes::copy_from_slice(b.as_bytes()))
            }
            None => Full::new(Bytes::new()),
        };
        req.body(body)
            .map_err(|e| format!("cannot build a request for {path}: {e}"))
    }

    async fn connect(
        &self,
    ) -> anyhow::Result<hyper::client::conn::http1::SendRequest<Full<Bytes>>> {
        let tcp = TcpStream::connect(self.addr)
            .await
            .with_context(|| format!("connect to {}", self.addr))?;
        tcp.set_nodelay(true)?;
        let name = ServerName::from(self.addr.ip());
        let tls = self
            .connector
            .connect(name, tcp)
            .await
            .context("TLS handshake")?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .context("HTTP handshake")?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(sender)
    }
}

/// Builds the `n`-th request of a run (numbered across all connections from 0).
pub type MakeRequest = Arc<dyn Fn(u64) -> Result<Request<Full<Bytes>>, String> + Send + Sync>;

/// How long to drive the server, and with how many connections.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    pub connections: usize,
    pub warmup: Duration,
    pub duration: Duration,
}

/// What a run measured: answers completed inside the measured window and their latencies.
#[derive(Debug)]
pub struct Outcome {
    pub completed: u64,
    /// Answers with another status than the one expected (counted, not timed).
    pub errors: u64,
    pub first_error: Option<String>,
    pub window: Duration,
    latencies: Vec<Duration>,
}

impl Outcome {
    pub fn per_second(&self) -> f64 {
        self.completed as f64 / self.window.as_secs_f64().max(1e-9)
    }

    /// The latency below which the share `p` of the timed answers fell.
    pub fn percentile(&self, p: f64) -> Duration {
        super::percentile(&self.latencies, p)
    }
}

struct Lane {
    completed: u64,
    errors: u64,
    first_error: Option<String>,
    latencies: Vec<Duration>,
}

/// Drives `target` with `shape.connections` connections, each running requests from `make`
/// back to back; answers other than `expect` count as errors. Answers that arrive during the
/// warm-up are not counted, nor those that arrive after the window.
pub async fn drive(
    target: &Target,
    shape: Shape,
    expect: StatusCode,
    make: MakeRequest,
) -> anyhow::Result<Outcome> {
    let mut senders = Vec::with_capacity(shape.connections);
    for _ in 0..shape.connections {
        senders.push(target.connect().await?);
    }
    let counter = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let from = start + shape.warmup;
    let until = from + shape.duration;
    let mut lanes = tokio::task::JoinSet::new();
    for mut sender in senders {
        let make = make.clone();
        let counter = counter.clone();
        lanes.spawn(async move {
            let mut lane = Lane {
                completed: 0,
                errors: 0,
                first_error: None,
                latencies: Vec::new(),
            };
            loop {
                let sent = Instant::now();
                if sent >= until {
                    break;
                }
                let req = match make(counter.fetch_add(1, Ordering::Relaxed)) {
                    Ok(req) => req,
                    Err(e) => {
                        lane.errors += 1;
                        lane.first_error.get_or_insert(e);
                        break;
                    }
                };
                let outcome = async {
                    sender.ready().await?;
                    let response = sender.send_request(req).await?;
                    let status = response.status();
                    let body = response.into_body().collect().await?.to_bytes();
                    Ok::<_, hyper::Error>((status, body))
                }
                .await;
                let done = Instant::now();
                // Counted by when the answer arrived, as wrk counts: a slow row (sign-in,
                // seconds in the queue for a hashing permit) still shows its true rate.
                let counted = done >= from && done <= until;
                match outcome {
                    Ok((status, _)) if status == expect => {
                        if counted {
                            lane.completed += 1;
                            lane.latencies.push(done - sent);
                        }
                    }
                    Ok((status, body)) => {
                        lane.errors += 1;
                        lane.first_error.get_or_insert_with(|| {
                            format!("{status}: {}", String::from_utf8_lossy(&body))
                        });
                    }
                    Err(e) => {
                        lane.errors += 1;
                        lane.first_error.get_or_insert_with(|| e.to_string());
                        break;
                    }
                }
            }
            lane
        });
    }
    let mut outcome = Outcome {
        completed: 0,
        errors: 0,
        first_error: None,
        window: shape.duration,
        latencies: Vec::new(),
    };
    while let Some(lane) = lanes.join_next().await {
        let lane = lane.context("a connection's task")?;
        outcome.completed += lane.completed;
        outcome.errors += lane.errors;
        if outcome.first_error.is_none() {
            outcome.first_error = lane.first_error;
        }
        outcome.latencies.extend(lane.latencies);
    }
    outcome.latencies.sort_unstable();
    Ok(outcome)
}
