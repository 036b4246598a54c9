//! Tamper evidence against the real stores: each kind of tampering, done directly in the
//! database, is named by verification; an untouched log verifies; several writers keep one chain.

mod common;

use common::{client_body, disable_audit_triggers, id_number, sql, Backend, TestServer};
use zf_audit::Finding;
use zf_policy::Role;

on_both_stores!(
    an_untouched_log_verifies_and_checkpoints_are_signed,
    an_edited_event_is_named,
    a_deleted_event_is_named,
    an_inserted_event_is_named,
    reordered_events_are_named,
    a_truncated_tail_is_named_by_the_head_and_by_an_exported_checkpoint,
);

/// A server with some history: sign-ins, clients created, read and updated. At least 13 events.
async fn busy(b: Backend) -> Option<TestServer> {
    let s = TestServer::start(b).await?;
    let acc = s.signed_in("shenji", Role::Accountant).await;
    for n in 0..5 {
        let c = acc
            .create_client(&client_body(400 + n, &id_number(400 + n)))
            .await;
        let id = c["id"].as_str().unwrap();
        acc.get(&format!("/api/v1/clients/{id}")).await;
    }
    assert!(s.audit().await.len() >= 13);
    Some(s)
}

async fn findings(s: &TestServer) -> Vec<Finding> {
    s.app.audit_verify(&[]).await.unwrap().findings
}

async fn an_untouched_log_verifies_and_checkpoints_are_signed(b: Backend) {
    let Some(s) = busy(b).await else { return };
    let cp = s
        .app
        .audit_checkpoint()
        .await
        .unwrap()
        .expect("a checkpoint");
    assert!(cp.signed_by(&s.app.audit_public_key()));
    assert!(
        s.app.audit_checkpoint().await.unwrap().is_none(),
        "nothing new to seal"
    );
    let report = s.app.audit_verify(&[cp]).await.unwrap();
    assert!(report.is_intact(), "{:?}", report.findings);
    assert_eq!(report.events, s.audit().await.len() as u64);
    // Seqs are contiguous from 1 and every event links to the one before.
    let events = s.audit().await;
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.seq, i as i64 + 1);
        if i > 0 {
            assert_eq!(e.prev_hash, events[i - 1].hash);
        }
    }
}

async fn an_edited_event_is_named(b: Backend) {
    let Some(s) = busy(b).await else { return };
    disable_audit_triggers(&s).await;
    sql(
        &s,
        &["UPDATE audit_events SET actor_name = 'somebody else' WHERE seq = 5"],
    )
    .await;
    assert_eq!(findings(&s).await, vec![Finding::Edited { seq: 5 }]);
}

async fn a_deleted_event_is_named(b: Backend) {
    let Some(s) = busy(b).await else { return };
    disable_audit_triggers(&s).await;
    sql(&s, &["DELETE FROM audit_events WHERE seq = 7"]).await;
    assert_eq!(
        findings(&s).await,
        vec![Finding::Deleted { first: 7, last: 7 }]
    );
}

async fn an_inserted_event_is_named(b: Backend) {
    let Some(s) = busy(b).await else { return };
    disable_audit_triggers(&s).await;
    let forged_hash = if s.schema.is_none() {
        "randomblob(32)"
    } else {
        "sha256('forged'::bytea)"
    };
    sql(
        &s,
        &[
            // Make room at 6 (in two steps, so no two rows ever share a seq)…
            "UPDATE audit_events SET seq = -seq - 1000000 WHERE seq >= 6",
            "UPDATE audit_events SET seq = -(seq + 1000000) + 1 WHERE seq < 0",
            // …and put a plausible forgery there.
            &format!(
                "INSERT INTO audit_events (seq, id, at, actor_user_id, actor_name, session_ref, source,
                     action, resource, record_id, fields, outcome, request_id, detail, prev_hash, hash)
                 SELECT 6, 'forged', at, actor_user_id, actor_name, session_ref, source, action,
                     resource, record_id, fields, outcome, request_id, detail, hash, {forged_hash}
                 FROM audit_events WHERE seq = 5"
            ),
        ],
    )
    .await;
    let f = findings(&s).await;
    assert_eq!(f[0], Finding::Inserted { seq: 6 }, "{f:?}");
}

async fn reordered_events_are_named(b: Backend) {
    let Some(s) = busy(b).await else { return };
    disable_audit_triggers(&s).await;
    sql(
        &s,
        &[
            "UPDATE audit_events SET seq = -1 WHERE seq = 4",
            "UPDATE audit_events SET seq = 4 WHERE seq = 11",
            "UPDATE audit_events SET seq = 11 WHERE seq = -1",
        ],
    )
    .await;
    let f = findings(&s).await;
    assert_eq!(
        f[0],
        Finding::Reordered {
            seq: 4,
            original_seq: 11
        },
        "{f:?}"
    );
    assert!(
        f.contains(&Finding::Reordered {
            seq: 11,
            original_seq: 4
        }),
        "{f:?}"
    );
}

async fn a_truncated_tail_is_named_by_the_head_and_by_an_exported_checkpoint(b: Backend) {
    let Some(s) = busy(b).await else { return };
    let exported = s.app.audit_checkpoint().await.unwrap().expect("checkpoint");
    let last = exported.seq;
    disable_audit_triggers(&s).await;
    sql(
        &s,
        &[&format!(
            "DELETE FROM audit_events WHERE seq > {}",
            last - 3
        )],
    )
    .await;
    assert_eq!(
        findings(&s).await,
        vec![
            Finding::Truncated {
                last_present: last - 3,
                expected: last,
                evidence: "the chain head".into()
            },
            Finding::Truncated {
                last_present: last - 3,
                expected: last,
                evidence: "a signed checkpoint (database)".into()
            },
        ]
    );
    // A careful intruder rewinds the head and removes the checkpoint too; the copy kept outside
    // the database still tells.
    let rewind = format!(
        "UPDATE audit_head SET seq = {}, hash = (SELECT hash FROM audit_events WHERE seq = {})",
        last - 3,
        last - 3
    );
    if s.schema.is_none() {
        sql(
            &s,
            &[
                "DROP TRIGGER audit_checkpoints_no_delete",
                "DELETE FROM audit_checkpoints",
                &rewind,
            ],
        )
        .await;
    } else {
        sql(
            &s,
            &[
                "ALTER TABLE audit_checkpoints DISABLE TRIGGER USER",
                "DELETE FROM audit_checkpoints",
                &rewind,
            ],
        )
        .await;
    }
    assert_eq!(
        findings(&s).await,
        vec![],
        "without outside evidence the truncation is invisible"
    );
    let report = s.app.audit_verify(&[exported]).await.unwrap();
    assert_eq!(
        report.findings,
        vec![Finding::Truncated {
            last_present: last - 3,
            expected: last,
            evidence: "a signed checkpoint (exported checkpoint)".into()
        }]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_writing_at_once_keep_one_chain_on_postgres() {
    let Some(a) = TestServer::start(Backend::Postgres).await else {
        return;
    };
    // A second node: same database, same master key, its own application and pool.
    let node_b = zf_server::Instance::open(
        &a.data_dir(),
        a.database.clone(),
        zf_app::AppConfig::default(),
    )
    .await
    .unwrap();
    let session_a = a.signed_in("node-a", Role::Supervisor).await;
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let app = if w == 0 {
                a.app.clone()
            } else {
                node_b.app.clone()
            };
            tokio::spawn(async move {
                for i in 0..60 {
                    let meta = zf_app::RequestMeta::default();
                    app.audit_denied(
                        None,
                        zf_policy::Operation::ClientRead,
                        &format!("writer {w} #{i}"),
                        &meta,
                    )
                    .await
                    .unwrap();
                }
            })
        })
        .collect();
    for n in 0..20 {
        session_a
            .create_client(&client_body(500 + n, &id_number(500 + n)))
            .await;
    }
    for w in writers {
        w.await.unwrap();
    }
    let report = node_b.app.audit_verify(&[]).await.unwrap();
    assert!(report.is_intact(), "{:?}", report.findings);
    assert!(report.events >= 140, "{}", report.events);
}
