//! A ciphertext moved to another row fails to decrypt: the caller gets an error, never the
//! other client's value.

mod common;

use common::{client_body, id_number, Backend, TestServer};
use reqwest::StatusCode;
use serde_json::Value;
use zf_policy::Role;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swapped_ciphertext_is_an_error_not_the_other_clients_value() {
    let s = TestServer::start(Backend::Sqlite).await.unwrap();
    let acc = s.signed_in("jiaohuan", Role::Accountant).await;
    let (first, second) = (id_number(201), id_number(202));
    let a: Value = acc.create_client(&client_body(201, &first)).await;
    let b: Value = acc.create_client(&client_body(202, &second)).await;
    let (a_id, b_id) = (a["id"].as_str().unwrap(), b["id"].as_str().unwrap());

    let db = rusqlite::Connection::open(s.data_dir().join("zhangfang.db")).unwrap();
    db.execute(
        "UPDATE clients SET legal_rep_id_number =
             (SELECT legal_rep_id_number FROM clients WHERE id = ?1) WHERE id = ?2",
        [b_id, a_id],
    )
    .unwrap();
    drop(db);

    let r = acc.get(&format!("/api/v1/clients/{a_id}")).await;
    assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let text = r.text().await.unwrap();
    assert!(
        !text.contains(&second),
        "the other client's number leaked: {text}"
    );
    assert!(text.contains("request_id"));
    // The untouched row still reads.
    let r: Value = acc
        .get(&format!("/api/v1/clients/{b_id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(r["legal_rep_id_number"]["value"], second.as_str());

    // Directly in the application: the error names the integrity failure.
    let grant_err = s
        .app
        .client_list(
            &zf_policy::decide(
                Some(&zf_policy::Principal {
                    user_id: zf_domain::UserId::new_random(),
                    username: zf_domain::Username::parse("zhuguan").unwrap(),
                    role: Role::Supervisor,
                    custom_role: None,
                    team: None,
                    must_change_password: false,
                    authentication: zf_policy::Authentication::MultiFactor { fresh: true },
                    factors: zf_policy::Factors::default(),
                    token: None,
                }),
                zf_policy::Operation::ClientList,
            )
            .unwrap(),
            &zf_app::ClientFilter::default(),
        )
        .await
        .unwrap_err();
    assert!(grant_err.to_string().contains("integrity"), "{grant_err}");
}
