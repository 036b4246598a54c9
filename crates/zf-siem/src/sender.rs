//! RFC 5425 transport: syslog lines over TLS, octet-counted, from a background task.
//!
//! Sending never blocks the caller and never fails: a line goes into a bounded queue, and one
//! task per sender connects, writes and reconnects. While the SIEM is unreachable the queue
//! keeps the newest lines; when it is full the oldest is dropped and counted, because the audit
//! log in the database stays the record of truth and the export is a copy of it.
//!
//! RFC 5425 has no acknowledgement. A line counts as sent once TLS has written it to the
//! socket; lines written into a connection the peer has already abandoned can still be lost.
//! To narrow that window the task reads from the connection while it waits (a receiver never
//! sends application data), so a closed connection is noticed before the next write.

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{watch, Notify};
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;
use zf_audit::{Alert, StoredEvent};

use crate::config::SyslogConfig;
use crate::syslog::{frame, is_valid_hostname, Formatter};

/// Lines held while the receiver is unreachable, unless configured otherwise.
pub const DEFAULT_QUEUE_CAPACITY: usize = 10_000;
const MAX_QUEUE_CAPACITY: usize = 1_000_000;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
const BACKOFF_INITIAL: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
const BATCH_LINES: usize = 256;
const BATCH_BYTES: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum SyslogError {
    #[error("syslog address {0:?} is not host:port")]
    Address(String),
    #[error("syslog server_name {0:?} is not a DNS name or IP address")]
    ServerName(String),
    #[error("syslog hostname {0:?} must be 1 to 255 printable ASCII characters")]
    Hostname(String),
    #[error("syslog queue_capacity must be between 1 and {MAX_QUEUE_CAPACITY}")]
    QueueCapacity,
    #[error("cannot read the syslog CA file {path}: {reason}")]
    CaFile { path: String, reason: String },
    #[error("the syslog TLS configuration is unusable: {0}")]
    Tls(String),
    #[error("the syslog sender must be started inside a Tokio runtime")]
    NoRuntime,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FlushError {
    #[error("{pending} syslog line(s) still unsent when the flush timed out")]
    TimedOut { pending: u64 },
}

/// Counters since the sender started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SenderStats {
    /// Lines written to the TLS connection.
    pub sent: u64,
    /// Lines dropped because the queue was full.
    pub dropped: u64,
    /// Connections established after the first one.
    pub reconnects: u64,
    /// Lines accepted but neither sent nor dropped yet.
    pub queued: u64,
    pub connected: bool,
}

/// A FIFO of framed lines that drops its oldest entries beyond `capacity`.
struct Queue {
    lines: VecDeque<Vec<u8>>,
    capacity: usize,
}

impl Queue {
    fn new(capacity: usize) -> Self {
        Queue {
            lines: VecDeque::new(),
            capacity,
        }
    }

    /// Appends `line`; returns how many old lines were dropped to make room.
    fn push(&mut self, line: Vec<u8>) -> u64 {
        self.lines.push_back(line);
        self.trim()
    }

    /// Takes lines from the front, at least one when there is one, within the batch limits.
    fn take_batch(&mut self) -> Vec<Vec<u8>> {
        let mut batch = Vec::new();
        let mut bytes = 0;
        while let Some(next) = self.lines.front() {
            if !batch.is_empty() && (batch.len() >= BATCH_LINES || bytes + next.len() > BATCH_BYTES)
            {
                break;
            }
            bytes += next.len();
            if let Some(line) = self.lines.pop_front() {
                batch.push(line);
            }
        }
        batch
    }

    /// Puts a batch that could not be written back in front, in order; returns how many of
    /// the oldest lines were dropped if that overfills the queue.
    fn requeue_front(&mut self, batch: Vec<Vec<u8>>) -> u64 {
        for line in batch.into_iter().rev() {
            self.lines.push_front(line);
        }
        self.trim()
    }

    fn trim(&mut self) -> u64 {
        let mut dropped = 0;
        while self.lines.len() > self.capacity {
            self.lines.pop_front();
            dropped += 1;
        }
        dropped
    }
}

struct Shared {
    formatter: Formatter,
    queue: Mutex<Queue>,
    /// Woken when a line is queued.
    wake: Notify,
    /// Lines ever accepted; only changes under the queue lock, so flush targets are exact.
    accepted: AtomicU64,
    sent: AtomicU64,
    dropped: AtomicU64,
    reconnects: AtomicU64,
    connected: AtomicBool,
    /// Lines sent or dropped so far; `flush` waits on it.
    done: watch::Sender<u64>,
    stop: watch::Sender<bool>,
}

impl Shared {
    fn queue(&self) -> MutexGuard<'_, Queue> {
        // A panic while holding this lock cannot leave the queue inconsistent (every
        // operation on it is a whole VecDeque call), so a poisoned lock is still usable.
        self.queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn enqueue(&self, line: &str) {
        let dropped = {
            let mut queue = self.queue();
            self.accepted.fetch_add(1, Ordering::SeqCst);
            queue.push(frame(line))
        };
        self.count_dropped(dropped);
        self.wake.notify_one();
    }

    fn count_dropped(&self, dropped: u64) {
        if dropped == 0 {
            return;
        }
        let before = self.dropped.fetch_add(dropped, Ordering::SeqCst);
        let total = before + dropped;
        // One warning when dropping starts and then one per thousand, so a long outage does
        // not flood the application log.
        if before == 0 || before / 1000 != total / 1000 {
            tracing::warn!(
                dropped_total = total,
                "syslog export queue full: oldest lines dropped"
            );
        }
        self.done.send_modify(|done| *done += dropped);
    }

    fn count_sent(&self, sent: u64) {
        self.sent.fetch_add(sent, Ordering::SeqCst);
        self.done.send_modify(|done| *done += sent);
    }

    fn stopping(&self) -> bool {
        *self.stop.borrow()
    }
}

/// Stops the background task when the last handle goes away.
struct StopOnDrop(Arc<Shared>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.stop.send_replace(true);
    }
}

/// Sends events and alerts to one syslog-over-TLS receiver. Cheap to clone; the background
/// task ends when the last clone is dropped, after writing what it can on a live connection.
/// Call [`flush`](Self::flush) first to wait for delivery.
#[derive(Clone)]
pub struct SyslogTlsSender {
    shared: Arc<Shared>,
    _stop: Arc<StopOnDrop>,
}

impl std::fmt::Debug for SyslogTlsSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyslogTlsSender")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl SyslogTlsSender {
    /// Validates `config`, loads the CA file and starts the background task, which connects
    /// at once. Must be called within a Tokio runtime.
    pub fn start(config: &SyslogConfig) -> Result<Self, SyslogError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| SyslogError::NoRuntime)?;
        let connector = Connector::new(config)?;
        let hostname = match &config.hostname {
            Some(name) if is_valid_hostname(name) => Some(name.clone()),
            Some(name) => return Err(SyslogError::Hostname(name.clone())),
            None => system_hostname(),
        };
        let capacity = config.queue_capacity.unwrap_or(DEFAULT_QUEUE_CAPACITY);
        if !(1..=MAX_QUEUE_CAPACITY).contains(&capacity) {
            return Err(SyslogError::QueueCapacity);
        }
        let shared = Arc::new(Shared {
            formatter: Formatter::new(config.facility, hostname.as_deref(), std::process::id()),
            queue: Mutex::new(Queue::new(capacity)),
            wake: Notify::new(),
            accepted: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            reconnects: AtomicU64::new(0),
            connected: AtomicBool::new(false),
            done: watch::Sender::new(0),
            stop: watch::Sender::new(false),
        });
        runtime.spawn(run(Arc::clone(&shared), connector));
        Ok(SyslogTlsSender {
            _stop: Arc::new(StopOnDrop(Arc::clone(&shared))),
            shared,
        })
    }

    pub fn send_event(&self, event: &StoredEvent) {
        self.shared.enqueue(&self.shared.formatter.event(event));
    }

    pub fn send_alert(&self, alert: &Alert) {
        self.shared.enqueue(&self.shared.formatter.alert(alert));
    }

    /// Waits until every line accepted before this call has been sent or dropped.
    pub async fn flush(&self, timeout: Duration) -> Result<(), FlushError> {
        let target = self.shared.accepted.load(Ordering::SeqCst);
        let mut done = self.shared.done.subscribe();
        let reached = tokio::time::timeout(timeout, done.wait_for(|d| *d >= target)).await;
        match reached {
            Ok(Ok(_)) => Ok(()),
            // The sender half lives in `shared`, which this handle keeps alive, so the
            // channel cannot close; treat it like a timeout all the same.
            Ok(Err(_)) | Err(_) => Err(FlushError::TimedOut {
                pending: target.saturating_sub(*self.shared.done.borrow()),
            }),
        }
    }

    pub fn stats(&self) -> SenderStats {
        let s = &self.shared;
        SenderStats {
            sent: s.sent.load(Ordering::SeqCst),
            dropped: s.dropped.load(Ordering::SeqCst),
            reconnects: s.reconnects.load(Ordering::SeqCst),
            queued: s
                .accepted
                .load(Ordering::SeqCst)
                .saturating_sub(*s.done.borrow()),
            connected: s.connected.load(Ordering::SeqCst),
        }
    }
}

/// The kernel's host name, for HOSTNAME when none is configured.
fn system_hostname() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .ok()?;
    let name = name.trim();
    is_valid_hostname(name).then(|| name.to_owned())
}

struct Connector {
    address: String,
    server_name: ServerName<'static>,
    tls: TlsConnector,
}

impl Connector {
    fn new(config: &SyslogConfig) -> Result<Self, SyslogError> {
        let address_ok = config.address.rsplit_once(':').is_some_and(|(host, port)| {
            !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p != 0)
        });
        if !address_ok {
            return Err(SyslogError::Address(config.address.clone()));
        }
        let server_name = ServerName::try_from(config.server_name.clone())
            .map_err(|_| SyslogError::ServerName(config.server_name.clone()))?;

        let ca_error = |reason: String| SyslogError::CaFile {
            path: config.ca_file.display().to_string(),
            reason,
        };
        let certs = CertificateDer::pem_file_iter(&config.ca_file)
            .and_then(|it| it.collect::<Result<Vec<_>, _>>())
            .map_err(|e| ca_error(e.to_string()))?;
        if certs.is_empty() {
            return Err(ca_error("no certificate in the file".into()));
        }
        let mut roots = rustls::RootCertStore::empty();
        for cert in certs {
            roots.add(cert).map_err(|e| ca_error(e.to_string()))?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| SyslogError::Tls(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Connector {
            address: config.address.clone(),
            server_name,
            tls: TlsConnector::from(Arc::new(tls)),
        })
    }

    async fn connect(&self) -> io::Result<TlsStream<TcpStream>> {
        let timed_out = || io::Error::new(io::ErrorKind::TimedOut, "timed out");
        let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&self.address))
            .await
            .map_err(|_| timed_out())??;
        tcp.set_nodelay(true)?;
        tokio::time::timeout(
            CONNECT_TIMEOUT,
            self.tls.connect(self.server_name.clone(), tcp),
        )
        .await
        .map_err(|_| timed_out())?
    }
}

/// Exponential back-off between connection attempts.
struct Backoff(Duration);

impl Backoff {
    fn next(&mut self) -> Duration {
        let current = self.0;
        self.0 = (self.0 * 2).min(BACKOFF_MAX);
        current
    }

    fn reset(&mut self) {
        self.0 = BACKOFF_INITIAL;
    }
}

enum Ended {
    Stopped,
    Lost(io::Error),
}

async fn run(shared: Arc<Shared>, connector: Connector) {
    let mut stop = shared.stop.subscribe();
    let mut backoff = Backoff(BACKOFF_INITIAL);
    let mut ever_connected = false;
    let mut failures: u64 = 0;
    loop {
        let connected = tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => return,
            result = connector.connect() => result,
        };
        match connected {
            Ok(mut stream) => {
                if ever_connected {
                    shared.reconnects.fetch_add(1, Ordering::SeqCst);
                }
                ever_connected = true;
                failures = 0;
                shared.connected.store(true, Ordering::SeqCst);
                tracing::info!(address = %connector.address, "syslog export connected");
                let ended = serve(&shared, &mut stream, &mut backoff).await;
                shared.connected.store(false, Ordering::SeqCst);
                match ended {
                    Ended::Stopped => {
                        // close_notify, so the receiver knows nothing was cut off.
                        let _ =
                            tokio::time::timeout(Duration::from_secs(1), stream.shutdown()).await;
                        return;
                    }
                    Ended::Lost(e) => {
                        tracing::warn!(address = %connector.address, error = %e, "syslog export connection lost");
                    }
                }
            }
            Err(e) => {
                failures += 1;
                // The first failure of a streak and every tenth after it: enough to be seen
                // without repeating every back-off step.
                if failures % 10 == 1 {
                    tracing::warn!(address = %connector.address, error = %e, attempts = failures, "syslog export cannot connect");
                }
            }
        }
        tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => return,
            () = tokio::time::sleep(backoff.next()) => {}
        }
    }
}

/// Writes queued lines until the connection fails or the sender stops with nothing left.
async fn serve(shared: &Shared, stream: &mut TlsStream<TcpStream>, backoff: &mut Backoff) -> Ended {
    let mut stop = shared.stop.subscribe();
    let mut scratch = [0u8; 512];
    loop {
        let batch = shared.queue().take_batch();
        if batch.is_empty() {
            if shared.stopping() {
                return Ended::Stopped;
            }
            tokio::select! {
                biased;
                read = stream.read(&mut scratch) => {
                    if let Some(e) = closed(read) {
                        return Ended::Lost(e);
                    }
                }
                _ = stop.wait_for(|s| *s) => {}
                () = shared.wake.notified() => {}
            }
            continue;
        }
        // A close that already arrived is seen here rather than after writing into it.
        let already_closed = tokio::select! {
            biased;
            read = stream.read(&mut scratch) => closed(read),
            () = std::future::ready(()) => None,
        };
        if let Some(e) = already_closed {
            let dropped = shared.queue().requeue_front(batch);
            shared.count_dropped(dropped);
            return Ended::Lost(e);
        }
        let lines = batch.len() as u64;
        let bytes: Vec<u8> = batch.concat();
        let written = tokio::time::timeout(WRITE_TIMEOUT, async {
            stream.write_all(&bytes).await?;
            stream.flush().await
        })
        .await;
        match written {
            Ok(Ok(())) => {
                shared.count_sent(lines);
                backoff.reset();
            }
            Ok(Err(e)) => {
                let dropped = shared.queue().requeue_front(batch);
                shared.count_dropped(dropped);
                return Ended::Lost(e);
            }
            Err(_) => {
                let dropped = shared.queue().requeue_front(batch);
                shared.count_dropped(dropped);
                return Ended::Lost(io::Error::new(io::ErrorKind::TimedOut, "write timed out"));
            }
        }
    }
}

/// Whether a read from the receiver means the connection is over. Receivers send nothing, so
/// data is ignored; end of stream or an error ends the connection.
fn closed(read: io::Result<usize>) -> Option<io::Error> {
    match read {
        Ok(0) => Some(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "receiver closed the connection",
        )),
        Ok(_) => None,
        Err(e) => Some(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(n: usize) -> Vec<u8> {
        format!("line {n}").into_bytes()
    }

    #[test]
    fn a_full_queue_drops_the_oldest() {
        let mut q = Queue::new(3);
        assert_eq!(q.push(line(1)), 0);
        assert_eq!(q.push(line(2)), 0);
        assert_eq!(q.push(line(3)), 0);
        assert_eq!(q.push(line(4)), 1);
        assert_eq!(q.take_batch(), vec![line(2), line(3), line(4)]);
        assert!(q.take_batch().is_empty());
    }

    #[test]
    fn a_requeued_batch_goes_back_in_front_and_overflow_drops_the_oldest() {
        let mut q = Queue::new(3);
        q.push(line(1));
        q.push(line(2));
        let batch = q.take_batch();
        q.push(line(3));
        q.push(line(4));
        assert_eq!(q.requeue_front(batch), 1);
        assert_eq!(q.take_batch(), vec![line(2), line(3), line(4)]);
    }

    #[test]
    fn batches_respect_their_limits() {
        let mut q = Queue::new(10_000);
        for n in 0..(BATCH_LINES + 5) {
            q.push(line(n));
        }
        assert_eq!(q.take_batch().len(), BATCH_LINES);
        assert_eq!(q.take_batch().len(), 5);
        let mut q = Queue::new(10);
        q.push(vec![b'x'; BATCH_BYTES + 1]);
        q.push(line(1));
        assert_eq!(
            q.take_batch().len(),
            1,
            "an oversized line still goes out, alone"
        );
        assert_eq!(q.take_batch(), vec![line(1)]);
    }

    #[test]
    fn backoff_doubles_up_to_the_maximum() {
        let mut b = Backoff(BACKOFF_INITIAL);
        assert_eq!(b.next(), Duration::from_millis(100));
        assert_eq!(b.next(), Duration::from_millis(200));
        for _ in 0..20 {
            b.next();
        }
        assert_eq!(b.next(), BACKOFF_MAX);
        b.reset();
        assert_eq!(b.next(), BACKOFF_INITIAL);
    }

    #[test]
    fn bad_configuration_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _guard = rt.enter();
        let start = |c: SyslogConfig| {
            SyslogTlsSender::start(&c)
                .map(|_| ())
                .unwrap_err()
                .to_string()
        };
        assert!(start(SyslogConfig::new("siem", "siem", &empty)).contains("host:port"));
        assert!(start(SyslogConfig::new("siem:0", "siem", &empty)).contains("host:port"));
        assert!(start(SyslogConfig::new(":6514", "siem", &empty)).contains("host:port"));
        assert!(start(SyslogConfig::new("siem:6514", "bad name!", &empty)).contains("server_name"));
        assert!(start(SyslogConfig::new("siem:6514", "siem", &empty)).contains("no certificate"));
        assert!(start(SyslogConfig::new(
            "siem:6514",
            "siem",
            dir.path().join("missing.pem")
        ))
        .contains("missing.pem"));
    }

    #[test]
    fn starting_outside_a_runtime_is_an_error() {
        let config = SyslogConfig::new("siem:6514", "siem", "/nonexistent");
        assert!(matches!(
            SyslogTlsSender::start(&config),
            Err(SyslogError::NoRuntime)
        ));
    }
}
