//! The web UI in a real browser: headless Chromium drives the real server over HTTPS through
//! sign-in, the forced password change, creating a client and reading it back, and the language
//! switch, while every console message, log entry and exception is collected over the DevTools
//! protocol. The UI runs no script but its one same-origin file of security-key ceremonies, under
//! a CSP that forbids every other script, so the run must end without a single error; a deliberate CSP violation at the end proves the
//! collector would have seen one.
//!
//! Finding, launching and watching Chromium: `common/chromium.rs`.

#[path = "common/chromium.rs"]
mod chromium;
mod common;

use std::time::{Duration, Instant};

use chromium::{
    assert_no_errors, check_page, chromium, click_and_wait, eval, fill, is_client_detail,
    subject_public_key_info, text_of, visit, Chromium, STEP,
};
use secrecy::SecretString;
use zf_domain::{IdNumber, Uscc, Username};
use zf_policy::Role;

const USERNAME: &str = "lisi";
const ONE_TIME_PASSWORD: &str = "one-time secret 4 browser";
const NEW_PASSWORD: &str = "correct horse battery staple 7";
const COMPANY: &str = "上海浏览器测试贸易有限公司";
const LEGAL_REP: &str = "王五";

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

    let chromium = Chromium::launch(&executable, &server).await;
    let (page, problems) = chromium.page().await;

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

    assert_no_errors(&page, &problems).await;

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
        assert!(csp.contains("script-src 'self';"), "CSP on {path}: {csp}");
    }

    chromium.close().await;
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
