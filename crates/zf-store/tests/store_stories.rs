//! One suite of stories for the `Store` trait, run against both implementations: SQLite on a
//! fresh file and PostgreSQL on a fresh schema (see `common`). A story uses the store only
//! through the trait; it goes around the store with raw SQL only to play the attacker or the
//! future (editing the audit log, moving ciphertext, a newer schema).

mod common;

use common::fixtures::*;
use common::{on_both_backends, Kind, TestDb};
use zf_audit::{Actor, AuditAction, AuditEvent, Outcome};
use zf_crypto::{BlindIndexKey, CryptoError, Dek, KeyVersion, WrappedKey};
use zf_domain::{ClientId, ClientName, PersonName, TaxpayerType, UserId};
use zf_policy::{Role, Scope};
use zf_store::{ClientChange, Page, PasswordHash, StoreError, Unique, MIGRATIONS};

on_both_backends! {
    migrations_are_idempotent_and_refuse_a_newer_schema
        => migrations_are_idempotent_and_refuse_a_newer_schema_sqlite,
           migrations_are_idempotent_and_refuse_a_newer_schema_postgres;
    nodes_starting_together_agree
        => nodes_starting_together_agree_sqlite, nodes_starting_together_agree_postgres;
    system_key_first_candidate_wins
        => system_key_first_candidate_wins_sqlite, system_key_first_candidate_wins_postgres;
    users_are_created_once_and_change_passwords_with_an_event
        => users_are_created_once_and_change_passwords_with_an_event_sqlite,
           users_are_created_once_and_change_passwords_with_an_event_postgres;
    sessions_live_and_end
        => sessions_live_and_end_sqlite, sessions_live_and_end_postgres;
    clients_are_sealed_scoped_and_versioned
        => clients_are_sealed_scoped_and_versioned_sqlite,
           clients_are_sealed_scoped_and_versioned_postgres;
    client_delete_destroys_the_key
        => client_delete_destroys_the_key_sqlite, client_delete_destroys_the_key_postgres;
    audit_log_is_append_only_and_reads_back_what_was_written
        => audit_log_is_append_only_and_reads_back_what_was_written_sqlite,
           audit_log_is_append_only_and_reads_back_what_was_written_postgres;
    every_write_commits_its_event_and_only_with_its_change
        => every_write_commits_its_event_and_only_with_its_change_sqlite,
           every_write_commits_its_event_and_only_with_its_change_postgres;
    ciphertext_moved_to_another_row_fails_authentication
        => ciphertext_moved_to_another_row_fails_authentication_sqlite,
           ciphertext_moved_to_another_row_fails_authentication_postgres;
    unreadable_stored_values_are_reported_as_corrupt
        => unreadable_stored_values_are_reported_as_corrupt_sqlite,
           unreadable_stored_values_are_reported_as_corrupt_postgres;
    a_second_factor_is_sealed_confirmed_and_used_once
        => a_second_factor_is_sealed_confirmed_and_used_once_sqlite,
           a_second_factor_is_sealed_confirmed_and_used_once_postgres;
    sessions_are_listed_revoked_and_limited
        => sessions_are_listed_revoked_and_limited_sqlite,
           sessions_are_listed_revoked_and_limited_postgres;
    writes_at_once_commit_together_and_fail_alone
        => writes_at_once_commit_together_and_fail_alone_sqlite,
           writes_at_once_commit_together_and_fail_alone_postgres;
}

const ALL: Page = Page {
    offset: 0,
    limit: 100,
};

// --- 1. migrations ---------------------------------------------------------------------------

async fn migrations_are_idempotent_and_refuse_a_newer_schema(db: &TestDb) {
    let latest = MIGRATIONS.last().expect("at least one migration").version;
    let first = db.store().await;
    let admin = new_user("admin", Role::SystemAdmin);
    first
        .user_create(admin.clone(), event(AuditAction::UserCreated))
        .await
        .unwrap();
    let events = audit_log(first.as_ref()).await;

    // A second open (a restart, or a second node) finds everything in place and changes nothing.
    let second = db.store().await;
    let third = db.store().await;
    assert_eq!(
        db.query_i64("SELECT COUNT(*) FROM schema_migrations").await,
        MIGRATIONS.len() as i64,
        "each migration is recorded once"
    );
    assert_eq!(
        db.query_i64("SELECT MAX(version) FROM schema_migrations")
            .await,
        latest
    );
    let found = third
        .user_by_username(&admin.username)
        .await
        .unwrap()
        .expect("data survives reopening");
    assert_same_user(&found, &admin);
    assert_eq!(audit_log(second.as_ref()).await, events);
    drop((first, second, third));

    // A database migrated by a newer binary is left alone, not "repaired" downwards.
    db.exec(&format!(
        "INSERT INTO schema_migrations (version, name, applied_at) \
         VALUES ({}, 'from the future', 0)",
        latest + 1
    ))
    .await
    .unwrap();
    match db.open().await {
        Err(StoreError::NewerSchema { found, known }) => {
            assert_eq!((found, known), (latest + 1, latest));
        }
        Err(other) => panic!("expected NewerSchema, got {other:?}"),
        Ok(_) => panic!("a store opened a database with a newer schema"),
    }
    assert_eq!(
        db.query_i64("SELECT COUNT(*) FROM schema_migrations").await,
        MIGRATIONS.len() as i64 + 1,
        "the refused open wrote nothing"
    );
    assert_eq!(db.query_i64("SELECT COUNT(*) FROM users").await, 1);
}

/// Several nodes starting on one empty database: migrations run once, one first administrator
/// is created, and everyone ends up with the same system key.
async fn nodes_starting_together_agree(db: &TestDb) {
    const NODES: usize = 4;
    let opened = futures_join_all((0..NODES).map(|_| db.open())).await;
    let nodes: Vec<_> = opened
        .into_iter()
        .map(|r| r.expect("every node opens"))
        .collect();
    assert_eq!(
        db.query_i64("SELECT COUNT(*) FROM schema_migrations").await,
        MIGRATIONS.len() as i64
    );

    let admins: Vec<_> = (0..NODES)
        .map(|i| new_user(&format!("admin{i}"), Role::SystemAdmin))
        .collect();
    let created = futures_join_all(nodes.iter().zip(&admins).map(|(node, admin)| {
        node.user_create_first(admin.clone(), event(AuditAction::SetupAdministratorCreated))
    }))
    .await;
    let created: Vec<bool> = created.into_iter().map(|r| r.unwrap()).collect();
    assert_eq!(
        created.iter().filter(|c| **c).count(),
        1,
        "exactly one node creates the first administrator: {created:?}"
    );
    assert_eq!(nodes[0].user_count().await.unwrap(), 1);
    assert_eq!(audit_log(nodes[0].as_ref()).await.len(), 1);

    let keys = Keys::default();
    let candidates: Vec<_> = (0..NODES)
        .map(|_| {
            keys.kek
                .wrap_blind_index_key(&BlindIndexKey::generate(), b"system:blind-index/v1")
        })
        .collect();
    let stored = futures_join_all(
        nodes
            .iter()
            .zip(&candidates)
            .map(|(node, c)| node.system_key_get_or_insert("blind-index/v1", c.clone(), T0)),
    )
    .await;
    let stored: Vec<WrappedKey> = stored.into_iter().map(|r| r.unwrap()).collect();
    assert!(
        candidates.contains(&stored[0]),
        "the stored key is one of the candidates"
    );
    assert!(stored.iter().all(|k| *k == stored[0]), "all nodes agree");
}

/// `join_all` without a dependency: every future runs concurrently on the runtime.
async fn futures_join_all<F>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future,
{
    let mut pinned: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, slot) in pinned.iter_mut().zip(out.iter_mut()) {
            if slot.is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *slot = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().map(|v| v.expect("completed")).collect()
}

// --- 2. system keys --------------------------------------------------------------------------

async fn system_key_first_candidate_wins(db: &TestDb) {
    let store = db.store().await;
    let keys = Keys::default();
    let context = b"system:blind-index/v1";
    let first_key = BlindIndexKey::generate();
    let first = keys.kek.wrap_blind_index_key(&first_key, context);
    let second = keys
        .kek
        .wrap_blind_index_key(&BlindIndexKey::generate(), context);
    assert_ne!(first, second);

    let stored = store
        .system_key_get_or_insert("blind-index/v1", first.clone(), T0)
        .await
        .unwrap();
    assert_eq!(stored, first, "the first candidate is stored");
    let again = store
        .system_key_get_or_insert("blind-index/v1", second.clone(), T0 + 1)
        .await
        .unwrap();
    assert_eq!(again, first, "a later candidate does not replace it");
    let unwrapped = keys
        .kek
        .unwrap_blind_index_key(&again, context)
        .expect("the stored key unwraps");
    assert_eq!(unwrapped.index("d", b"v"), first_key.index("d", b"v"));

    let other = store
        .system_key_get_or_insert("another-key", second.clone(), T0)
        .await
        .unwrap();
    assert_eq!(other, second, "keys are stored per name");

    let reopened = db.store().await;
    assert_eq!(
        reopened
            .system_key_get_or_insert("blind-index/v1", second, T0 + 2)
            .await
            .unwrap(),
        first,
        "the key survives a restart"
    );
}

// --- 3. users --------------------------------------------------------------------------------

async fn users_are_created_once_and_change_passwords_with_an_event(db: &TestDb) {
    let store = db.store().await;
    assert_eq!(store.user_count().await.unwrap(), 0);

    // The first administrator: created once, then never again.
    let admin = new_user("admin", Role::SystemAdmin);
    let setup = event(AuditAction::SetupAdministratorCreated).on("users", admin.id);
    let created = expect_audit(
        store.as_ref(),
        "user_create_first on an empty database",
        Some(&setup),
        store.user_create_first(admin.clone(), setup.clone()),
    )
    .await
    .unwrap();
    assert!(created);
    let latecomer = new_user("latecomer", Role::SystemAdmin);
    let created = expect_audit(
        store.as_ref(),
        "user_create_first once a user exists",
        None,
        store.user_create_first(
            latecomer.clone(),
            event(AuditAction::SetupAdministratorCreated),
        ),
    )
    .await
    .unwrap();
    assert!(!created);
    assert!(store
        .user_by_username(&latecomer.username)
        .await
        .unwrap()
        .is_none());
    assert_eq!(store.user_count().await.unwrap(), 1);

    // An ordinary user.
    let alice = new_user("alice", Role::Accountant);
    let made = event(AuditAction::UserCreated).on("users", alice.id);
    expect_audit(
        store.as_ref(),
        "user_create",
        Some(&made),
        store.user_create(alice.clone(), made.clone()),
    )
    .await
    .unwrap();
    let found = store
        .user_by_username(&alice.username)
        .await
        .unwrap()
        .expect("alice exists");
    assert_same_user(&found, &alice);
    assert!(store
        .user_by_username(&username("nobody"))
        .await
        .unwrap()
        .is_none());

    // The same username again (usernames are case-folded, so "ALICE" is "alice").
    let mut impostor = new_user("ALICE", Role::Supervisor);
    impostor.password_hash = PasswordHash("$argon2id$impostor".into());
    let refused = expect_audit(
        store.as_ref(),
        "user_create with a taken username",
        None,
        store.user_create(impostor.clone(), event(AuditAction::UserCreated)),
    )
    .await;
    assert!(
        matches!(refused, Err(StoreError::Conflict(Unique::Username))),
        "expected Conflict(Username), got {refused:?}"
    );
    assert_eq!(store.user_count().await.unwrap(), 2);
    assert_same_user(
        &store
            .user_by_username(&alice.username)
            .await
            .unwrap()
            .unwrap(),
        &alice,
    );

    // A password change replaces the hash and the flag, and records when.
    let changed_at = T0 + 60_000;
    let new_hash = PasswordHash("$argon2id$v=19$new".into());
    let change = event(AuditAction::PasswordChanged).on("users", alice.id);
    expect_audit(
        store.as_ref(),
        "user_set_password",
        Some(&change),
        store.user_set_password(
            alice.id,
            new_hash.clone(),
            false,
            changed_at,
            change.clone(),
        ),
    )
    .await
    .unwrap();
    let after = store
        .user_by_username(&alice.username)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.password_hash, new_hash);
    assert!(!after.must_change_password);
    assert_eq!(after.password_changed_at_ms, changed_at);
    assert_eq!(after.created_at_ms, alice.created_at_ms);
    assert_eq!(after.role, alice.role);
    // ...and can set the flag again (an administrator's reset).
    store
        .user_set_password(
            alice.id,
            PasswordHash("$argon2id$reset".into()),
            true,
            changed_at + 1,
            event(AuditAction::PasswordChanged),
        )
        .await
        .unwrap();
    let reset = store
        .user_by_username(&alice.username)
        .await
        .unwrap()
        .unwrap();
    assert!(reset.must_change_password);
    assert_eq!(reset.password_hash.0, "$argon2id$reset");

    let missing = expect_audit(
        store.as_ref(),
        "user_set_password for an unknown user",
        None,
        store.user_set_password(
            UserId::new_random(),
            PasswordHash("x".into()),
            false,
            changed_at,
            event(AuditAction::PasswordChanged),
        ),
    )
    .await;
    assert!(matches!(missing, Err(StoreError::NotFound)), "{missing:?}");
    // The admin's row was not touched by any of this.
    assert_same_user(
        &store
            .user_by_username(&admin.username)
            .await
            .unwrap()
            .unwrap(),
        &admin,
    );
}

// --- 4. sessions -----------------------------------------------------------------------------

async fn sessions_live_and_end(db: &TestDb) {
    let store = db.store().await;
    let alice = new_user("alice", Role::Accountant);
    let bob = new_user("bob", Role::Accountant);
    for user in [&alice, &bob] {
        store
            .user_create(user.clone(), event(AuditAction::UserCreated))
            .await
            .unwrap();
    }

    let s1 = session(alice.id, 1);
    let login = event(AuditAction::Login).on("users", alice.id);
    expect_audit(
        store.as_ref(),
        "session_create",
        Some(&login),
        store.session_create(s1.clone(), None, login.clone()),
    )
    .await
    .unwrap();
    let (found, user) = store
        .session_get(&s1.id_hash)
        .await
        .unwrap()
        .expect("the session exists");
    assert_eq!(found, s1);
    assert_same_user(&user, &alice);
    assert!(store.session_get(&[9; 32]).await.unwrap().is_none());

    store.session_touch(&s1.id_hash, T0 + 5_000).await.unwrap();
    let (touched, _) = store.session_get(&s1.id_hash).await.unwrap().unwrap();
    let expected = zf_store::SessionRow {
        last_seen_ms: T0 + 5_000,
        ..s1.clone()
    };
    assert_eq!(touched, expected, "touch moves last_seen only");

    // A session of a user that does not exist is refused, with no login recorded.
    let orphan = expect_audit(
        store.as_ref(),
        "session_create for an unknown user",
        None,
        store.session_create(
            session(UserId::new_random(), 7),
            None,
            event(AuditAction::Login),
        ),
    )
    .await;
    assert!(orphan.is_err(), "a session needs its user");
    assert!(store.session_get(&[7; 32]).await.unwrap().is_none());

    // Logout ends the session with its event; expiry ends one silently.
    let logout = event(AuditAction::Logout).on("users", alice.id);
    expect_audit(
        store.as_ref(),
        "session_delete with an event",
        Some(&logout),
        store.session_delete(&s1.id_hash, Some(logout.clone())),
    )
    .await
    .unwrap();
    assert!(store.session_get(&s1.id_hash).await.unwrap().is_none());
    let s2 = session(alice.id, 2);
    store
        .session_create(s2.clone(), None, event(AuditAction::Login))
        .await
        .unwrap();
    expect_audit(
        store.as_ref(),
        "session_delete without an event",
        None,
        store.session_delete(&s2.id_hash, None),
    )
    .await
    .unwrap();
    assert!(store.session_get(&s2.id_hash).await.unwrap().is_none());

    // A password change ends the user's other sessions, keeps the current one, and leaves
    // other users alone.
    let mine = [
        session(alice.id, 3),
        session(alice.id, 4),
        session(alice.id, 5),
    ];
    let bobs = session(bob.id, 6);
    for s in mine.iter().chain([&bobs]) {
        store
            .session_create(s.clone(), None, event(AuditAction::Login))
            .await
            .unwrap();
    }
    store
        .session_delete_for_user(alice.id, Some(&mine[0].id_hash))
        .await
        .unwrap();
    assert!(store.session_get(&mine[0].id_hash).await.unwrap().is_some());
    assert!(store.session_get(&mine[1].id_hash).await.unwrap().is_none());
    assert!(store.session_get(&mine[2].id_hash).await.unwrap().is_none());
    assert!(store.session_get(&bobs.id_hash).await.unwrap().is_some());

    store.session_delete_for_user(alice.id, None).await.unwrap();
    assert!(store.session_get(&mine[0].id_hash).await.unwrap().is_none());
    let (still, owner) = store.session_get(&bobs.id_hash).await.unwrap().unwrap();
    assert_eq!(still, bobs);
    assert_eq!(owner.id, bob.id);
}

// --- 5. clients ------------------------------------------------------------------------------

async fn clients_are_sealed_scoped_and_versioned(db: &TestDb) {
    let store = db.store().await;
    let keys = Keys::default();
    let alice = new_user("alice", Role::Accountant);
    let bob = new_user("bob", Role::Accountant);
    for user in [&alice, &bob] {
        store
            .user_create(user.clone(), event(AuditAction::UserCreated))
            .await
            .unwrap();
    }

    // One person is legal representative of two companies; names chosen to sort the same in
    // any collation, inserted out of order.
    let shared_rep = id_number(1);
    let (a, a_key) = keys.client(1, "A 福州一号财税有限公司", &shared_rep, Some(alice.id));
    let (b, b_key) = keys.client(2, "B 厦门二号商贸有限公司", &id_number(2), Some(bob.id));
    let (c, c_key) = keys.client(3, "C 泉州三号科技有限公司", &shared_rep, Some(alice.id));
    let (d, d_key) = keys.client(4, "D 漳州四号咨询有限公司", &id_number(4), None);
    for (row, key) in [(&d, &d_key), (&b, &b_key), (&a, &a_key), (&c, &c_key)] {
        let created = event(AuditAction::ClientCreated).on("clients", row.id);
        expect_audit(
            store.as_ref(),
            "client_insert",
            Some(&created),
            store.client_insert(row.clone(), key.clone(), created.clone()),
        )
        .await
        .unwrap();
    }

    // Read back whole, and the sealed field opens for its own row.
    let got = store
        .client_get(Scope::All, a.id)
        .await
        .unwrap()
        .expect("client a in Scope::All");
    assert_same_client(&got.row, &a);
    assert_eq!(got.key.current.wrapped, a_key);
    assert_eq!(keys.open_id_number(&got).unwrap(), shared_rep.as_str());

    // Scope is a row filter, not a hint.
    assert!(store
        .client_get(Scope::AssignedTo(alice.id), a.id)
        .await
        .unwrap()
        .is_some());
    assert!(store
        .client_get(Scope::AssignedTo(bob.id), a.id)
        .await
        .unwrap()
        .is_none());
    assert!(store.client_get(Scope::None, a.id).await.unwrap().is_none());
    assert!(store
        .client_get(Scope::AssignedTo(alice.id), d.id)
        .await
        .unwrap()
        .is_none());
    assert!(store
        .client_get(Scope::All, ClientId::new_random())
        .await
        .unwrap()
        .is_none());

    // Listing: ordered by name, paged, scoped; counts agree.
    let listed = store.client_list(Scope::All, ALL).await.unwrap();
    assert_eq!(ids(&listed), vec![a.id, b.id, c.id, d.id]);
    for (record, expected) in listed.iter().zip([&a, &b, &c, &d]) {
        assert_same_client(&record.row, expected);
    }
    let page = |offset, limit| Page { offset, limit };
    assert_eq!(
        ids(&store.client_list(Scope::All, page(1, 2)).await.unwrap()),
        vec![b.id, c.id]
    );
    assert_eq!(
        ids(&store.client_list(Scope::All, page(3, 5)).await.unwrap()),
        vec![d.id]
    );
    assert!(store
        .client_list(Scope::All, page(4, 5))
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .client_list(Scope::All, page(0, 0))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        ids(&store
            .client_list(Scope::AssignedTo(alice.id), ALL)
            .await
            .unwrap()),
        vec![a.id, c.id]
    );
    assert_eq!(
        ids(&store
            .client_list(Scope::AssignedTo(alice.id), page(1, 1))
            .await
            .unwrap()),
        vec![c.id]
    );
    assert_eq!(
        ids(&store
            .client_list(Scope::AssignedTo(bob.id), ALL)
            .await
            .unwrap()),
        vec![b.id]
    );
    assert!(store
        .client_list(Scope::None, ALL)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(store.client_count(Scope::All).await.unwrap(), 4);
    assert_eq!(
        store
            .client_count(Scope::AssignedTo(alice.id))
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        store.client_count(Scope::AssignedTo(bob.id)).await.unwrap(),
        1
    );
    assert_eq!(
        store
            .client_count(Scope::AssignedTo(UserId::new_random()))
            .await
            .unwrap(),
        0
    );
    assert_eq!(store.client_count(Scope::None).await.unwrap(), 0);

    // Exact-match search goes through the blind index, within scope, and is always audited.
    let searched = event(AuditAction::ClientSearched).fields(&["legal_rep_id_number"]);
    let found = expect_audit(
        store.as_ref(),
        "client_find_by_id_number",
        Some(&searched),
        store.client_find_by_id_number(Scope::All, &[keys.index(&shared_rep)], searched.clone()),
    )
    .await
    .unwrap();
    assert_eq!(ids(&found), vec![a.id, c.id]);
    for record in &found {
        assert_eq!(keys.open_id_number(record).unwrap(), shared_rep.as_str());
    }
    let searched = event(AuditAction::ClientSearched);
    let none = expect_audit(
        store.as_ref(),
        "client_find_by_id_number out of scope",
        Some(&searched),
        store.client_find_by_id_number(
            Scope::AssignedTo(bob.id),
            &[keys.index(&shared_rep)],
            searched.clone(),
        ),
    )
    .await
    .unwrap();
    assert!(none.is_empty(), "bob's scope holds neither a nor c");
    assert!(store
        .client_find_by_id_number(
            Scope::None,
            &[keys.index(&shared_rep)],
            event(AuditAction::ClientSearched)
        )
        .await
        .unwrap()
        .is_empty());
    // Same number under another deployment's index key: no match.
    assert!(store
        .client_find_by_id_number(
            Scope::All,
            &[Keys::default().index(&shared_rep)],
            event(AuditAction::ClientSearched)
        )
        .await
        .unwrap()
        .is_empty());

    // A sensitive read is audited only when it returns something.
    let read = event(AuditAction::ClientSensitiveRead).on("clients", b.id);
    let got = expect_audit(
        store.as_ref(),
        "client_get_audited in scope",
        Some(&read),
        store.client_get_audited(Scope::AssignedTo(bob.id), b.id, read.clone()),
    )
    .await
    .unwrap()
    .expect("b is bob's");
    assert_same_client(&got.row, &b);
    let got = expect_audit(
        store.as_ref(),
        "client_get_audited out of scope",
        None,
        store.client_get_audited(
            Scope::AssignedTo(bob.id),
            a.id,
            event(AuditAction::ClientSensitiveRead),
        ),
    )
    .await
    .unwrap();
    assert!(got.is_none());

    // A second client with a taken USCC is refused whole: no row, no key, no event.
    let (mut dup, dup_key) = keys.client(5, "E 重复信用代码有限公司", &id_number(5), None);
    dup.uscc = a.uscc.clone();
    let refused = expect_audit(
        store.as_ref(),
        "client_insert with a taken USCC",
        None,
        store.client_insert(
            dup.clone(),
            dup_key.clone(),
            event(AuditAction::ClientCreated),
        ),
    )
    .await;
    assert!(
        matches!(refused, Err(StoreError::Conflict(Unique::ClientUscc))),
        "expected Conflict(ClientUscc), got {refused:?}"
    );
    assert_eq!(store.client_count(Scope::All).await.unwrap(), 4);
    assert!(store
        .client_get(Scope::All, dup.id)
        .await
        .unwrap()
        .is_none());
    // Its key row rolled back too: the same id goes in cleanly with a free USCC.
    dup.uscc = uscc(5);
    store
        .client_insert(dup.clone(), dup_key, event(AuditAction::ClientCreated))
        .await
        .expect("the refused insert left nothing behind");
    assert_eq!(store.client_count(Scope::All).await.unwrap(), 5);

    // Optimistic concurrency: a stale version changes nothing.
    let renamed = ClientName::parse("A 福州一号财税（集团）有限公司").unwrap();
    let stale = expect_audit(
        store.as_ref(),
        "client_update with a stale version",
        None,
        store.client_update(
            Scope::All,
            a.id,
            a.version + 1,
            ClientChange {
                name: Some(renamed.clone()),
                updated_at_ms: T0 + 100,
                ..ClientChange::default()
            },
            event(AuditAction::ClientUpdated),
        ),
    )
    .await;
    assert!(
        matches!(stale, Err(StoreError::VersionConflict)),
        "expected VersionConflict, got {stale:?}"
    );
    assert_same_client(
        &store
            .client_get(Scope::All, a.id)
            .await
            .unwrap()
            .unwrap()
            .row,
        &a,
    );

    // The right version applies the change, bumps the version and records the event.
    let new_rep = id_number(6);
    let a_dek = keys
        .kek
        .unwrap_key(&a_key, &key_context(a.id))
        .expect("a's key unwraps");
    let new_sealed = keys.seal(&a_dek, a.id, &new_rep);
    let updated = event(AuditAction::ClientUpdated)
        .on("clients", a.id)
        .fields(&["name", "taxpayer_type", "legal_rep_id_number"]);
    expect_audit(
        store.as_ref(),
        "client_update",
        Some(&updated),
        store.client_update(
            Scope::AssignedTo(alice.id),
            a.id,
            a.version,
            ClientChange {
                name: Some(renamed.clone()),
                taxpayer_type: Some(TaxpayerType::General),
                legal_rep_id_number: Some((new_sealed.clone(), keys.index(&new_rep))),
                updated_at_ms: T0 + 100,
                ..ClientChange::default()
            },
            updated.clone(),
        ),
    )
    .await
    .unwrap();
    let a2 = zf_store::ClientRow {
        name: renamed.clone(),
        taxpayer_type: TaxpayerType::General,
        legal_rep_id_number: new_sealed,
        legal_rep_id_index: keys.index(&new_rep),
        updated_at_ms: T0 + 100,
        version: a.version + 1,
        ..a.clone()
    };
    let got = store.client_get(Scope::All, a.id).await.unwrap().unwrap();
    assert_same_client(&got.row, &a2);
    assert_eq!(keys.open_id_number(&got).unwrap(), new_rep.as_str());
    assert_eq!(
        ids(&store
            .client_find_by_id_number(
                Scope::All,
                &[keys.index(&shared_rep)],
                event(AuditAction::ClientSearched)
            )
            .await
            .unwrap()),
        vec![c.id],
        "the old index no longer finds a"
    );
    // The version that just succeeded is now stale.
    let again = store
        .client_update(
            Scope::All,
            a.id,
            a.version,
            ClientChange {
                legal_rep_name: Some(PersonName::parse("李四").unwrap()),
                updated_at_ms: T0 + 200,
                ..ClientChange::default()
            },
            event(AuditAction::ClientUpdated),
        )
        .await;
    assert!(
        matches!(again, Err(StoreError::VersionConflict)),
        "{again:?}"
    );

    // Changing the USCC to one that is taken is a conflict and changes nothing.
    let taken = expect_audit(
        store.as_ref(),
        "client_update to a taken USCC",
        None,
        store.client_update(
            Scope::All,
            a.id,
            a2.version,
            ClientChange {
                uscc: Some(b.uscc.clone()),
                updated_at_ms: T0 + 300,
                ..ClientChange::default()
            },
            event(AuditAction::ClientUpdated),
        ),
    )
    .await;
    assert!(
        matches!(taken, Err(StoreError::Conflict(Unique::ClientUscc))),
        "expected Conflict(ClientUscc), got {taken:?}"
    );
    assert_same_client(
        &store
            .client_get(Scope::All, a.id)
            .await
            .unwrap()
            .unwrap()
            .row,
        &a2,
    );

    // Out of scope, an update or delete finds nothing to act on.
    for (scope, what) in [
        (Scope::AssignedTo(bob.id), "another accountant's scope"),
        (Scope::None, "Scope::None"),
    ] {
        let update = expect_audit(
            store.as_ref(),
            what,
            None,
            store.client_update(
                scope,
                a.id,
                a2.version,
                ClientChange {
                    name: Some(ClientName::parse("Hijacked Ltd").unwrap()),
                    updated_at_ms: T0 + 400,
                    ..ClientChange::default()
                },
                event(AuditAction::ClientUpdated),
            ),
        )
        .await;
        assert!(
            matches!(update, Err(StoreError::NotFound)),
            "{what}: {update:?}"
        );
        let delete = expect_audit(
            store.as_ref(),
            what,
            None,
            store.client_delete(scope, a.id, event(AuditAction::ClientDeleted)),
        )
        .await;
        assert!(
            matches!(delete, Err(StoreError::NotFound)),
            "{what}: {delete:?}"
        );
    }
    let unknown = store
        .client_update(
            Scope::All,
            ClientId::new_random(),
            1,
            ClientChange {
                updated_at_ms: T0,
                ..ClientChange::default()
            },
            event(AuditAction::ClientUpdated),
        )
        .await;
    assert!(matches!(unknown, Err(StoreError::NotFound)), "{unknown:?}");
    assert_same_client(
        &store
            .client_get(Scope::All, a.id)
            .await
            .unwrap()
            .unwrap()
            .row,
        &a2,
    );
    assert_eq!(store.client_count(Scope::All).await.unwrap(), 5);
}

async fn client_delete_destroys_the_key(db: &TestDb) {
    let store = db.store().await;
    let keys = Keys::default();
    let alice = new_user("alice", Role::Accountant);
    store
        .user_create(alice.clone(), event(AuditAction::UserCreated))
        .await
        .unwrap();
    let (gone, gone_key) = keys.client(1, "A 将被删除的公司", &id_number(1), Some(alice.id));
    let (kept, kept_key) = keys.client(2, "B 保留的公司", &id_number(2), Some(alice.id));
    for (row, key) in [(&gone, &gone_key), (&kept, &kept_key)] {
        store
            .client_insert(row.clone(), key.clone(), event(AuditAction::ClientCreated))
            .await
            .unwrap();
    }
    let key_rows =
        |id: ClientId| format!("SELECT COUNT(*) FROM client_keys WHERE client_id = '{id}'");
    assert_eq!(db.query_i64(&key_rows(gone.id)).await, 1);

    let deleted = event(AuditAction::ClientDeleted).on("clients", gone.id);
    expect_audit(
        store.as_ref(),
        "client_delete",
        Some(&deleted),
        store.client_delete(Scope::AssignedTo(alice.id), gone.id, deleted.clone()),
    )
    .await
    .unwrap();
    assert!(store
        .client_get(Scope::All, gone.id)
        .await
        .unwrap()
        .is_none());
    assert!(store
        .client_find_by_id_number(
            Scope::All,
            &[keys.index(&id_number(1))],
            event(AuditAction::ClientSearched)
        )
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        db.query_i64(&key_rows(gone.id)).await,
        0,
        "the data key is destroyed with the client"
    );
    assert_eq!(db.query_i64(&key_rows(kept.id)).await, 1);
    let fresh = db.store().await;
    assert!(fresh
        .client_get(Scope::All, gone.id)
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        ids(&fresh.client_list(Scope::All, ALL).await.unwrap()),
        vec![kept.id]
    );

    // Deleting twice finds nothing and records nothing.
    let twice = expect_audit(
        store.as_ref(),
        "client_delete of a deleted client",
        None,
        store.client_delete(Scope::All, gone.id, event(AuditAction::ClientDeleted)),
    )
    .await;
    assert!(matches!(twice, Err(StoreError::NotFound)), "{twice:?}");
    // Nothing of the old client blocks its id: a brand-new client may take it.
    let (mut reborn, _) = keys.client(3, "C 新公司", &id_number(3), None);
    reborn.id = gone.id;
    let reborn_dek = Dek::generate();
    reborn.legal_rep_id_number = keys.seal(&reborn_dek, gone.id, &id_number(3));
    let reborn_key = keys.kek.wrap(&reborn_dek, &key_context(gone.id));
    store
        .client_insert(
            reborn.clone(),
            reborn_key,
            event(AuditAction::ClientCreated),
        )
        .await
        .unwrap();
    let got = store
        .client_get(Scope::All, gone.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(keys.open_id_number(&got).unwrap(), id_number(3).as_str());
}

// --- 6. the audit log ------------------------------------------------------------------------

async fn audit_log_is_append_only_and_reads_back_what_was_written(db: &TestDb) {
    let store = db.store().await;
    let user = UserId::new_random();
    let record = ClientId::new_random();
    let written = vec![
        AuditEvent::new(
            T0,
            Actor {
                user_id: Some(user),
                name: "alice".into(),
                session_ref: Some("5f2e9c01".into()),
                source: Some("203.0.113.9".into()),
                device: None,
            },
            AuditAction::ClientSensitiveRead,
            Outcome::Success,
        )
        .on("clients", record)
        .fields(&["legal_rep_id_number", "name"])
        .request(Some("req-0001".into())),
        AuditEvent::new(
            T0 + 1,
            Actor::cli("root"),
            AuditAction::UserCreated,
            Outcome::Failed,
        )
        .detail("username taken"),
        AuditEvent::new(
            T0 + 2,
            Actor::system(),
            AuditAction::AccessDenied,
            Outcome::Denied,
        )
        .on("clients", "not-a-uuid")
        .request(Some("req-0003".into()))
        .detail("outside the caller's scope"),
    ];
    for e in &written {
        store.audit_append(e.clone()).await.unwrap();
    }

    let read = store.audit_events(0, 100).await.unwrap();
    assert_eq!(read.len(), written.len());
    for pair in read.windows(2) {
        assert!(pair[0].seq < pair[1].seq, "events come in seq order");
    }
    for (got, e) in read.iter().zip(&written) {
        assert_eq!(got.id, e.id.to_string());
        assert_eq!(got.at_ms, e.at_ms);
        assert_eq!(got.actor_user_id, e.actor.user_id.map(|u| u.to_string()));
        assert_eq!(got.actor_name, e.actor.name);
        assert_eq!(got.session_ref, e.actor.session_ref);
        assert_eq!(got.source, e.actor.source);
        assert_eq!(got.action, e.action.as_str());
        assert_eq!(got.resource.as_deref(), e.resource);
        assert_eq!(got.record_id, e.record_id);
        let fields: Vec<String> = serde_json::from_str(&got.fields).expect("fields are JSON");
        assert_eq!(fields, e.fields);
        assert_eq!(got.outcome, e.outcome.as_str());
        assert_eq!(got.request_id, e.request_id);
        assert_eq!(got.detail, e.detail);
    }
    assert_eq!(read[0].fields, r#"["legal_rep_id_number","name"]"#);
    assert_eq!(read[1].fields, "[]");

    // Paging by seq.
    let after_first = store.audit_events(read[0].seq, 1).await.unwrap();
    assert_eq!(after_first, vec![read[1].clone()]);
    assert_eq!(
        store.audit_events(read[0].seq, 100).await.unwrap(),
        read[1..]
    );
    assert!(store
        .audit_events(read[2].seq, 100)
        .await
        .unwrap()
        .is_empty());
    assert!(store.audit_events(0, 0).await.unwrap().is_empty());

    // Around the store, straight at the table: every edit is refused by the database itself.
    let mut attacks = vec![
        "UPDATE audit_events SET actor_name = 'mallory'".to_owned(),
        format!(
            "UPDATE audit_events SET outcome = 'success' WHERE seq = {}",
            read[2].seq
        ),
        format!("DELETE FROM audit_events WHERE seq = {}", read[1].seq),
        "DELETE FROM audit_events".to_owned(),
    ];
    if db.kind() == Kind::Postgres {
        attacks.push("TRUNCATE audit_events".to_owned());
    }
    for sql in &attacks {
        match db.exec(sql).await {
            Ok(n) => panic!("`{sql}` succeeded ({n} rows) on an append-only table"),
            Err(message) => assert!(
                message.contains("append-only"),
                "`{sql}` failed, but not because of the append-only trigger: {message}"
            ),
        }
    }
    assert_eq!(
        store.audit_events(0, 100).await.unwrap(),
        read,
        "the log is intact"
    );

    // Appending still works, after the refused edits, and continues the sequence.
    let later = AuditEvent::new(
        T0 + 3,
        Actor::system(),
        AuditAction::Logout,
        Outcome::Success,
    );
    store.audit_append(later.clone()).await.unwrap();
    let all = store.audit_events(0, 100).await.unwrap();
    assert_eq!(all.len(), 4);
    assert_eq!(all[..3], read[..]);
    assert!(all[3].seq > read[2].seq);
    assert_eq!(all[3].id, later.id.to_string());
}

// --- 7. no change without its event, no event without its change ------------------------------

async fn every_write_commits_its_event_and_only_with_its_change(db: &TestDb) {
    let store = db.store().await;
    let s = store.as_ref();
    let keys = Keys::default();

    // users
    let admin = new_user("admin", Role::SystemAdmin);
    let e = event(AuditAction::SetupAdministratorCreated);
    assert!(expect_audit(
        s,
        "user_create_first",
        Some(&e),
        s.user_create_first(admin.clone(), e.clone())
    )
    .await
    .unwrap());
    let e = event(AuditAction::SetupAdministratorCreated);
    assert!(!expect_audit(
        s,
        "user_create_first, not first",
        None,
        s.user_create_first(new_user("second", Role::SystemAdmin), e)
    )
    .await
    .unwrap());
    let alice = new_user("alice", Role::Accountant);
    let e = event(AuditAction::UserCreated);
    expect_audit(
        s,
        "user_create",
        Some(&e),
        s.user_create(alice.clone(), e.clone()),
    )
    .await
    .unwrap();
    let mut clash = new_user("alice", Role::Accountant);
    clash.id = UserId::new_random();
    let r = expect_audit(
        s,
        "user_create, taken",
        None,
        s.user_create(clash, event(AuditAction::UserCreated)),
    )
    .await;
    assert!(r.is_err());
    // Same id, new username: a primary-key clash is refused just as whole.
    let mut same_id = new_user("alice2", Role::Accountant);
    same_id.id = alice.id;
    let r = expect_audit(
        s,
        "user_create, same id",
        None,
        s.user_create(same_id, event(AuditAction::UserCreated)),
    )
    .await;
    assert!(r.is_err());
    assert!(s
        .user_by_username(&username("alice2"))
        .await
        .unwrap()
        .is_none());

    let e = event(AuditAction::PasswordChanged);
    expect_audit(
        s,
        "user_set_password",
        Some(&e),
        s.user_set_password(
            alice.id,
            PasswordHash("h2".into()),
            false,
            T0 + 9,
            e.clone(),
        ),
    )
    .await
    .unwrap();
    let r = expect_audit(
        s,
        "user_set_password, unknown",
        None,
        s.user_set_password(
            UserId::new_random(),
            PasswordHash("h3".into()),
            false,
            T0 + 9,
            event(AuditAction::PasswordChanged),
        ),
    )
    .await;
    assert!(r.is_err());

    // sessions
    let e = event(AuditAction::Login);
    expect_audit(
        s,
        "session_create",
        Some(&e),
        s.session_create(session(alice.id, 1), None, e.clone()),
    )
    .await
    .unwrap();
    let r = expect_audit(
        s,
        "session_create, same id",
        None,
        s.session_create(session(alice.id, 1), None, event(AuditAction::Login)),
    )
    .await;
    assert!(r.is_err());
    let r = expect_audit(
        s,
        "session_create, no user",
        None,
        s.session_create(
            session(UserId::new_random(), 2),
            None,
            event(AuditAction::Login),
        ),
    )
    .await;
    assert!(r.is_err());
    expect_audit(s, "session_touch", None, s.session_touch(&[1; 32], T0 + 10))
        .await
        .unwrap();
    let e = event(AuditAction::Logout);
    expect_audit(
        s,
        "session_delete",
        Some(&e),
        s.session_delete(&[1; 32], Some(e.clone())),
    )
    .await
    .unwrap();
    expect_audit(
        s,
        "session_delete, silent",
        None,
        s.session_delete(&[1; 32], None),
    )
    .await
    .unwrap();
    expect_audit(
        s,
        "session_delete_for_user",
        None,
        s.session_delete_for_user(alice.id, None),
    )
    .await
    .unwrap();

    // clients
    let (a, a_key) = keys.client(1, "A 公司", &id_number(1), Some(alice.id));
    let e = event(AuditAction::ClientCreated);
    expect_audit(
        s,
        "client_insert",
        Some(&e),
        s.client_insert(a.clone(), a_key.clone(), e.clone()),
    )
    .await
    .unwrap();
    let (mut b, b_key) = keys.client(2, "B 公司", &id_number(2), None);
    b.assigned_accountant = Some(UserId::new_random());
    let r = expect_audit(
        s,
        "client_insert, unknown accountant",
        None,
        s.client_insert(b.clone(), b_key.clone(), event(AuditAction::ClientCreated)),
    )
    .await;
    assert!(
        r.is_err(),
        "a client cannot be assigned to a user that does not exist"
    );
    b.assigned_accountant = None;
    let e = event(AuditAction::ClientCreated);
    expect_audit(
        s,
        "client_insert after a refused one",
        Some(&e),
        s.client_insert(b.clone(), b_key.clone(), e.clone()),
    )
    .await
    .unwrap();
    let (mut a_again, a_again_key) = keys.client(3, "A 公司 copy", &id_number(3), None);
    a_again.id = a.id;
    let r = expect_audit(
        s,
        "client_insert, same id",
        None,
        s.client_insert(a_again, a_again_key, event(AuditAction::ClientCreated)),
    )
    .await;
    assert!(r.is_err());
    assert_same_client(
        &s.client_get(Scope::All, a.id).await.unwrap().unwrap().row,
        &a,
    );
    assert_eq!(
        s.client_get(Scope::All, a.id)
            .await
            .unwrap()
            .unwrap()
            .key
            .current
            .wrapped,
        a_key
    );

    let e = event(AuditAction::ClientSensitiveRead);
    expect_audit(
        s,
        "client_get_audited",
        Some(&e),
        s.client_get_audited(Scope::All, a.id, e.clone()),
    )
    .await
    .unwrap()
    .unwrap();
    let absent = expect_audit(
        s,
        "client_get_audited, absent",
        None,
        s.client_get_audited(
            Scope::All,
            ClientId::new_random(),
            event(AuditAction::ClientSensitiveRead),
        ),
    )
    .await
    .unwrap();
    assert!(absent.is_none());
    let e = event(AuditAction::ClientSearched);
    expect_audit(
        s,
        "client_find_by_id_number",
        Some(&e),
        s.client_find_by_id_number(Scope::All, &[keys.index(&id_number(9))], e.clone()),
    )
    .await
    .unwrap();
    expect_audit(s, "client_get", None, s.client_get(Scope::All, a.id))
        .await
        .unwrap();
    expect_audit(s, "client_list", None, s.client_list(Scope::All, ALL))
        .await
        .unwrap();

    let rename = |name: &str| ClientChange {
        name: Some(ClientName::parse(name).unwrap()),
        updated_at_ms: T0 + 50,
        ..ClientChange::default()
    };
    let e = event(AuditAction::ClientUpdated);
    expect_audit(
        s,
        "client_update",
        Some(&e),
        s.client_update(Scope::All, a.id, 1, rename("A 公司 renamed"), e.clone()),
    )
    .await
    .unwrap();
    let r = expect_audit(
        s,
        "client_update, stale",
        None,
        s.client_update(
            Scope::All,
            a.id,
            1,
            rename("A stale"),
            event(AuditAction::ClientUpdated),
        ),
    )
    .await;
    assert!(matches!(r, Err(StoreError::VersionConflict)), "{r:?}");
    let r = expect_audit(
        s,
        "client_update, taken USCC",
        None,
        s.client_update(
            Scope::All,
            a.id,
            2,
            ClientChange {
                uscc: Some(b.uscc.clone()),
                updated_at_ms: T0 + 60,
                ..ClientChange::default()
            },
            event(AuditAction::ClientUpdated),
        ),
    )
    .await;
    assert!(
        matches!(r, Err(StoreError::Conflict(Unique::ClientUscc))),
        "{r:?}"
    );
    let r = expect_audit(
        s,
        "client_update, out of scope",
        None,
        s.client_update(
            Scope::AssignedTo(UserId::new_random()),
            a.id,
            2,
            rename("A nope"),
            event(AuditAction::ClientUpdated),
        ),
    )
    .await;
    assert!(matches!(r, Err(StoreError::NotFound)), "{r:?}");
    let got = s.client_get(Scope::All, a.id).await.unwrap().unwrap().row;
    assert_eq!((got.name.as_str(), got.version), ("A 公司 renamed", 2));
    assert_eq!(got.uscc, a.uscc);

    let r = expect_audit(
        s,
        "client_delete, out of scope",
        None,
        s.client_delete(Scope::None, a.id, event(AuditAction::ClientDeleted)),
    )
    .await;
    assert!(matches!(r, Err(StoreError::NotFound)), "{r:?}");
    let e = event(AuditAction::ClientDeleted);
    expect_audit(
        s,
        "client_delete",
        Some(&e),
        s.client_delete(Scope::All, a.id, e.clone()),
    )
    .await
    .unwrap();

    // audit
    let e = AuditEvent::new(
        T0,
        Actor::system(),
        AuditAction::AccessDenied,
        Outcome::Denied,
    );
    expect_audit(s, "audit_append", Some(&e), s.audit_append(e.clone()))
        .await
        .unwrap();
    let r = expect_audit(
        s,
        "audit_append, duplicate id",
        None,
        s.audit_append(e.clone()),
    )
    .await;
    assert!(r.is_err(), "an event id is recorded once");

    // The non-audited key write leaves the log alone.
    let wrapped = keys
        .kek
        .wrap_blind_index_key(&BlindIndexKey::generate(), b"system:x");
    expect_audit(
        s,
        "system_key_get_or_insert",
        None,
        s.system_key_get_or_insert("x", wrapped, T0),
    )
    .await
    .unwrap();
}

// --- ciphertext is bound to its row ------------------------------------------------------------

/// Swapping sealed values between rows at the SQL level yields an authentication error when the
/// value is read back and opened, never the other row's plaintext. Checked twice: with each
/// client under its own DEK (the normal case), and with two rows sharing one DEK, so that only
/// the row binding in the AAD stands between the attacker and the plaintext.
async fn ciphertext_moved_to_another_row_fails_authentication(db: &TestDb) {
    let store = db.store().await;
    let keys = Keys::default();
    let shared = Dek::generate();
    let (victim, victim_key) = keys.client(1, "A 受害公司", &id_number(1), None);
    let (thief, thief_key) = keys.client(2, "B 目标公司", &id_number(2), None);
    let (twin1, twin1_key) = keys.client_with_dek(&shared, 3, "C 同钥一号", &id_number(3), None);
    let (twin2, twin2_key) = keys.client_with_dek(&shared, 4, "D 同钥二号", &id_number(4), None);
    for (row, key) in [
        (&victim, &victim_key),
        (&thief, &thief_key),
        (&twin1, &twin1_key),
        (&twin2, &twin2_key),
    ] {
        store
            .client_insert(row.clone(), key.clone(), event(AuditAction::ClientCreated))
            .await
            .unwrap();
        let got = store.client_get(Scope::All, row.id).await.unwrap().unwrap();
        assert!(keys.open_id_number(&got).is_ok(), "opens before tampering");
    }

    for (from, to, from_number) in [
        (&victim, &thief, id_number(1)),
        (&twin1, &twin2, id_number(3)),
    ] {
        let moved = db
            .exec(&format!(
                "UPDATE clients SET legal_rep_id_number = \
                 (SELECT legal_rep_id_number FROM clients WHERE id = '{}') WHERE id = '{}'",
                from.id, to.id
            ))
            .await
            .expect("raw UPDATE");
        assert_eq!(moved, 1);
        let got = store.client_get(Scope::All, to.id).await.unwrap().unwrap();
        assert_eq!(
            got.row.legal_rep_id_number, from.legal_rep_id_number,
            "the store returns the moved bytes as they are"
        );
        // Reading is fine; opening is what fails, and with an error, not the other plaintext.
        let opened = keys.open_id_number(&got);
        assert!(
            matches!(opened, Err(CryptoError::Authentication)),
            "expected an authentication failure, got {:?}",
            opened.map(|_| "a plaintext")
        );
        // The source row is untouched and still opens.
        let source = store
            .client_get(Scope::All, from.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(keys.open_id_number(&source).unwrap(), from_number.as_str());
    }
    // The shared key really does open the twin's value for its own row: the failure above
    // came from the row binding alone.
    let sealed_for_twin1 = &twin1.legal_rep_id_number;
    assert!(shared.open(sealed_for_twin1, &aad(twin1.id)).is_ok());
    assert!(matches!(
        shared.open(sealed_for_twin1, &aad(twin2.id)),
        Err(CryptoError::Authentication)
    ));

    // Moving a wrapped key to another client fails to unwrap as well.
    db.exec(&format!(
        "UPDATE client_keys SET wrapped_dek = \
         (SELECT wrapped_dek FROM client_keys WHERE client_id = '{}') WHERE client_id = '{}'",
        victim.id, thief.id
    ))
    .await
    .expect("raw UPDATE");
    let got = store
        .client_get(Scope::All, thief.id)
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(
        keys.kek
            .unwrap_key(&got.key.current.wrapped, &key_context(thief.id)),
        Err(CryptoError::Authentication)
    ));
}

/// Bytes in a sealed column that are not even an envelope come back as `Corrupt`, naming the
/// column, rather than as a panic or a value.
async fn unreadable_stored_values_are_reported_as_corrupt(db: &TestDb) {
    let store = db.store().await;
    let keys = Keys::default();
    let (row, key) = keys.client(1, "A 损坏的公司", &id_number(1), None);
    store
        .client_insert(row.clone(), key, event(AuditAction::ClientCreated))
        .await
        .unwrap();
    db.exec(&format!(
        "UPDATE clients SET legal_rep_id_number = {} WHERE id = '{}'",
        db.blob_literal(&[0x01, 0x01, 0, 0, 0]),
        row.id
    ))
    .await
    .unwrap();
    match store.client_get(Scope::All, row.id).await {
        Err(StoreError::Corrupt { column, .. }) => assert_eq!(column, "legal_rep_id_number"),
        other => panic!("expected Corrupt, got {other:?}"),
    }
    match store.client_list(Scope::All, ALL).await {
        Err(StoreError::Corrupt { column, .. }) => assert_eq!(column, "legal_rep_id_number"),
        other => panic!("expected Corrupt, got {other:?}"),
    }
    // A stored key version that is not the one written is caught by authentication, not
    // parsing: the header is authenticated.
    let mut bytes = row.legal_rep_id_number.as_bytes().to_vec();
    bytes[2..6].copy_from_slice(&KeyVersion(2).0.to_be_bytes());
    db.exec(&format!(
        "UPDATE clients SET legal_rep_id_number = {} WHERE id = '{}'",
        db.blob_literal(&bytes),
        row.id
    ))
    .await
    .unwrap();
    let got = store.client_get(Scope::All, row.id).await.unwrap().unwrap();
    assert!(matches!(
        keys.open_id_number(&got),
        Err(CryptoError::Authentication)
    ));
}

// --- second factor and sessions --------------------------------------------------------------

fn sealed_secret(user: UserId) -> zf_crypto::Sealed {
    Dek::generate().seal(
        KeyVersion(1),
        b"twenty bytes secret!",
        &zf_crypto::Aad::new("user_mfa", user.to_string(), "totp_secret"),
    )
}

fn upgrade(
    old: &zf_store::SessionRow,
    tag: u8,
    factor: zf_store::FactorUse,
    completes_sign_in: bool,
) -> zf_store::SessionUpgrade {
    zf_store::SessionUpgrade {
        old_id_hash: old.id_hash.clone(),
        new: zf_store::SessionRow {
            factor_at_ms: Some(T0 + 100),
            second_factor_pending: false,
            ..session(old.user_id, tag)
        },
        factor,
        completes_sign_in,
        limit: None,
    }
}

async fn a_second_factor_is_sealed_confirmed_and_used_once(db: &TestDb) {
    let store = db.store().await;
    let alice = new_user("alice", Role::Supervisor);
    store
        .user_create(alice.clone(), event(AuditAction::UserCreated))
        .await
        .unwrap();
    assert!(store.mfa_get(alice.id).await.unwrap().is_none());

    // An enrolment starts unconfirmed, and may be restarted until it is confirmed.
    for _ in 0..2 {
        let e = event(AuditAction::MfaEnrolmentStarted);
        expect_audit(
            store.as_ref(),
            "mfa_begin",
            Some(&e),
            store.mfa_begin(alice.id, sealed_secret(alice.id), T0, e.clone()),
        )
        .await
        .unwrap();
    }
    let pending = store.mfa_get(alice.id).await.unwrap().unwrap();
    assert_eq!((pending.confirmed_at_ms, pending.last_step), (None, None));
    let user = store
        .user_by_username(&alice.username)
        .await
        .unwrap()
        .unwrap();
    assert!(!user.mfa_enrolled, "not enrolled before confirmation");

    // Confirmation activates it, stores the recovery codes and rotates the session.
    let before = session(alice.id, 1);
    store
        .session_create(before.clone(), None, event(AuditAction::Login))
        .await
        .unwrap();
    let codes: Vec<_> = (0..3u8)
        .map(|n| BlindIndexKey::generate().index("recovery", &[n]))
        .collect();
    let after = zf_store::SessionRow {
        factor_at_ms: Some(T0 + 50),
        ..session(alice.id, 2)
    };
    let e = event(AuditAction::MfaEnabled);
    expect_audit(
        store.as_ref(),
        "mfa_confirm",
        Some(&e),
        store.mfa_confirm(
            zf_store::MfaConfirm {
                user_id: alice.id,
                step: 1000,
                recovery_codes: codes.clone(),
                confirmed_at_ms: T0 + 50,
                old_id_hash: before.id_hash.clone(),
                new: after.clone(),
            },
            e.clone(),
        ),
    )
    .await
    .unwrap();
    assert!(store.session_get(&before.id_hash).await.unwrap().is_none());
    let (rotated, user) = store.session_get(&after.id_hash).await.unwrap().unwrap();
    assert_eq!(rotated, after);
    assert!(user.mfa_enrolled);
    let active = store.mfa_get(alice.id).await.unwrap().unwrap();
    assert_eq!(active.confirmed_at_ms, Some(T0 + 50));
    assert_eq!(active.last_step, Some(1000));
    assert_eq!(active.recovery_codes_left, 3);
    assert_eq!(active.totp_secret, pending.totp_secret);

    // A confirmed authenticator is not replaced by starting again, nor confirmed twice.
    let r = expect_audit(
        store.as_ref(),
        "mfa_begin over a confirmed one",
        None,
        store.mfa_begin(
            alice.id,
            sealed_secret(alice.id),
            T0,
            event(AuditAction::MfaEnrolmentStarted),
        ),
    )
    .await;
    assert!(
        matches!(r, Err(StoreError::Conflict(Unique::MfaEnrolled))),
        "{r:?}"
    );

    // A sign-in waiting for its second factor completes once per TOTP step.
    let waiting = zf_store::SessionRow {
        second_factor_pending: true,
        ..session(alice.id, 3)
    };
    store
        .session_create(
            waiting.clone(),
            None,
            event(AuditAction::LoginSecondFactorPending),
        )
        .await
        .unwrap();
    for (step, accepted) in [(1000, false), (999, false), (1001, true), (1001, false)] {
        let e = event(AuditAction::Login);
        let committed = accepted.then_some(&e);
        let r = expect_audit(
            store.as_ref(),
            "session_upgrade with a TOTP step",
            committed,
            store.session_upgrade(
                upgrade(&waiting, 4, zf_store::FactorUse::Totp { step }, true),
                e.clone(),
            ),
        )
        .await
        .unwrap();
        assert_eq!(r, accepted, "step {step}");
    }
    assert!(store.session_get(&waiting.id_hash).await.unwrap().is_none());
    assert!(store.session_get(&[4; 32]).await.unwrap().is_some());

    // A recovery code works once, and only for its owner.
    let bob = new_user("bob", Role::Supervisor);
    store
        .user_create(bob.clone(), event(AuditAction::UserCreated))
        .await
        .unwrap();
    let bobs = session(bob.id, 9);
    store
        .session_create(bobs.clone(), None, event(AuditAction::Login))
        .await
        .unwrap();
    let stolen = zf_store::FactorUse::RecoveryCode {
        hash: codes[0].clone(),
    };
    assert!(!store
        .session_upgrade(
            upgrade(&bobs, 10, stolen, false),
            event(AuditAction::StepUp)
        )
        .await
        .unwrap());
    let mine = session(alice.id, 5);
    store
        .session_create(mine.clone(), None, event(AuditAction::Login))
        .await
        .unwrap();
    let code = zf_store::FactorUse::RecoveryCode {
        hash: codes[0].clone(),
    };
    assert!(store
        .session_upgrade(
            upgrade(&mine, 6, code.clone(), false),
            event(AuditAction::StepUp)
        )
        .await
        .unwrap());
    assert!(!store
        .session_upgrade(
            upgrade(&session(alice.id, 6), 7, code, false),
            event(AuditAction::StepUp)
        )
        .await
        .unwrap());
    assert_eq!(
        store
            .mfa_get(alice.id)
            .await
            .unwrap()
            .unwrap()
            .recovery_codes_left,
        2
    );
    // Upgrading a session that has ended meanwhile changes nothing.
    let gone = upgrade(
        &session(alice.id, 40),
        41,
        zf_store::FactorUse::RecoveryCode {
            hash: codes[1].clone(),
        },
        false,
    );
    let r = store
        .session_upgrade(gone, event(AuditAction::StepUp))
        .await;
    assert!(matches!(r, Err(StoreError::NotFound)), "{r:?}");
    assert_eq!(
        store
            .mfa_get(alice.id)
            .await
            .unwrap()
            .unwrap()
            .recovery_codes_left,
        2,
        "the code is not used up by a refused upgrade"
    );

    // An operator's reset removes the authenticator, its codes and every session.
    let e = event(AuditAction::MfaReset);
    expect_audit(
        store.as_ref(),
        "mfa_reset",
        Some(&e),
        store.mfa_reset(&alice.username, e.clone()),
    )
    .await
    .unwrap();
    assert!(store.mfa_get(alice.id).await.unwrap().is_none());
    assert!(store.user_sessions(alice.id).await.unwrap().is_empty());
    assert!(!store.user_sessions(bob.id).await.unwrap().is_empty());
    let r = store
        .mfa_reset(&username("nobody"), event(AuditAction::MfaReset))
        .await;
    assert!(matches!(r, Err(StoreError::NotFound)), "{r:?}");
}

async fn sessions_are_listed_revoked_and_limited(db: &TestDb) {
    let store = db.store().await;
    let alice = new_user("alice", Role::Accountant);
    let bob = new_user("bob", Role::Accountant);
    for u in [&alice, &bob] {
        store
            .user_create(u.clone(), event(AuditAction::UserCreated))
            .await
            .unwrap();
    }
    for tag in 1..=3 {
        store
            .session_create(session(alice.id, tag), None, event(AuditAction::Login))
            .await
            .unwrap();
    }
    let bobs = session(bob.id, 9);
    store
        .session_create(bobs.clone(), None, event(AuditAction::Login))
        .await
        .unwrap();
    let listed = store.user_sessions(alice.id).await.unwrap();
    assert_eq!(
        listed.iter().map(|s| s.id_hash[0]).collect::<Vec<_>>(),
        [3, 2, 1],
        "newest first"
    );
    assert_eq!(listed[0], session(alice.id, 3));

    // One's own session ends with its event; another user's cannot be named.
    let e = event(AuditAction::SessionRevoked);
    expect_audit(
        store.as_ref(),
        "session_revoke",
        Some(&e),
        store.session_revoke(alice.id, &[2; 32], e.clone()),
    )
    .await
    .unwrap();
    let r = expect_audit(
        store.as_ref(),
        "session_revoke of another user's session",
        None,
        store.session_revoke(alice.id, &bobs.id_hash, event(AuditAction::SessionRevoked)),
    )
    .await;
    assert!(matches!(r, Err(StoreError::NotFound)), "{r:?}");

    // With a limit of two, a third sign-in ends the oldest, recording why; a sign-in waiting
    // for its second factor neither counts nor is ended.
    let waiting = zf_store::SessionRow {
        second_factor_pending: true,
        ..session(alice.id, 4)
    };
    store
        .session_create(waiting, None, event(AuditAction::LoginSecondFactorPending))
        .await
        .unwrap();
    let login = event(AuditAction::Login);
    let limit = event(AuditAction::SessionRevoked);
    let before = audit_log(store.as_ref()).await.len();
    store
        .session_create(
            session(alice.id, 5),
            Some(zf_store::SessionLimit {
                keep: 2,
                event: limit.clone(),
            }),
            login.clone(),
        )
        .await
        .unwrap();
    let log = audit_log(store.as_ref()).await;
    assert_eq!(log.len(), before + 2);
    assert_eq!(log[before].id, limit.id.to_string());
    let left: Vec<u8> = store
        .user_sessions(alice.id)
        .await
        .unwrap()
        .iter()
        .map(|s| s.id_hash[0])
        .collect();
    assert_eq!(left, [5, 4, 3]);
    // Under the limit nothing ends and nothing more is recorded.
    store
        .session_revoke(alice.id, &[3; 32], event(AuditAction::SessionRevoked))
        .await
        .unwrap();
    let before = audit_log(store.as_ref()).await.len();
    store
        .session_create(
            session(alice.id, 6),
            Some(zf_store::SessionLimit {
                keep: 2,
                event: event(AuditAction::SessionRevoked),
            }),
            event(AuditAction::Login),
        )
        .await
        .unwrap();
    assert_eq!(audit_log(store.as_ref()).await.len(), before + 1);
    assert_eq!(store.user_sessions(alice.id).await.unwrap().len(), 3);
    assert_eq!(store.user_sessions(bob.id).await.unwrap().len(), 1);
}

// --- writes at once ----------------------------------------------------------------------------

/// Many writes arriving together (SQLite commits them as one group, PostgreSQL one by one):
/// each refused write leaves nothing, neither its row nor its event, and takes nothing of its
/// neighbours with it; every accepted write is there with exactly its event, in one unbroken
/// chain.
async fn writes_at_once_commit_together_and_fail_alone(db: &TestDb) {
    let store: std::sync::Arc<dyn zf_store::Store> = std::sync::Arc::from(db.store().await);
    let keys = Keys::default();
    let mut writes = tokio::task::JoinSet::new();
    for n in 0..200u32 {
        // Every tenth client repeats the USCC of the one before it: one of the two must lose.
        let (row, key) = keys.client(
            if n % 10 == 9 { n - 1 } else { n },
            &format!("同时写入测试公司{n}"),
            &id_number(n),
            None,
        );
        let e = event(AuditAction::ClientCreated).on("clients", row.id);
        let store = store.clone();
        writes.spawn(async move {
            let id = row.id;
            (id, e.id, store.client_insert(row, key, e).await)
        });
    }
    let (mut accepted, mut refused) = (Vec::new(), 0);
    while let Some(done) = writes.join_next().await {
        let (id, event_id, result) = done.expect("the write's task");
        match result {
            Ok(()) => accepted.push((id, event_id.to_string())),
            Err(StoreError::Conflict(Unique::ClientUscc)) => refused += 1,
            Err(e) => panic!("unexpected refusal: {e}"),
        }
    }
    assert_eq!((accepted.len(), refused), (180, 20));
    assert_eq!(store.client_count(Scope::All).await.unwrap(), 180);
    for (id, _) in &accepted {
        assert!(store.client_get(Scope::All, *id).await.unwrap().is_some());
    }
    let log = audit_log(store.as_ref()).await;
    let mut logged: Vec<String> = log.iter().map(|e| e.id.clone()).collect();
    let mut expected: Vec<String> = accepted.into_iter().map(|(_, e)| e).collect();
    logged.sort();
    expected.sort();
    assert_eq!(logged, expected, "exactly the accepted writes' events");
    for (i, pair) in log.windows(2).enumerate() {
        assert_eq!(pair[1].seq, pair[0].seq + 1, "no gap after event {i}");
        assert_eq!(pair[1].prev_hash, pair[0].hash, "linked after event {i}");
    }
}
