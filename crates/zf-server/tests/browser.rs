//! The web UI in a real browser: headless Chromium drives the real server over HTTPS through
//! sign-in, the forced password change, creating a client and reading it back, and the language
//! switch, while every console message, log entry and exception is collected over the DevTools
//! protocol. The UI has no script at all and runs under a CSP that forbids every script, so the
//! run must end without a single error; a deliberate CSP violation at the end proves the
//! collector would have seen one.
//!
//! Chromium is found through `ZF_CHROMIUM`, `/usr/bin/chromium` or `chromium` on `PATH`. Without
//! it the test is skipped, unless `ZF_REQUIRE_BROWSER=1` (as CI sets it), which fails it.

mod common;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use chromiumoxide::cdp::browser_protocol::input::InsertTextParams;
use chromiumoxide::cdp::browser_protocol::log::{EventEntryAdded, LogEntryLevel};
use chromiumoxide::cdp::js_protocol::runtime::{
    ConsoleApiCalledType, EventConsoleApiCalled, EventExceptionThrown,
};
use chromiumoxide::{Browser, BrowserConfig, Page};
use futures::StreamExt;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use secrecy::SecretString;
use sha2::{Digest, Sha256};
use zf_domain::{IdNumber, Uscc, Username};
use zf_policy::Role;

/// How long one step (a navigation, a form submission) may take.
const STEP: Duration = Duration::from_secs(10);

const USERNAME: &str = "lisi";
const ONE_TIME_PASSWORD: &str = "one-time secret 4 browser";
const NEW_PASSWORD: &str = "correct horse battery staple 7";
const COMPANY: &str = "上海浏览器测试贸易有限公司";
const LEGAL_REP: &str = "王五";

/// The Chromium binary, or `None` to skip.
fn chromium() -> Option<PathBuf> {
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
fn der_element(input: &[u8]) -> (u8, &[u8], &[u8]) {
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
fn subject_public_key_info(cert: &[u8]) -> &[u8] {
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
fn spki_sha256_base64(server: &common::TestServer) -> String {
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
struct Problems(Arc<Mutex<Vec<String>>>);

impl Problems {
    fn push(&self, p: String) {
        eprintln!("browser: {p}");
        self.0.lock().expect("lock").push(p);
    }

    fn snapshot(&self) -> Vec<String> {
        self.0.lock().expect("lock").clone()
    }

    /// Listens on the page for everything the protocol reports; everything is printed, errors
    /// are kept.
    async fn watch(&self, page: &Page) {
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
async fn eval(page: &Page, expr: &str) -> Result<serde_json::Value, String> {
    let wrapped = format!("JSON.stringify({expr})");
    let r = tokio::time::timeout(STEP, page.evaluate(wrapped.as_str()))
        .await
        .map_err(|_| "timed out".to_owned())?
        .map_err(|e| e.to_string())?;
    let text: String = r.into_value().map_err(|e| e.to_string())?;
    serde_json::from_str(&text).map_err(|e| e.to_string())
}

/// Polls until the loaded document's path satisfies `want`, then returns the path.
async fn wait_for_path(page: &Page, what: &str, want: impl Fn(&str) -> bool) -> String {
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
async fn visit(page: &Page, server: &common::TestServer, url_path: &str, lands_on: &str) {
    tokio::time::timeout(STEP, page.goto(server.url(url_path)))
        .await
        .unwrap_or_else(|_| panic!("timed out loading {url_path}"))
        .unwrap_or_else(|e| panic!("load {url_path}: {e}"));
    wait_for_path(page, lands_on, |p| p == lands_on).await;
}

/// Clicks the element, then waits for the navigation it starts to land where `want` says.
async fn click_and_wait(
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
async fn fill(page: &Page, selector: &str, text: &str) {
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

async fn text_of(page: &Page, selector: &str) -> String {
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
/// without any script element.
async fn check_page(page: &Page, lang: &str) {
    let v = eval(
        page,
        "[document.documentElement.lang, document.scripts.length, \
          document.querySelectorAll('script').length, document.styleSheets.length, \
          Array.from(document.styleSheets).map(s => s.href)]",
    )
    .await
    .expect("inspect page");
    let url = page.url().await.ok().flatten().unwrap_or_default();
    assert_eq!(v[0], lang, "<html lang> on {url}");
    assert_eq!(v[1], 0, "document.scripts on {url}");
    assert_eq!(v[2], 0, "<script> elements on {url}");
    assert_eq!(v[3], 1, "stylesheets on {url}: {}", v[4]);
    assert!(
        v[4][0]
            .as_str()
            .is_some_and(|h| h.ends_with("/assets/app.css")),
        "stylesheet on {url}: {}",
        v[4]
    );
}

fn is_client_detail(path: &str) -> bool {
    path.strip_prefix("/clients/")
        .is_some_and(|id| uuid::Uuid::parse_str(id).is_ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_ui_in_headless_chromium() {
    let Some(executable) = chromium() else {
        return;
    };
    let started = Instant::now();
    let server = common::TestServer::start(common::Backend::Sqlite)
        .await
        .expect("server");
    server
        .app
        .add_user(
            Username::parse(USERNAME).expect("username"),
            Role::Accountant,
            Some(SecretString::from(ONE_TIME_PASSWORD)),
            zf_audit::Actor::cli("test"),
        )
        .await
        .expect("add user");
    let uscc = Uscc::with_check_char("91310000MA1FL0000").expect("uscc");
    let uscc = Uscc::parse(uscc.as_str()).expect("generated USCC parses");
    let id_number = IdNumber::with_check_char("11010519800101123").expect("id number");
    let id_number = IdNumber::parse(id_number.as_str()).expect("generated ID number parses");
    let id_full = id_number.as_str().to_owned();
    let id_masked = format!("{}{}{}", &id_full[..3], "*".repeat(11), &id_full[14..]);
    assert_eq!(id_masked, id_number.masked());

    // The server's certificate is trusted by its public key alone; certificate checking stays
    // on for everything else (and chromiumoxide's default of ignoring every certificate error
    // through the DevTools protocol is turned off with `respect_https_errors`).
    let spki = spki_sha256_base64(&server);
    let profile = tempfile::tempdir().expect("profile dir");
    let config = BrowserConfig::builder()
        .chrome_executable(&executable)
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
    let (mut browser, mut handler) = Browser::launch(config).await.expect("launch Chromium");
    let events = tokio::spawn(async move { while handler.next().await.is_some() {} });

    let page = browser.new_page("about:blank").await.expect("new page");
    let problems = Problems::default();
    problems.watch(&page).await;

    // Sign in with the one-time password: the server insists on a new password first.
    visit(&page, &server, "/login", "/login").await;
    check_page(&page, "zh-CN").await;
    fill(&page, "#username", USERNAME).await;
    fill(&page, "#password", ONE_TIME_PASSWORD).await;
    click_and_wait(
        &page,
        "form.card button[type=submit]",
        "/password after login",
        |p| p == "/password",
    )
    .await;
    check_page(&page, "zh-CN").await;

    fill(&page, "#current_password", ONE_TIME_PASSWORD).await;
    fill(&page, "#new_password", NEW_PASSWORD).await;
    // An accountant may reveal data, so an authenticator comes next, before anything else.
    click_and_wait(
        &page,
        "form.card button[type=submit]",
        "/mfa after password change",
        |p| p == "/mfa",
    )
    .await;
    check_page(&page, "zh-CN").await;
    click_and_wait(
        &page,
        "form.card[action='/mfa/totp'] button[type=submit]",
        "/mfa with a new authenticator",
        |p| p == "/mfa",
    )
    .await;
    // Same path before and after: wait for the new document by what it shows.
    let deadline = Instant::now() + STEP;
    while eval(&page, "document.querySelector('svg.qr') !== null").await != Ok(true.into()) {
        assert!(
            Instant::now() < deadline,
            "no QR code after starting the enrolment"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    check_page(&page, "zh-CN").await;
    // The QR code is inline SVG drawn by the server; the CSP stays as strict as ever.
    let qr = eval(
        &page,
        "(() => { const s = document.querySelector('svg.qr');            return s ? [s.getBoundingClientRect().width, s.querySelectorAll('path').length] : null })()",
    )
    .await
    .expect("read the QR code");
    assert!(qr[0].as_f64().unwrap_or(0.0) > 100.0, "QR code drawn: {qr}");
    let secret = zf_crypto::TotpSecret::from_base32(&text_of(&page, "#totp-secret").await)
        .expect("the key on the page is base32");
    let authenticator = common::Authenticator::new(secret);
    fill(&page, "#code", &server.totp_code(&authenticator)).await;
    click_and_wait(
        &page,
        "form.card[action='/mfa/totp/confirm'] button[type=submit]",
        "the recovery codes",
        |p| p == "/mfa/totp/confirm",
    )
    .await;
    check_page(&page, "zh-CN").await;
    let codes = eval(
        &page,
        "Array.from(document.querySelectorAll('ol.recovery-codes code')).map(c => c.innerText)",
    )
    .await
    .expect("read the recovery codes");
    assert_eq!(codes.as_array().map(Vec::len), Some(10), "{codes}");
    click_and_wait(&page, "main a[href='/']", "/clients after enrolment", |p| {
        p == "/clients"
    })
    .await;
    check_page(&page, "zh-CN").await;
    assert_eq!(text_of(&page, "main h1").await, "企业客户");

    // Create a client through the form.
    click_and_wait(&page, "a[href='/clients/new']", "/clients/new", |p| {
        p == "/clients/new"
    })
    .await;
    check_page(&page, "zh-CN").await;
    fill(&page, "#name", COMPANY).await;
    fill(&page, "#uscc", uscc.as_str()).await;
    // Choose the second taxpayer type with the keyboard, as a user would.
    page.find_element("#taxpayer_type")
        .await
        .expect("find select")
        .focus()
        .await
        .expect("focus select")
        .press_key("ArrowDown")
        .await
        .expect("choose taxpayer type");
    assert_eq!(
        eval(&page, "document.querySelector('#taxpayer_type').value")
            .await
            .expect("select"),
        "small_scale"
    );
    fill(&page, "#legal_rep_name", LEGAL_REP).await;
    fill(&page, "#legal_rep_id_number", &id_full).await;
    let detail = click_and_wait(
        &page,
        "form.card button[type=submit]",
        "the new client's page",
        is_client_detail,
    )
    .await;
    check_page(&page, "zh-CN").await;
    assert_eq!(text_of(&page, "main h1").await, COMPANY);
    let card = text_of(&page, "dl.card").await;
    assert!(
        card.contains(uscc.as_str()),
        "USCC on the detail page: {card}"
    );
    assert!(
        card.contains("小规模纳税人"),
        "taxpayer type on the detail page: {card}"
    );
    assert!(
        card.contains(LEGAL_REP),
        "legal representative on the detail page: {card}"
    );
    // An accountant sees the full number on the detail page (and that read is audited).
    assert_eq!(text_of(&page, "dl.card .sensitive").await, id_full);
    let id = detail.trim_start_matches("/clients/").to_owned();

    // The list shows the client with the number masked, never in full.
    visit(&page, &server, "/clients", "/clients").await;
    check_page(&page, "zh-CN").await;
    let rows = eval(
        &page,
        "Array.from(document.querySelectorAll('main table tbody tr')).map(tr => \
           [tr.querySelector('a').getAttribute('href')].concat( \
             Array.from(tr.cells).map(td => td.innerText)))",
    )
    .await
    .expect("read table");
    let rows = rows.as_array().expect("rows");
    assert_eq!(rows.len(), 1, "one client in the list: {rows:?}");
    let row = &rows[0];
    assert_eq!(row[0], format!("/clients/{id}"));
    assert_eq!(row[1], COMPANY);
    assert_eq!(row[2], uscc.as_str());
    assert_eq!(row[4], LEGAL_REP);
    assert_eq!(row[5], id_masked.as_str());
    assert_eq!(text_of(&page, "main table .masked").await, id_masked);
    let list_text = text_of(&page, "main").await;
    assert!(
        !list_text.contains(&id_full),
        "full ID number in the list: {list_text}"
    );

    // The link in the list leads back to the client.
    click_and_wait(
        &page,
        "main table tbody a",
        "the client's page from the list",
        |p| p == detail,
    )
    .await;
    assert_eq!(text_of(&page, "main h1").await, COMPANY);

    // Language: Chinese by default, English once chosen; the choice survives navigation.
    visit(&page, &server, "/language?set=en", "/clients").await;
    check_page(&page, "en").await;
    assert_eq!(text_of(&page, "main h1").await, "Clients");
    visit(&page, &server, "/clients/new", "/clients/new").await;
    check_page(&page, "en").await;
    assert_eq!(text_of(&page, "main h1").await, "New client");
    visit(&page, &server, &detail, &detail).await;
    check_page(&page, "en").await;
    let card = text_of(&page, "dl.card").await;
    assert!(
        card.contains("Small-scale taxpayer"),
        "English detail page: {card}"
    );
    visit(&page, &server, "/language?set=zh", "/clients").await;
    check_page(&page, "zh-CN").await;
    assert_eq!(text_of(&page, "main h1").await, "企业客户");

    // Nothing went wrong in the browser. To show the collector would have noticed, provoke a
    // CSP violation (an image from another origin) and wait until it is reported; events
    // arrive in order, so everything before it has been seen by then.
    eval(
        &page,
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

    // The policy that made the probe fail is the one the server sends on its pages.
    let client = server.client(false);
    for path in [
        "/login",
        "/clients",
        "/clients/new",
        detail.as_str(),
        "/no-such-page",
    ] {
        let r = client.get(server.url(path)).send().await.expect("fetch");
        let csp = r
            .headers()
            .get("content-security-policy")
            .unwrap_or_else(|| panic!("no Content-Security-Policy on {path}"))
            .to_str()
            .expect("CSP is ASCII")
            .to_owned();
        assert!(csp.contains("default-src 'none'"), "CSP on {path}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "CSP on {path}: {csp}");
        assert!(!csp.contains("unsafe-eval"), "CSP on {path}: {csp}");
        assert!(!csp.contains("script-src"), "CSP on {path}: {csp}");
    }

    browser.close().await.expect("close Chromium");
    let _ = tokio::time::timeout(STEP, browser.wait()).await;
    events.abort();
    eprintln!("browser test took {:?}", started.elapsed());
}

#[test]
fn spki_walk_matches_the_key() {
    // A certificate from the same generator the server uses, with a known public key.
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("cert");
    let der = certified.cert.der();
    assert_eq!(
        subject_public_key_info(der),
        certified.key_pair.public_key_der().as_slice()
    );
}
