//! Passkeys in a real browser: headless Chromium with a virtual authenticator (the DevTools
//! protocol's WebAuthn domain: CTAP2, internal transport, resident keys, user verification)
//! registers a passkey on the security page — as the way an accountant meets the requirement
//! for a second factor — and then signs in with it alone, through the page's one script.
//!
//! The pages are opened at `https://localhost:<port>`: browsers accept no IP address as an
//! RP ID, and the server's `[webauthn]` origin is that one.

#[path = "common/chromium.rs"]
mod chromium;
mod common;

use std::time::{Duration, Instant};

use chromium::{
    assert_no_errors, check_page, chromium, click_and_wait, eval, fill, wait_for_path, Chromium,
    STEP,
};
use chromiumoxide::cdp::browser_protocol::web_authn::{
    AddVirtualAuthenticatorParams, AuthenticatorProtocol, AuthenticatorTransport, Ctap2Version,
    EnableParams, GetCredentialsParams, VirtualAuthenticatorOptions,
};
use chromiumoxide::Page;
use secrecy::SecretString;
use zf_domain::Username;
use zf_policy::Role;

const USERNAME: &str = "zhaoliu";
const ONE_TIME_PASSWORD: &str = "one-time secret 4 passkeys";
const NEW_PASSWORD: &str = "correct horse battery staple 9";

async fn go(page: &Page, server: &common::TestServer, path: &str) {
    let url = format!("{}{path}", server.origin);
    tokio::time::timeout(STEP, page.goto(url))
        .await
        .unwrap_or_else(|_| panic!("timed out loading {path}"))
        .unwrap_or_else(|e| panic!("load {path}: {e}"));
    wait_for_path(page, path, |p| p == path).await;
}

async fn wait_until(page: &Page, what: &str, condition: &str) {
    let deadline = Instant::now() + STEP;
    loop {
        if eval(page, condition).await == Ok(true.into()) {
            return;
        }
        let status = eval(
            page,
            "(document.getElementById('webauthn-status') || {}).textContent || ''",
        )
        .await
        .unwrap_or_default();
        assert!(Instant::now() < deadline, "{what}; status line: {status}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passkey_registered_in_the_ui_signs_in_alone() {
    let Some(executable) = chromium() else {
        return;
    };
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

    let chromium = Chromium::launch(&executable, &server).await;
    let (page, problems) = chromium.page().await;
    page.execute(EnableParams::default())
        .await
        .expect("WebAuthn.enable");
    let options = VirtualAuthenticatorOptions::builder()
        .protocol(AuthenticatorProtocol::Ctap2)
        .ctap2_version(Ctap2Version::Ctap21)
        .transport(AuthenticatorTransport::Internal)
        .has_resident_key(true)
        .has_user_verification(true)
        .is_user_verified(true)
        .automatic_presence_simulation(true)
        .build()
        .expect("authenticator options");
    let authenticator = page
        .execute(AddVirtualAuthenticatorParams::new(options))
        .await
        .expect("WebAuthn.addVirtualAuthenticator")
        .result
        .authenticator_id;

    // Sign in with the one-time password and replace it: an accountant then must set up a
    // second factor before anything else, and chooses a passkey.
    go(&page, &server, "/login").await;
    check_page(&page, "zh-CN").await;
    fill(&page, "#username", USERNAME).await;
    fill(&page, "#password", ONE_TIME_PASSWORD).await;
    click_and_wait(
        &page,
        "form[action='/login'] button[type=submit]",
        "/password after login",
        |p| p == "/password",
    )
    .await;
    fill(&page, "#current_password", ONE_TIME_PASSWORD).await;
    fill(&page, "#new_password", NEW_PASSWORD).await;
    click_and_wait(
        &page,
        "form.card button[type=submit]",
        "/mfa after the password change",
        |p| p == "/mfa",
    )
    .await;
    check_page(&page, "zh-CN").await;
    wait_until(
        &page,
        "the script shows the registration form",
        "!document.getElementById('webauthn-register').hidden",
    )
    .await;
    fill(&page, "#key-name", "笔记本指纹").await;
    page.find_element("#webauthn-register button[type=submit]")
        .await
        .expect("register button")
        .click()
        .await
        .expect("click register");
    wait_until(
        &page,
        "the new passkey is listed",
        "document.querySelector('tr.security-key td.key-name') !== null",
    )
    .await;
    check_page(&page, "zh-CN").await;
    assert_eq!(
        eval(
            &page,
            "document.querySelector('tr.security-key td.key-name').innerText"
        )
        .await,
        Ok("笔记本指纹".into())
    );
    // The passkey is the account's second factor now: the rest of the UI is open.
    go(&page, &server, "/clients").await;

    // Sign out, then sign in with the passkey alone.
    click_and_wait(
        &page,
        "form[action='/logout'] button[type=submit]",
        "/login after signing out",
        |p| p == "/login",
    )
    .await;
    wait_until(
        &page,
        "the script shows the passkey button",
        "!document.getElementById('webauthn-get').hidden",
    )
    .await;
    page.find_element("#webauthn-get")
        .await
        .expect("passkey button")
        .click()
        .await
        .expect("click passkey");
    wait_for_path(&page, "/clients after the passkey", |p| p == "/clients").await;
    check_page(&page, "zh-CN").await;
    assert_eq!(
        eval(
            &page,
            "document.querySelector('span.user strong').innerText"
        )
        .await,
        Ok(USERNAME.into())
    );

    // The authenticator holds one resident credential, used twice (made, then signed with).
    let held = page
        .execute(GetCredentialsParams::new(authenticator))
        .await
        .expect("WebAuthn.getCredentials")
        .result
        .credentials;
    assert_eq!(held.len(), 1);
    assert!(held[0].is_resident_credential);
    assert!(held[0].sign_count >= 1, "sign count {}", held[0].sign_count);
    let events = server.audit().await;
    assert!(events
        .iter()
        .any(|e| e.action == "security_key_registered" && e.outcome == "success"));
    assert!(events.iter().any(|e| e.action == "login"
        && e.outcome == "success"
        && e.detail.as_deref().is_some_and(|d| d.contains("passkey"))));

    assert_no_errors(&page, &problems).await;
    chromium.close().await;
}
