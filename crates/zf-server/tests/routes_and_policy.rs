//! Every route meets every role: the answer always agrees with the policy, no route escapes
//! it, and the API routes and the OpenAPI document describe the same set.

mod common;

use std::collections::BTreeSet;

use common::{Backend, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use zf_policy::{Operation, Requirement, Role};
use zf_server::routes::Verb;

fn concrete(path: &str) -> String {
    path.replace("{id}", "00000000-0000-4000-8000-000000000000")
}

fn method(v: Verb) -> Method {
    match v {
        Verb::Get => Method::GET,
        Verb::Post => Method::POST,
        Verb::Put => Method::PUT,
        Verb::Patch => Method::PATCH,
        Verb::Delete => Method::DELETE,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_with_every_role_agrees_with_the_policy() {
    let s = TestServer::start(Backend::Sqlite).await.unwrap();
    let mut sessions = Vec::new();
    for role in Role::ALL {
        let name = format!("u-{}", role.as_str().replace('_', "-"));
        sessions.push((Some(role), s.signed_in(&name, role).await.client));
    }
    sessions.push((None, s.client(false)));
    let table = zf_server::route_table();
    assert!(table.len() >= 20);
    let mut cases = 0;
    for spec in &table {
        for (role, client) in &sessions {
            // Logging out would end the session the next routes need.
            if spec.operation == Operation::Logout {
                continue;
            }
            let allowed = match (spec.operation.requirement(), role) {
                (Requirement::Public, _) => true,
                (_, None) => false,
                (Requirement::PasswordVerified | Requirement::SignedIn, Some(_)) => true,
                (Requirement::Permission(p), Some(r)) => r.may(p),
            } && match role {
                // A critical operation needs a fresh second factor: these sessions verified
                // one when they enrolled, and roles without an authenticator have none.
                Some(r) if spec.operation.needs_fresh_second_factor() => {
                    s.app.config().mfa.requires(*r)
                }
                _ => true,
            };
            let r = client
                .request(method(spec.verb), s.url(&concrete(spec.path)))
                .header("content-type", "application/json")
                .body("{}")
                .send()
                .await
                .unwrap();
            let status = r.status();
            let refused = status == StatusCode::UNAUTHORIZED
                || status == StatusCode::FORBIDDEN
                || (status == StatusCode::SEE_OTHER
                    && spec.operation != Operation::PublicDocument
                    && matches!(
                        r.headers()["location"].to_str().unwrap_or(""),
                        // Signed out, or a critical operation sent to set up or verify a factor.
                        "/login" | "/mfa"
                    ));
            cases += 1;
            let what = format!("{:?} {} as {role:?} → {status}", spec.verb, spec.path);
            assert!(!status.is_server_error(), "{what}");
            if allowed {
                assert!(
                    !refused || spec.path.ends_with("/session") && spec.verb == Verb::Post,
                    "{what} should be allowed"
                );
            } else {
                assert!(refused, "{what} should be refused");
            }
        }
    }
    let logout_routes = table
        .iter()
        .filter(|r| r.operation == Operation::Logout)
        .count();
    assert_eq!(cases, (table.len() - logout_routes) * sessions.len());
    println!(
        "{cases} route × role cases ({} routes, {} callers)",
        table.len(),
        sessions.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_lists_exactly_the_api_routes() {
    let s = TestServer::start(Backend::Sqlite).await.unwrap();
    let doc: Value = s
        .client(false)
        .get(s.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for verb in item.as_object().unwrap().keys() {
            documented.insert((verb.to_uppercase(), path.clone()));
        }
    }
    let routed: BTreeSet<_> = zf_server::route_table()
        .into_iter()
        .filter(|r| r.path.starts_with("/api/v1/") && r.path != "/api/v1/openapi.json")
        .map(|r| (method(r.verb).to_string(), r.path.to_owned()))
        .collect();
    assert_eq!(documented, routed);
}

#[test]
fn every_operation_is_routed() {
    let routed: BTreeSet<_> = zf_server::route_table()
        .into_iter()
        .map(|r| format!("{:?}", r.operation))
        .collect();
    for op in Operation::ALL {
        assert!(routed.contains(&format!("{op:?}")), "{op:?} has no route");
    }
}
