//! The binary as an operator uses it: `serve` on a fresh directory, `user add` beside it, the
//! refusal of a loose master key, and two nodes on one PostgreSQL database.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

mod common;

use common::*;

#[tokio::test]
async fn serve_on_a_fresh_machine_creates_everything_and_prints_the_setup_secret_once() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("zhangfang-data");
    let node = serve(&data, None);
    for file in ["master.key", "zhangfang.db", "tls/cert.pem", "tls/key.pem"] {
        assert!(data.join(file).exists(), "{file} missing");
    }
    let mode = |p: &str| {
        std::fs::metadata(data.join(p))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("master.key"), 0o600);
    assert_eq!(mode("tls/key.pem"), 0o600);
    assert_eq!(mode("zhangfang.db"), 0o600);
    assert_eq!(mode(""), 0o700);
    let secret_line = node
        .stdout
        .iter()
        .find(|l| l.contains("one-time password:"))
        .expect("the setup secret is printed");
    let password = secret_line.split_whitespace().last().unwrap().to_owned();

    // The first administrator signs in over HTTPS and must replace the password first.
    let c = client(&data);
    let r = c
        .post(format!("{}/api/v1/session", node.base))
        .json(&json!({"username": "admin", "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Value>().await.unwrap()["must_change_password"],
        true
    );

    // Plain HTTP on the same port gets no HTTP answer.
    let plain = reqwest::Client::new()
        .get(node.base.replace("https://", "http://"))
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    assert!(plain.is_err() || plain.unwrap().status() == 400);

    // A user added beside the running server can sign in to it.
    let out = user_add(
        &data,
        None,
        "lisi",
        "accountant",
        "one-time for accountant 1",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let c2 = client(&data);
    sign_in_and_replace(
        &c2,
        &node.base,
        "lisi",
        "one-time for accountant 1",
        "accountant own pass phrase",
    )
    .await;

    // A restart does not print a secret again.
    drop(node);
    let mut again = serve(&data, None);
    assert!(again
        .stdout
        .iter()
        .all(|l| !l.contains("one-time password")));

    // SIGTERM stops it cleanly.
    let pid = again.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = again.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "serve did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit after SIGTERM: {status:?}");
}

#[test]
fn a_master_key_readable_by_others_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("d");
    let out = user_add(&data, None, "zhangsan", "accountant", "first password 12");
    assert!(out.status.success());
    std::fs::set_permissions(
        data.join("master.key"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let out = user_add(&data, None, "lisi", "accountant", "second password 12");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("master.key") && err.contains("chmod 600"),
        "{err}"
    );
}

#[test]
fn bad_flags_and_values_exit_non_zero_with_a_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("d");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["user", "add", "--username", "x", "--role", "accountant"],
            "username",
        ),
        (
            vec!["user", "add", "--username", "zhangsan", "--role", "root"],
            "unknown role",
        ),
        (vec!["serve", "--listen", "nowhere"], "invalid value"),
        (vec!["serve", "--tls-cert", "/nonexistent"], "--tls-key"),
        (
            vec![
                "user",
                "add",
                "--username",
                "zhangsan",
                "--role",
                "accountant",
                "--database",
                "mysql://x",
            ],
            "postgres://",
        ),
    ];
    for (args, needle) in cases {
        let out = Command::new(BIN)
            .args(&args)
            .arg("--data")
            .arg(&data)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    let bad_config = tmp.path().join("bad.toml");
    std::fs::write(&bad_config, "listne = \"127.0.0.1:1\"\n").unwrap();
    let out = Command::new(BIN)
        .args([
            "user",
            "add",
            "--username",
            "zhangsan",
            "--role",
            "accountant",
            "--config",
        ])
        .arg(&bad_config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown field `listne`"));
    std::fs::write(&bad_config, "[mfa]\nstep_up_minutes = 0\n").unwrap();
    let out = Command::new(BIN)
        .args(["user", "unlock", "--username", "zhangsan", "--config"])
        .arg(&bad_config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("step_up_minutes"));
}

#[test]
fn reset_mfa_needs_a_user_and_a_reason_and_is_audited() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("d");
    let out = user_add(&data, None, "lisi", "supervisor", "password number 1 ok");
    assert!(out.status.success());
    for (args, needle) in [
        (
            &["user", "reset-mfa", "nobody", "--reason", "lost phone"][..],
            "no user named nobody",
        ),
        (
            &["user", "reset-mfa", "lisi", "--reason", " "][..],
            "reason",
        ),
        (&["user", "reset-mfa", "lisi"][..], "--reason"),
    ] {
        let out = zhangfang(&data, args);
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    let out = zhangfang(
        &data,
        &[
            "user",
            "reset-mfa",
            "lisi",
            "--reason",
            "手机丢失，工单 #4711",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("lisi"));
    let out = zhangfang(&data, &["audit", "search", "--action", "mfa_reset"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("手机丢失，工单 #4711") && text.contains("cli:"),
        "{text}"
    );
}

fn postgres_url() -> Option<String> {
    match std::env::var("ZF_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("ZF_REQUIRE_POSTGRES").as_deref() != Ok("1"),
                "ZF_REQUIRE_POSTGRES=1 but ZF_TEST_POSTGRES_URL is not set"
            );
            eprintln!("skipping PostgreSQL: ZF_TEST_POSTGRES_URL not set");
            None
        }
    }
}

#[tokio::test]
async fn two_nodes_on_one_postgres_database_share_clients_and_sessions() {
    let Some(url) = postgres_url() else { return };
    let schema = format!("zf_t_cli_{}", std::process::id());
    let (pg, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    pg.batch_execute(&format!(
        "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"
    ))
    .await
    .unwrap();
    let sep = if url.contains('?') { '&' } else { '?' };
    let db = format!("{url}{sep}options=-csearch_path%3D{schema}");

    let tmp = tempfile::tempdir().unwrap();
    let (dir_a, dir_b) = (tmp.path().join("a"), tmp.path().join("b"));
    let node_a = serve(&dir_a, Some(&db));
    // The second node shares the master key (copied by the operator) and nothing else.
    std::fs::create_dir_all(&dir_b).unwrap();
    std::fs::set_permissions(&dir_b, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::copy(dir_a.join("master.key"), dir_b.join("master.key")).unwrap();
    std::fs::set_permissions(
        dir_b.join("master.key"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let node_b = serve(&dir_b, Some(&db));
    assert!(
        node_b
            .stdout
            .iter()
            .all(|l| !l.contains("one-time password")),
        "only one node creates the administrator"
    );

    let out = user_add(
        &dir_a,
        Some(&db),
        "kuaiji",
        "accountant",
        "node test one-time 1",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Each node has its own self-signed certificate; one client trusts both.
    let pem_a = std::fs::read(dir_a.join("tls/cert.pem")).unwrap();
    let pem_b = std::fs::read(dir_b.join("tls/cert.pem")).unwrap();
    let c = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&pem_a).unwrap())
        .add_root_certificate(reqwest::Certificate::from_pem(&pem_b).unwrap())
        .cookie_store(true)
        .build()
        .unwrap();
    sign_in_and_replace(
        &c,
        &node_a.base,
        "kuaiji",
        "node test one-time 1",
        "shared cluster pass phrase",
    )
    .await;
    enrol(&c, &node_a.base, &node_b.base).await;
    let id_number = "11010519491231002X";
    let r = c
        .post(format!("{}/api/v1/clients", node_a.base))
        .json(&json!({
            "name": "双节点测试有限公司",
            "uscc": "91350100M000100Y43",
            "taxpayer_type": "small_scale",
            "legal_rep_name": "王五",
            "legal_rep_id_number": id_number,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // The cookie jar is keyed by host; node B is the same host on another port, and cookies
    // ignore ports, so the session made on A is presented to B.
    let r = c
        .get(format!("{}/api/v1/clients/{id}", node_b.base))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        200,
        "the session from node A is valid on node B"
    );
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["legal_rep_id_number"]["value"], id_number);
    assert_eq!(body["name"], "双节点测试有限公司");

    // Logging out on B ends the session for A too.
    assert_eq!(
        c.delete(format!("{}/api/v1/session", node_b.base))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    let r = c
        .get(format!("{}/api/v1/session", node_a.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // Both nodes wrote to one chain, and it verifies.
    let out = Command::new(BIN)
        .args(["audit", "verify", "--database", &db, "--data"])
        .arg(&dir_b)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("intact"), "{text}");

    drop(node_a);
    drop(node_b);
    pg.batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .unwrap();
}

#[tokio::test]
async fn serve_uses_the_operators_certificate_when_given() {
    let tmp = tempfile::tempdir().unwrap();
    let (cert, key) = (tmp.path().join("c.pem"), tmp.path().join("k.pem"));
    // An end-entity certificate, as a CA would issue one (not a self-signed CA).
    let conf = tmp.path().join("req.cnf");
    std::fs::write(
        &conf,
        "[req]\ndistinguished_name=dn\nx509_extensions=ext\nprompt=no\n[dn]\nCN=zhangfang.test\n\
         [ext]\nbasicConstraints=critical,CA:FALSE\nkeyUsage=digitalSignature\n\
         extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )
    .unwrap();
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ])
        .args(["-days", "2", "-config"])
        .arg(&conf)
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output();
    match made {
        Ok(out) if out.status.success() => {}
        _ => {
            eprintln!("skipping: openssl cannot make a certificate here");
            return;
        }
    }
    let data = tmp.path().join("d");
    let (c, k) = (cert.to_str().unwrap(), key.to_str().unwrap());
    let node = serve_with(&data, None, &["--tls-cert", c, "--tls-key", k]);
    assert!(
        !data.join("tls").exists(),
        "no self-signed certificate when one is given"
    );
    let pem = std::fs::read(&cert).unwrap();
    let client = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .build()
        .unwrap();
    let r = client
        .get(format!("{}/healthz", node.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// The security administrator's command line: teams, a user's effective access and history,
/// and the role catalog, each audited where it changes something.
#[test]
fn the_security_admins_commands_move_people_and_show_why() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("d");
    let out = user_add(&data, None, "lisi", "accountant", "password number 1 ok");
    assert!(out.status.success());
    let ok = |args: &[&str]| {
        let out = zhangfang(&data, args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let said = ok(&[
        "user",
        "set-team",
        "--username",
        "lisi",
        "--team",
        "一组",
        "--reason",
        "分组",
    ]);
    assert!(said.contains("team 一组"), "{said}");
    let effective: serde_json::Value =
        serde_json::from_str(&ok(&["user", "permissions", "lisi"])).unwrap();
    assert_eq!(effective["team"], "一组");
    assert_eq!(effective["client_scope"], "assigned");
    let said = ok(&[
        "user",
        "set-role",
        "--username",
        "lisi",
        "--role",
        "sales",
        "--reason",
        "调岗",
    ]);
    assert!(said.contains("accountant to sales"), "{said}");
    let history: serde_json::Value =
        serde_json::from_str(&ok(&["user", "history", "lisi"])).unwrap();
    let actions: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["user_created", "team_changed", "role_changed"]);
    assert!(
        history[1]["by"].as_str().unwrap().starts_with("cli:"),
        "{history}"
    );
    let catalog: serde_json::Value = serde_json::from_str(&ok(&["user", "roles"])).unwrap();
    assert_eq!(catalog["built_in"].as_array().unwrap().len(), 7);
    // Bad input: a non-zero exit with the reason, and nothing changed.
    for (args, needle) in [
        (
            &[
                "user",
                "set-team",
                "--username",
                "nobody",
                "--team",
                "x",
                "--reason",
                "r",
            ][..],
            "no user named nobody",
        ),
        (
            &[
                "user",
                "set-team",
                "--username",
                "lisi",
                "--team",
                "一组",
                "--reason",
                " ",
            ][..],
            "reason",
        ),
        (
            &[
                "user",
                "set-role",
                "--username",
                "lisi",
                "--role",
                "ghost",
                "--reason",
                "r",
            ][..],
            "unknown role",
        ),
        (
            &["user", "permissions", "nobody"][..],
            "no user named nobody",
        ),
    ] {
        let out = zhangfang(&data, args);
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    let effective: serde_json::Value =
        serde_json::from_str(&ok(&["user", "permissions", "lisi"])).unwrap();
    assert_eq!(
        (effective["role"].as_str(), effective["team"].as_str()),
        (Some("sales"), Some("一组"))
    );
}

/// The master key may come from `ZHANGFANG_MASTER_KEY` instead of a file: then no key file is
/// written, the same key opens the data again, another key does not, and a malformed value is
/// refused with the variable's name and never its value.
#[test]
fn the_master_key_can_come_from_the_environment() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("d");
    let key = "6b".repeat(32);
    let run = |args: &[&str], value: &str| {
        Command::new(BIN)
            .args(args)
            .arg("--data")
            .arg(&data)
            .env_remove("ZHANGFANG_DATABASE")
            .env("ZHANGFANG_MASTER_KEY", value)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let out = run(
        &["user", "add", "--username", "lisi", "--role", "accountant"],
        &key,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !data.join("master.key").exists(),
        "no key file when the key comes from the environment"
    );
    let out = run(&["user", "permissions", "lisi"], &key);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let other = run(&["user", "permissions", "lisi"], &"6c".repeat(32));
    assert!(!other.status.success());
    let err = String::from_utf8_lossy(&other.stderr);
    assert!(err.contains("master key"), "{err}");
    let bad = run(&["user", "permissions", "lisi"], "not-a-key-0123");
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("ZHANGFANG_MASTER_KEY") && !err.contains("not-a-key-0123"),
        "{err}"
    );
}

fn zhangfang(data: &Path, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .arg("--data")
        .arg(data)
        .env_remove("ZHANGFANG_DATABASE")
        .output()
        .unwrap()
}

#[test]
fn audit_verify_names_tampering_and_exits_non_zero() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("d");
    for (i, name) in ["zhangsan", "lisi", "wangwu"].iter().enumerate() {
        let out = user_add(
            &data,
            None,
            name,
            "accountant",
            &format!("password number {i} ok"),
        );
        assert!(out.status.success());
    }
    let file = tmp.path().join("checkpoints.jsonl");
    let out = zhangfang(
        &data,
        &["audit", "checkpoint", "--append", file.to_str().unwrap()],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = zhangfang(
        &data,
        &["audit", "verify", "--checkpoints", file.to_str().unwrap()],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("intact") && text.contains("events/s"),
        "{text}"
    );

    // Someone with the database file edits the second event.
    let db = rusqlite::Connection::open(data.join("zhangfang.db")).unwrap();
    db.execute_batch(
        "DROP TRIGGER audit_events_no_update;
         UPDATE audit_events SET detail = 'role system_admin' WHERE seq = 2;",
    )
    .unwrap();
    drop(db);
    let out = zhangfang(
        &data,
        &["audit", "verify", "--checkpoints", file.to_str().unwrap()],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(text.contains("event #2 was edited"), "{text}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("audit verification failed"));

    // The operator's search answers "what did the command line do", newest first.
    let out = zhangfang(
        &data,
        &[
            "audit",
            "search",
            "--action",
            "user_created",
            "--limit",
            "2",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert!(lines[0]["seq"].as_i64() > lines[1]["seq"].as_i64());
    let out = zhangfang(&data, &["audit", "search", "--from", "last tuesday"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("RFC 3339"));

    // A missing checkpoint file is a clear error that changes nothing.
    let out = zhangfang(
        &data,
        &["audit", "verify", "--checkpoints", "/nonexistent.jsonl"],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read checkpoint file"));
}

/// The benchmark is a command, not a timed test: here it runs on a tiny data set only to prove
/// it works and prints its table.
#[test]
fn the_audit_benchmark_runs_on_a_tiny_data_set() {
    let tmp = tempfile::tempdir().unwrap();
    let json = tmp.path().join("bench.json");
    let out = Command::new(BIN)
        .args([
            "bench",
            "audit",
            "--events",
            "3000",
            "--users",
            "20",
            "--queries",
            "5",
            "--json",
        ])
        .arg(&json)
        .env("TMPDIR", tmp.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("| audit verify |") && text.contains("SHA-256"),
        "{text}"
    );
    let figures: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(figures["events"], 3000);
    assert!(figures["verify_events_per_s"].as_f64().unwrap() > 0.0);
}

#[test]
fn demo_then_export_then_import_into_another_instance_keeps_every_client() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let out = zhangfang(&a, &["demo", "--clients", "12"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("demo-zhuguan"), "{stdout}");
    assert!(stdout.contains("12 demo clients created"), "{stdout}");
    // An accountant may not export without approval: refused with a reason, nothing written.
    let file = dir.path().join("clients.xlsx");
    let out = zhangfang(
        &a,
        &[
            "export",
            "--as",
            "demo-kuaiji1",
            "--out",
            file.to_str().unwrap(),
        ],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("may not client_export"));
    assert!(!file.exists());
    let out = zhangfang(
        &a,
        &[
            "export",
            "--as",
            "demo-zhuguan",
            "--out",
            file.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("12 clients written"));
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600,
        "the export is readable by its owner only"
    );
    // Into a fresh instance: its supervisor imports the file whole.
    let out = zhangfang(
        &b,
        &["user", "add", "--username", "wang", "--role", "supervisor"],
    );
    assert!(out.status.success());
    for name in ["demo-kuaiji1", "demo-kuaiji2", "demo-kuaiji3"] {
        zhangfang(
            &b,
            &["user", "add", "--username", name, "--role", "accountant"],
        );
    }
    let out = zhangfang(&b, &["import", "--as", "wang", file.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("12 of 12 rows imported"));
    // Again: every row collides; the command fails, names the rows, and writes nothing.
    let out = zhangfang(&b, &["import", "--as", "wang", file.to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("row 2, column 统一社会信用代码"),
        "{stderr}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("nothing was written"));
    // A file that is not a client list at all.
    let junk = dir.path().join("junk.csv");
    std::fs::write(&junk, [0u8, 159, 146, 150, 0, 1]).unwrap();
    let out = zhangfang(&b, &["import", "--as", "wang", junk.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(!String::from_utf8_lossy(&out.stderr).trim().is_empty());
}

#[test]
fn posture_names_each_check_and_exits_non_zero_when_one_fails() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("d");
    let out = zhangfang(&data, &["posture"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stdout}");
    assert!(stderr.contains("posture checks failed"), "{stderr}");
    for line in [
        "FAIL  backups ",
        "WARN  key_custody ",
        "pass  audit_chain ",
        "pass  kek_age ",
    ] {
        assert!(
            stdout.lines().any(|l| l.starts_with(line)),
            "{line:?} in\n{stdout}"
        );
    }
    assert!(
        !stdout.contains("tls_certificate"),
        "no certificate made yet"
    );

    // The rotation policy comes from [keys]; JSON carries every check.
    std::fs::write(data.join("zhangfang.toml"), "[keys]\nmax_age_days = 90\n").unwrap();
    let out = zhangfang(&data, &["posture", "--json"]);
    let posture: Value = serde_json::from_slice(&out.stdout).unwrap();
    let kek = posture["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "kek_age")
        .unwrap();
    assert!(
        kek["summary"]
            .as_str()
            .unwrap()
            .contains("the policy allows 90"),
        "{kek}"
    );
    assert_eq!(posture["status"], "fail");

    std::fs::write(data.join("zhangfang.toml"), "[keys]\nmax_age_days = 0\n").unwrap();
    let out = zhangfang(&data, &["posture"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("keys.max_age_days must be between 1 and 3650"),
        "{stderr}"
    );

    // Each run that answered is in the audit log with its verdict.
    let db = rusqlite::Connection::open(data.join("zhangfang.db")).unwrap();
    let details: Vec<String> = db
        .prepare("SELECT detail FROM audit_events WHERE action = 'security_posture_checked'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(details.len(), 2, "{details:?}");
    assert!(
        details.iter().all(|d| d.starts_with("fail: ")),
        "{details:?}"
    );
}
