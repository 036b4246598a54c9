//! Headless Chromium for the web UI's tests: finding the binary (or skipping without it),
//! trusting the test server's self-signed certificate by its public key alone, collecting every
//! console message, log entry and exception over the DevTools protocol, and driving pages the
//! way a person would (typing, clicking, waiting for the next document).
//!
//! Chromium is found through `ZF_CHROMIUM`, `/usr/bin/chromium` or `chromium` on `PATH`. Without
//! it a test is skipped, unless `ZF_REQUIRE_BROWSER=1` (as CI sets it), which fails it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use chromiumoxide::cdp::browser_protocol::browser::{
    SetDownloadBehaviorBehavior, SetDownloadBehaviorParams,
};
use chromiumoxide::cdp::browser_protocol::dom::SetFileInputFilesParams;
use chromiumoxide::cdp::browser_protocol::input::InsertTextParams;
use chromiumoxide::cdp::browser_protocol::log::{EventEntryAdded, LogEntryLevel};
use chromiumoxide::cdp::js_protocol::runtime::{
    ConsoleApiCalledType, EventConsoleApiCalled, EventExceptionThrown,
};
use chromiumoxide::{Browser, BrowserConfig, Page};
use futures::StreamExt;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use sha2::{Digest, Sha256};

use crate::common::TestServer;

/// How long one step (a navigation, a form submission) may take.
pub const STEP: Duration = Duration::from_secs(10);

/// The Chromium binary, or `None` to skip.
pub fn chromium() -> Option<PathBuf> {
    let from_env = std::env::var_os("ZF_CHROMIUM")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    if let Some(p) = &from_env {
        assert!(p.is_file(), "ZF_CHROMIUM={} is not a file", p.display());
    }
    let found = from_env
        .or_else(|| Some(PathBuf::from("/usr/bin/chromium")).filter(|p| p.is_file()))
        .or_else(|| {
            std::env::split_paths(&std::env::var_os("PATH")?)
                .map(|dir| dir.join("chromium"))
                .find(|p| p.is_file())
        });
    if found.is_none() {
        assert!(
            std::env::var("ZF_REQUIRE_BROWSER").as_deref() != Ok("1"),
            "ZF_REQUIRE_BROWSER=1 but no Chromium was found (set ZF_CHROMIUM, or install \
             /usr/bin/chromium, or put `chromium` on PATH)"
        );
        eprintln!("skipping browser test: chromium not found");
    }
    found
}

/// One DER element at the start of `input`: (tag, the whole element, its contents).
/// Single-byte tags and definite lengths only, which is all X.509 uses.
pub fn der_element(input: &[u8]) -> (u8, &[u8], &[u8]) {
    let tag = input[0];
    let first = input[1];
    let (header, len) = if first < 0x80 {
        (2, usize::from(first))
    } else {
        let n = usize::from(first & 0x7f);
        assert!((1..=4).contains(&n), "unsupported DER length of {n} bytes");
        let len = input[2..2 + n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (2 + n, len)
    };
    (tag, &input[..header + len], &input[header..header + len])
}

/// The DER SubjectPublicKeyInfo of an X.509 certificate (RFC 5280 §4.1):
/// Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version OPTIONAL, serialNumber,
/// signature, issuer, validity, subject, subjectPublicKeyInfo, … }, … }.
pub fn subject_public_key_info(cert: &[u8]) -> &[u8] {
    const SEQUENCE: u8 = 0x30;
    let (tag, _, certificate) = der_element(cert);
    assert_eq!(tag, SEQUENCE, "certificate is not a SEQUENCE");
    let (tag, _, mut tbs) = der_element(certificate);
    assert_eq!(tag, SEQUENCE, "tbsCertificate is not a SEQUENCE");
    if tbs[0] == 0xa0 {
        tbs = &tbs[der_element(tbs).1.len()..];
    }
    // serialNumber, signature, issuer, validity, subject
    for _ in 0..5 {
        tbs = &tbs[der_element(tbs).1.len()..];
    }
    let (tag, spki, _) = der_element(tbs);
    assert_eq!(tag, SEQUENCE, "subjectPublicKeyInfo is not a SEQUENCE");
    spki
}

/// What Chromium's `--ignore-certificate-errors-spki-list` wants: base64 of the SHA-256 of the
/// certificate's DER SubjectPublicKeyInfo.
pub fn spki_sha256_base64(server: &TestServer) -> String {
    let cert = CertificateDer::from_pem_slice(server.cert_pem()).expect("parse certificate PEM");
    let spki = subject_public_key_info(&cert);
    // The walk above must agree with the public half of the server's own key.
    let key_pem = std::fs::read_to_string(server.data_dir().join("tls/key.pem")).expect("key");
    let key = rcgen::KeyPair::from_pem(&key_pem).expect("parse key");
    assert_eq!(
        spki,
        key.public_key_der().as_slice(),
        "SPKI extracted from the certificate"
    );
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(spki))
}

/// Console messages, log entries and exceptions of level error (or worse) seen so far.
#[derive(Clone, Default)]
pub struct Problems(Arc<Mutex<Vec<String>>>);

impl Problems {
    pub fn push(&self, p: String) {
        eprintln!("browser: {p}");
        self.0.lock().expect("lock").push(p);
    }

    /// Drops the problems that mention `needle`: a failure the test provoked or answered on
    /// purpose, so that only the unexpected ones fail the run.
    pub fn forgive(&self, needle: &str) {
        self.0.lock().expect("lock").retain(|p| !p.contains(needle));
    }

    pub fn snapshot(&self) -> Vec<String> {
        self.0.lock().expect("lock").clone()
    }

    /// Listens on the page for everything the protocol reports; everything is printed, errors
    /// are kept.
    pub async fn watch(&self, page: &Page) {
        let mut console = page
            .event_listener::<EventConsoleApiCalled>()
            .await
            .expect("listen console");
        let mut log = page
            .event_listener::<EventEntryAdded>()
            .await
            .expect("listen log");
        let mut exceptions = page
            .event_listener::<EventExceptionThrown>()
            .await
            .expect("listen exceptions");
        let me = self.clone();
        tokio::spawn(async move {
            while let Some(e) = console.next().await {
                let text = e
                    .args
                    .iter()
                    .map(|a| match &a.value {
                        Some(v) => v.to_string(),
                        None => a.description.clone().unwrap_or_default(),
                    })
                    .collect::<Vec<_>>()
                    .join(" ");
                let line = format!("console.{:?}: {text}", e.r#type);
                if matches!(
                    e.r#type,
                    ConsoleApiCalledType::Error | ConsoleApiCalledType::Assert
                ) {
                    me.push(line);
                } else {
                    eprintln!("browser: {line}");
                }
            }
        });
        let me = self.clone();
        tokio::spawn(async move {
            while let Some(e) = log.next().await {
                let entry = &e.entry;
                let line = format!(
                    "log {:?}/{:?}: {} ({})",
                    entry.source,
                    entry.level,
                    entry.text,
                    entry.url.as_deref().unwrap_or("-")
                );
                if entry.level == LogEntryLevel::Error {
                    me.push(line);
                } else {
                    eprintln!("browser: {line}");
                }
            }
        });
        let me = self.clone();
        tokio::spawn(async move {
            while let Some(e) = exceptions.next().await {
                let d = &e.exception_details;
                let detail = d
                    .exception
                    .as_ref()
                    .and_then(|x| x.description.clone())
                    .unwrap_or_default();
                me.push(format!("exception: {} {detail}", d.text));
            }
        });
        page.enable_log().await.expect("enable Log");
        page.enable_runtime().await.expect("enable Runtime");
    }
}

/// Evaluates `expr` (which must produce a JSON-serialisable value) in the page.
pub async fn eval(page: &Page, expr: &str) -> Result<serde_json::Value, String> {
    let wrapped = format!("JSON.stringify({expr})");
    let r = tokio::time::timeout(STEP, page.evaluate(wrapped.as_str()))
        .await
        .map_err(|_| "timed out".to_owned())?
        .map_err(|e| e.to_string())?;
    let text: String = r.into_value().map_err(|e| e.to_string())?;
    serde_json::from_str(&text).map_err(|e| e.to_string())
}

/// Polls until the loaded document's path satisfies `want`, then returns the path.
pub async fn wait_for_path(page: &Page, what: &str, want: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + STEP;
    loop {
        let last = match eval(page, "[document.readyState, location.pathname]").await {
            Ok(v) => {
                let ready = v[0].as_str().unwrap_or_default();
                let path = v[1].as_str().unwrap_or_default().to_owned();
                if ready == "complete" && want(&path) {
                    return path;
                }
                format!("{ready} {path}")
            }
            Err(e) => e,
        };
        if Instant::now() > deadline {
            let body = eval(page, "document.body ? document.body.innerText : ''")
                .await
                .unwrap_or_default();
            panic!("timed out waiting for {what}; last state: {last}; page text: {body}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Navigates by typing the URL, as it were, and waits for `path`.
pub async fn visit(page: &Page, server: &TestServer, url_path: &str, lands_on: &str) {
    tokio::time::timeout(STEP, page.goto(server.url(url_path)))
        .await
        .unwrap_or_else(|_| panic!("timed out loading {url_path}"))
        .unwrap_or_else(|e| panic!("load {url_path}: {e}"));
    wait_for_path(page, lands_on, |p| p == lands_on).await;
}

/// Clicks the element, then waits for the navigation it starts to land where `want` says.
pub async fn click_and_wait(
    page: &Page,
    selector: &str,
    what: &str,
    want: impl Fn(&str) -> bool,
) -> String {
    page.find_element(selector)
        .await
        .unwrap_or_else(|e| panic!("find {selector}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("click {selector}: {e}"));
    // Returns at once if the old document still counts as loaded; the poll below is the real
    // wait.
    let _ = tokio::time::timeout(STEP, page.wait_for_navigation()).await;
    wait_for_path(page, what, want).await
}

/// Focuses a form field by clicking it and enters text as an input method would (so that
/// Chinese text works too).
pub async fn fill(page: &Page, selector: &str, text: &str) {
    page.find_element(selector)
        .await
        .unwrap_or_else(|e| panic!("find {selector}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("click {selector}: {e}"));
    page.execute(InsertTextParams::new(text))
        .await
        .unwrap_or_else(|e| panic!("type into {selector}: {e}"));
    let value = eval(page, &format!("document.querySelector('{selector}').value"))
        .await
        .expect("read field");
    assert_eq!(value, text, "value of {selector} after typing");
}

pub async fn text_of(page: &Page, selector: &str) -> String {
    eval(
        page,
        &format!("document.querySelector('{selector}').innerText"),
    )
    .await
    .unwrap_or_else(|e| panic!("read {selector}: {e}"))
    .as_str()
    .unwrap_or_else(|| panic!("no element {selector}"))
    .to_owned()
}

/// What every page must be: in the expected language, styled by the site's own stylesheet, and
/// without any script but the site's one file of security-key ceremonies (never inline).
pub async fn check_page(page: &Page, lang: &str) {
    let v = eval(
        page,
        "[document.documentElement.lang, \
          Array.from(document.scripts).map(s => s.src ? new URL(s.src).pathname : 'inline'), \
          document.querySelectorAll('script:not([src])').length, document.styleSheets.length, \
          Array.from(document.styleSheets).map(s => s.href)]",
    )
    .await
    .expect("inspect page");
    let url = page.url().await.ok().flatten().unwrap_or_default();
    assert_eq!(v[0], lang, "<html lang> on {url}");
    let scripts = v[1].as_array().cloned().unwrap_or_default();
    assert!(
        scripts.iter().all(|s| s == "/assets/webauthn.js") && scripts.len() <= 1,
        "scripts on {url}: {scripts:?}"
    );
    assert_eq!(v[2], 0, "inline <script> elements on {url}");
    assert_eq!(v[3], 1, "stylesheets on {url}: {}", v[4]);
    assert!(
        v[4][0]
            .as_str()
            .is_some_and(|h| h.ends_with("/assets/app.css")),
        "stylesheet on {url}: {}",
        v[4]
    );
}

pub fn is_client_detail(path: &str) -> bool {
    path.strip_prefix("/clients/")
        .is_some_and(|id| uuid::Uuid::parse_str(id).is_ok())
}

/// A running Chromium that trusts one test server, with its own profile and download folder.
pub struct Chromium {
    pub browser: Browser,
    events: tokio::task::JoinHandle<()>,
    _profile: tempfile::TempDir,
    pub downloads: tempfile::TempDir,
}

impl Chromium {
    pub async fn launch(executable: &Path, server: &TestServer) -> Chromium {
        // The server's certificate is trusted by its public key alone; certificate checking
        // stays on for everything else (and chromiumoxide's default of ignoring every
        // certificate error through the DevTools protocol is turned off with
        // `respect_https_errors`).
        let spki = spki_sha256_base64(server);
        let profile = tempfile::tempdir().expect("profile dir");
        let config = BrowserConfig::builder()
            .chrome_executable(executable)
            .new_headless_mode()
            .no_sandbox()
            .respect_https_errors()
            .user_data_dir(profile.path())
            .launch_timeout(Duration::from_secs(20))
            .request_timeout(STEP)
            .args([
                "disable-gpu",
                "disable-quic",
                "no-first-run",
                "disable-background-networking",
                "disable-component-update",
                "disable-sync",
            ])
            .arg(("ignore-certificate-errors-spki-list", spki.as_str()))
            .build()
            .expect("browser config");
        let (browser, mut handler) = Browser::launch(config).await.expect("launch Chromium");
        let events = tokio::spawn(async move { while handler.next().await.is_some() {} });
        // Downloads land where the test can read them back, not in a home directory.
        let downloads = tempfile::tempdir().expect("downloads dir");
        browser
            .execute(
                SetDownloadBehaviorParams::builder()
                    .behavior(SetDownloadBehaviorBehavior::Allow)
                    .download_path(downloads.path().to_string_lossy().into_owned())
                    .build()
                    .expect("download behaviour"),
            )
            .await
            .expect("set download behaviour");
        Chromium {
            browser,
            events,
            _profile: profile,
            downloads,
        }
    }

    /// A new tab, watched for errors from the start.
    pub async fn page(&self) -> (Page, Problems) {
        let page = self
            .browser
            .new_page("about:blank")
            .await
            .expect("new page");
        let problems = Problems::default();
        problems.watch(&page).await;
        (page, problems)
    }

    pub async fn close(mut self) {
        self.browser.close().await.expect("close Chromium");
        let _ = tokio::time::timeout(STEP, self.browser.wait()).await;
        self.events.abort();
    }

    /// Waits until a finished download holds exactly `expected`, and returns its file name.
    pub async fn downloaded(&self, expected: &[u8]) -> String {
        let deadline = Instant::now() + STEP;
        loop {
            let mut seen = Vec::new();
            for entry in std::fs::read_dir(self.downloads.path()).expect("read downloads") {
                let path = entry.expect("entry").path();
                let name = path
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned();
                if name.ends_with(".crdownload") {
                    seen.push(name);
                    continue;
                }
                if std::fs::read(&path).is_ok_and(|bytes| bytes == expected) {
                    return name;
                }
                seen.push(name);
            }
            assert!(
                Instant::now() < deadline,
                "no download with the uploaded bytes; the folder holds {seen:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Chooses a file in an `<input type=file>`, as the file picker would.
pub async fn choose_file(page: &Page, selector: &str, file: &Path) {
    let input = page
        .find_element(selector)
        .await
        .unwrap_or_else(|e| panic!("find {selector}: {e}"));
    page.execute(
        SetFileInputFilesParams::builder()
            .file(file.to_string_lossy().into_owned())
            .backend_node_id(input.backend_node_id)
            .build()
            .expect("file input params"),
    )
    .await
    .unwrap_or_else(|e| panic!("choose a file for {selector}: {e}"));
}

/// Nothing went wrong in the browser. To show the collector would have noticed, a CSP
/// violation (an image from another origin) is provoked and awaited; events arrive in order,
/// so everything before it has been seen by then.
pub async fn assert_no_errors(page: &Page, problems: &Problems) {
    eval(
        page,
        "(document.body.insertAdjacentHTML('beforeend', \
           '<img src=\"https://csp-probe.invalid/probe.png\" alt=\"\">'), 0)",
    )
    .await
    .expect("inject probe");
    let deadline = Instant::now() + STEP;
    while !problems
        .snapshot()
        .iter()
        .any(|p| p.contains("csp-probe.invalid"))
    {
        assert!(
            Instant::now() < deadline,
            "the deliberate CSP violation was never reported; collected: {:?}",
            problems.snapshot()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let unexpected: Vec<String> = problems
        .snapshot()
        .into_iter()
        .filter(|p| !p.contains("csp-probe.invalid"))
        .collect();
    assert!(
        unexpected.is_empty(),
        "errors in the browser: {unexpected:#?}"
    );
}
