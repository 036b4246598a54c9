//! Backups as an operator runs them, through the real binary: a demo firm backed up, verified
//! and restored into empty SQLite and PostgreSQL databases and back; damaged, cut, foreign and
//! wrongly keyed files refused by `verify` and `restore` with the target untouched; `kill -9`
//! in the middle of a backup and of a restore; a backup taken while another process writes; a
//! database holding data refused without `--force` and kept aside with it.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::RngCore;
use zf_app::backup::{verify_file, Quiet, VerifiedBackup};

mod common;

use common::{ok, refused, BIN};

fn command(data: &Path, database: Option<&str>, args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .arg("--data")
        .arg(data)
        .env_remove("ZHANGFANG_DATABASE")
        .env_remove("ZHANGFANG_TEST_THROTTLE_MS");
    if let Some(url) = database {
        cmd.args(["--database", url]);
    }
    cmd
}

fn run(data: &Path, database: Option<&str>, args: &[&str]) -> Output {
    command(data, database, args).output().unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn demo(data: &Path, clients: u32) {
    ok(run(
        data,
        None,
        &["demo", "--clients", &clients.to_string()],
    ));
}

/// A data directory holding nothing but the master key of `from`: a new machine an operator
/// prepares for a restore.
fn new_machine(dir: &Path, from: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::copy(from.join("master.key"), dir.join("master.key")).unwrap();
    std::fs::set_permissions(
        dir.join("master.key"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
}

/// Reads a backup file whole under the master key of `data`, as the library does.
async fn read_backup(data: &Path, file: &Path) -> VerifiedBackup {
    let master = zf_crypto::MasterKey::load(&data.join("master.key")).unwrap();
    verify_file(
        file.to_owned(),
        Arc::new(master.backup_key()),
        Arc::new(Quiet),
    )
    .await
    .unwrap()
}

/// Backs up an instance through the binary and reads the result.
async fn backup(data: &Path, database: Option<&str>, file: &Path) -> VerifiedBackup {
    ok(run(data, database, &["backup", "--out", p(file)]));
    read_backup(data, file).await
}

/// Every table's count and digest, but the audit log's own: a restore goes on to append its
/// events to the chain it restored.
fn data_tables(b: &VerifiedBackup) -> Vec<(String, u64, String)> {
    b.manifest
        .tables
        .iter()
        .filter(|t| t.name != "audit_events" && t.name != "audit_head")
        .map(|t| (t.name.clone(), t.rows, t.sha256.clone()))
        .collect()
}

fn rows(b: &VerifiedBackup, table: &str) -> u64 {
    b.manifest
        .tables
        .iter()
        .find(|t| t.name == table)
        .unwrap()
        .rows
}

fn sqlite(data: &Path) -> rusqlite::Connection {
    let path = data.join("zhangfang.db");
    assert!(path.exists(), "no database in {}", data.display());
    rusqlite::Connection::open(path).unwrap()
}

fn count(data: &Path, table: &str) -> i64 {
    sqlite(data)
        .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
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

/// A fresh, empty schema on the test server, selected by `url`.
struct Pg {
    client: tokio_postgres::Client,
    schema: String,
    url: String,
}

impl Pg {
    async fn new(tag: &str) -> Option<Pg> {
        let base = postgres_url()?;
        let schema = format!("zf_t_bcli_{tag}_{}", std::process::id());
        let (client, conn) = tokio_postgres::connect(&base, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        client
            .batch_execute(&format!(
                "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"
            ))
            .await
            .unwrap();
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options=-csearch_path%3D{schema}");
        Some(Pg {
            client,
            schema,
            url,
        })
    }

    async fn count(&self, table: &str) -> i64 {
        self.client
            .query_one(
                &format!("SELECT COUNT(*) FROM {}.{table}", self.schema),
                &[],
            )
            .await
            .unwrap()
            .get(0)
    }

    async fn drop_all(&self, extra: &[&str]) {
        for schema in std::iter::once(self.schema.as_str()).chain(extra.iter().copied()) {
            self.client
                .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                .await
                .unwrap();
        }
    }
}

#[tokio::test]
async fn a_demo_firm_round_trips_through_sqlite_and_postgres() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    demo(&a, 30);
    let file = tmp.path().join("a.zfbackup");
    let out = ok(run(&a, None, &["backup", "--out", p(&file)]));
    for part in ["Backup written to", "backup id", "chain head", "MB/s"] {
        assert!(out.contains(part), "{out}");
    }
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600,
        "a backup is readable by its owner only"
    );
    assert!(!tmp.path().join("a.zfbackup.partial").exists());
    let original = read_backup(&a, &file).await;
    assert_eq!(rows(&original, "clients"), 30);
    assert_eq!(original.header.source_backend, "sqlite");

    // An existing file is never replaced by accident.
    let stderr = refused(run(&a, None, &["backup", "--out", p(&file)]));
    assert!(stderr.contains("--overwrite"), "{stderr}");
    assert_eq!(read_backup(&a, &file).await.header, original.header);

    let out = ok(run(&a, None, &["backup", "verify", p(&file)]));
    assert!(out.contains("intact"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.trim_start().starts_with("clients") && l.contains(" 30 rows")),
        "{out}"
    );
    // Both operations are in the source's audit log.
    let logged: i64 = sqlite(&a)
        .query_row(
            "SELECT COUNT(*) FROM audit_events WHERE action IN ('backup_created', 'backup_verified') AND outcome = 'success'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(logged, 2);

    // Into an empty SQLite data directory on a "new machine".
    let b = tmp.path().join("b");
    new_machine(&b, &a);
    let out = ok(run(&b, None, &["restore", "--from", p(&file)]));
    assert!(out.contains("Restored"), "{out}");
    assert!(out.contains("intact"), "{out}");
    let from_b = backup(&b, None, &tmp.path().join("b.zfbackup")).await;
    assert_eq!(data_tables(&from_b), data_tables(&original));
    assert_eq!(
        rows(&from_b, "audit_events"),
        rows(&original, "audit_events") + 2,
        "the restored log continues with the restore and its verification"
    );
    let restored: i64 = sqlite(&b)
        .query_row(
            "SELECT COUNT(*) FROM audit_events WHERE action = 'backup_restored'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(restored, 1);
    assert!(ok(run(&b, None, &["audit", "verify"])).contains("intact"));

    let Some(pg) = Pg::new("rt").await else {
        return;
    };
    // SQLite into PostgreSQL.
    let c = tmp.path().join("c");
    new_machine(&c, &a);
    let out = ok(run(&c, Some(&pg.url), &["restore", "--from", p(&file)]));
    assert!(out.contains("intact"), "{out}");
    assert_eq!(pg.count("clients").await, 30);
    let from_pg = tmp.path().join("c.zfbackup");
    let from_c = backup(&c, Some(&pg.url), &from_pg).await;
    assert_eq!(from_c.header.source_backend, "postgres");
    assert_eq!(data_tables(&from_c), data_tables(&original));
    // And PostgreSQL back into SQLite.
    let d = tmp.path().join("d");
    new_machine(&d, &a);
    let out = ok(run(&d, None, &["restore", "--from", p(&from_pg)]));
    assert!(out.contains("intact"), "{out}");
    let from_d = backup(&d, None, &tmp.path().join("d.zfbackup")).await;
    assert_eq!(data_tables(&from_d), data_tables(&original));
    assert_eq!(
        rows(&from_d, "audit_events"),
        rows(&original, "audit_events") + 4
    );
    pg.drop_all(&[]).await;
}

/// Adds a 3 MB contract scan to the first client, so the backup spans several 1 MiB chunks.
async fn add_large_document(data: &Path) {
    use zf_domain::{DocumentKind, FileName, Username};
    let id: String = sqlite(data)
        .query_row("SELECT id FROM clients ORDER BY id LIMIT 1", [], |r| {
            r.get(0)
        })
        .unwrap();
    let instance = zf_server::Instance::open(
        data,
        zf_server::DatabaseChoice::parse(data, None).unwrap(),
        zf_app::AppConfig::default(),
    )
    .await
    .unwrap();
    let app = &instance.app;
    let grant = app
        .operator_grant(
            &Username::parse("demo-zhuguan").unwrap(),
            zf_policy::Operation::DocumentUpload,
        )
        .await
        .unwrap();
    let mut content = b"%PDF-1.7\n".to_vec();
    let mut noise = vec![0u8; 3 << 20];
    rand::thread_rng().fill_bytes(&mut noise);
    content.extend_from_slice(&noise);
    app.document_upload(
        &grant,
        zf_domain::ClientId::parse(&id).unwrap(),
        zf_app::crm::documents::DocumentUpload {
            kind: DocumentKind::Contract,
            file_name: FileName::parse("合同扫描件.pdf").unwrap(),
            contract: None,
            content,
        },
        &zf_app::RequestMeta::default(),
    )
    .await
    .unwrap();
}

/// Where each chunk of a backup file starts, and where the body starts.
fn chunks(bytes: &[u8]) -> (usize, Vec<(usize, usize)>) {
    let header = 14 + u32::from_be_bytes(bytes[10..14].try_into().unwrap()) as usize;
    let mut at = header;
    let mut out = Vec::new();
    while at < bytes.len() {
        let frame = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
        let len = 4 + 12 + (frame & !(1 << 31)) as usize + 16;
        out.push((at, len));
        at += len;
    }
    (header, out)
}

fn flipped(bytes: &[u8], at: usize) -> Vec<u8> {
    flipped_bit(bytes, at, 0x01)
}

fn flipped_bit(bytes: &[u8], at: usize, mask: u8) -> Vec<u8> {
    let mut out = bytes.to_vec();
    out[at] ^= mask;
    out
}

#[tokio::test]
async fn damaged_cut_foreign_and_wrongly_keyed_files_are_refused_and_change_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    demo(&a, 10);
    add_large_document(&a).await;
    let good = tmp.path().join("good.zfbackup");
    ok(run(&a, None, &["backup", "--out", p(&good)]));
    let bytes = std::fs::read(&good).unwrap();
    let (header_end, chunk_list) = chunks(&bytes);
    assert!(chunk_list.len() >= 4, "{} chunks", chunk_list.len());
    let middle = chunk_list[chunk_list.len() / 2];
    let last = *chunk_list.last().unwrap();
    let id_at = bytes
        .windows(13)
        .position(|w| w == b"\"backup_id\":\"")
        .unwrap()
        + 13;
    let mut other_id = bytes.clone();
    other_id[id_at] = if bytes[id_at] == b'a' { b'b' } else { b'a' };

    // Another instance's backup: a valid file under another master key.
    let other = tmp.path().join("other");
    ok(run(
        &other,
        None,
        &["user", "add", "--username", "zhangsan", "--role", "sales"],
    ));
    let foreign = tmp.path().join("foreign.zfbackup");
    ok(run(&other, None, &["backup", "--out", p(&foreign)]));

    let not_a_backup = "not a Zhangfang backup";
    let altered = "fails verification";
    let truncated = "truncated";
    let mut cases: Vec<(String, Vec<u8>, &str)> = vec![
        ("the magic".into(), flipped(&bytes, 0), not_a_backup),
        (
            "the format version".into(),
            flipped(&bytes, 9),
            "format version",
        ),
        ("a byte of the header".into(), other_id, "chunk 0 fails"),
        (
            "the first chunk".into(),
            flipped(&bytes, chunk_list[0].0 + 100),
            "chunk 0 fails",
        ),
        (
            "a middle chunk".into(),
            flipped(&bytes, middle.0 + middle.1 / 2),
            altered,
        ),
        (
            "the last chunk".into(),
            flipped(&bytes, last.0 + last.1 - 1),
            altered,
        ),
        (
            "the last chunk's final flag".into(),
            flipped_bit(&bytes, last.0, 0x80),
            altered,
        ),
        (
            "cut after 5 bytes".into(),
            bytes[..5].to_vec(),
            not_a_backup,
        ),
        (
            "cut inside the header".into(),
            bytes[..header_end - 3].to_vec(),
            "cut short",
        ),
        (
            "cut after the header".into(),
            bytes[..header_end].to_vec(),
            truncated,
        ),
        (
            "cut at a chunk boundary".into(),
            bytes[..middle.0].to_vec(),
            truncated,
        ),
        (
            "cut inside a chunk".into(),
            bytes[..middle.0 + 1000].to_vec(),
            truncated,
        ),
        (
            "cut one byte short".into(),
            bytes[..bytes.len() - 1].to_vec(),
            truncated,
        ),
        (
            "bytes appended".into(),
            [bytes.as_slice(), b"x"].concat(),
            "after the final chunk",
        ),
        (
            "a chunk swapped with the next".into(),
            {
                let (x, y) = (chunk_list[1], chunk_list[2]);
                [
                    &bytes[..x.0],
                    &bytes[y.0..y.0 + y.1],
                    &bytes[x.0..x.0 + x.1],
                    &bytes[y.0 + y.1..],
                ]
                .concat()
            },
            "chunk 1 fails",
        ),
        ("an empty file".into(), Vec::new(), not_a_backup),
        (
            "a text file".into(),
            "统一社会信用代码,名称\n".as_bytes().to_vec(),
            not_a_backup,
        ),
        (
            "the database file itself".into(),
            std::fs::read(a.join("zhangfang.db")).unwrap(),
            not_a_backup,
        ),
        (
            "another instance's backup".into(),
            std::fs::read(&foreign).unwrap(),
            "another master key",
        ),
    ];
    for (n, (name, _, _)) in cases.iter_mut().enumerate() {
        *name = format!("{n:02} {name}");
    }

    // Targets: a new machine with nothing yet, and one holding data (restored with --force).
    let empty = tmp.path().join("empty");
    new_machine(&empty, &a);
    let full = tmp.path().join("full");
    new_machine(&full, &a);
    ok(run(
        &full,
        None,
        &["user", "add", "--username", "lisi", "--role", "accountant"],
    ));
    let tables = ["users", "clients", "audit_events", "system_keys"];
    let before: Vec<i64> = tables.iter().map(|t| count(&full, t)).collect();

    for (name, content, reason) in &cases {
        let file = tmp.path().join(format!("case-{}.zfbackup", &name[..2]));
        std::fs::write(&file, content).unwrap();
        let stderr = refused(run(&a, None, &["backup", "verify", p(&file)]));
        assert!(stderr.contains(reason), "verify, {name}: {stderr}");
        let stderr = refused(run(&empty, None, &["restore", "--from", p(&file)]));
        assert!(stderr.contains(reason), "restore, {name}: {stderr}");
        assert!(stderr.contains("nothing was written"), "{name}: {stderr}");
        if empty.join("zhangfang.db").exists() {
            for t in tables {
                assert_eq!(count(&empty, t), 0, "{name}: {t} in the empty target");
            }
        }
        let stderr = refused(run(
            &full,
            None,
            &["restore", "--force", "--from", p(&file)],
        ));
        assert!(stderr.contains(reason), "restore --force, {name}: {stderr}");
        let after: Vec<i64> = tables.iter().map(|t| count(&full, t)).collect();
        assert_eq!(
            after, before,
            "{name}: the target holding data is unchanged"
        );
    }
    let aside = std::fs::read_dir(&full)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains("before-restore")
        })
        .count();
    assert_eq!(aside, 0, "no safety copy is made before the file verifies");
    // Every refusal went into the source's log as a failed verification.
    let failed: i64 = sqlite(&a)
        .query_row(
            "SELECT COUNT(*) FROM audit_events WHERE action = 'backup_verified' AND outcome = 'failed'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(failed, cases.len() as i64);
    // The empty target stayed empty: the good file restores into it without --force.
    let out = ok(run(&empty, None, &["restore", "--from", p(&good)]));
    assert!(out.contains("intact"), "{out}");
}

/// Starts a command with its progress slowed down, and waits until it announces `phase`.
fn start_throttled(mut cmd: Command, phase: &str) -> Child {
    let mut child = cmd
        .env("ZHANGFANG_TEST_THROTTLE_MS", "300")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(Instant::now() < deadline, "{phase} never began");
        match lines.next() {
            Some(Ok(line)) if line.starts_with(phase) => break,
            Some(_) => {}
            None => panic!("the command ended before {phase}"),
        }
    }
    // Keep draining, so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    child
}

fn kill_after(mut child: Child, delay: Duration) {
    std::thread::sleep(delay);
    assert!(
        child.try_wait().unwrap().is_none(),
        "the command finished before it could be killed; slow it down more"
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test]
async fn kill_9_during_a_backup_or_a_restore_leaves_nothing_half_done() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    demo(&a, 30);
    let file = tmp.path().join("a.zfbackup");
    let partial = tmp.path().join("a.zfbackup.partial");

    let child = start_throttled(
        command(&a, None, &["backup", "--out", p(&file)]),
        "backing up",
    );
    kill_after(child, Duration::from_millis(500));
    assert!(!file.exists(), "a killed backup never has the final name");
    assert!(partial.exists());
    let stderr = refused(run(&a, None, &["backup", "verify", p(&partial)]));
    assert!(
        stderr.contains("truncated") || stderr.contains("not a Zhangfang backup"),
        "{stderr}"
    );
    // The leftover is named, not silently reused or removed.
    let stderr = refused(run(&a, None, &["backup", "--out", p(&file)]));
    assert!(stderr.contains("interrupted"), "{stderr}");
    std::fs::remove_file(&partial).unwrap();
    let original = backup(&a, None, &file).await;

    let b = tmp.path().join("b");
    new_machine(&b, &a);
    let child = start_throttled(
        command(&b, None, &["restore", "--from", p(&file)]),
        "restoring",
    );
    kill_after(child, Duration::from_millis(500));
    for t in ["clients", "users", "audit_events", "system_keys"] {
        assert_eq!(count(&b, t), 0, "{t} after a killed restore");
    }
    let out = ok(run(&b, None, &["restore", "--from", p(&file)]));
    assert!(out.contains("intact"), "{out}");
    let again = backup(&b, None, &tmp.path().join("b.zfbackup")).await;
    assert_eq!(data_tables(&again), data_tables(&original));

    let Some(pg) = Pg::new("kill").await else {
        return;
    };
    let c = tmp.path().join("c");
    new_machine(&c, &a);
    let child = start_throttled(
        command(&c, Some(&pg.url), &["restore", "--from", p(&file)]),
        "restoring",
    );
    kill_after(child, Duration::from_millis(500));
    // The server notices the dropped connection and rolls the transaction back.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = run(&c, Some(&pg.url), &["restore", "--from", p(&file)]);
        if out.status.success() {
            assert!(text(&out).contains("intact"), "{}", text(&out));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the target never became restorable: {}",
            text(&out)
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(pg.count("clients").await, 30);
    pg.drop_all(&[]).await;
}

/// Every client has its creation event and every record its own (filing tasks: their client's
/// generation event), and every creation event its row: nothing half-committed.
fn assert_consistent(data: &Path) {
    let db = sqlite(data);
    let events: HashSet<(String, String, String)> = db
        .prepare("SELECT action, COALESCE(resource, ''), COALESCE(record_id, '') FROM audit_events")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let clients: Vec<String> = db
        .prepare("SELECT id FROM clients")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for id in &clients {
        assert!(
            events.contains(&("client_created".into(), "clients".into(), id.clone())),
            "client {id} without its event"
        );
    }
    let records: Vec<(String, String, String)> = db
        .prepare("SELECT id, kind, client_id FROM client_records")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for (id, kind, client) in &records {
        let event = if kind == "filing_task" {
            (
                "filing_tasks_generated".into(),
                kind.clone(),
                client.clone(),
            )
        } else {
            ("record_created".into(), kind.clone(), id.clone())
        };
        assert!(events.contains(&event), "{kind} {id} without its event");
    }
    let ids: HashSet<&String> = clients.iter().chain(records.iter().map(|r| &r.0)).collect();
    let by_action: HashMap<&str, usize> = events
        .iter()
        .filter(|(a, _, _)| a == "client_created" || a == "record_created")
        .fold(HashMap::new(), |mut m, (a, _, id)| {
            assert!(ids.contains(id), "an event for {id}, which is not there");
            *m.entry(a.as_str()).or_default() += 1;
            m
        });
    assert_eq!(by_action.get("client_created"), Some(&clients.len()));
}

#[tokio::test]
async fn a_backup_taken_while_another_process_writes_restores_consistently() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    demo(&a, 5);
    let records_before = count(&a, "client_records");
    // A second process writes clients and their records through the application, each write
    // with its audit event, while backups are taken. The demo commits 500 clients, then their
    // records, per transaction, so it needs several batches to be caught between two.
    let mut writer = command(&a, None, &["demo", "--clients", "2000", "--seed", "7"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut taken: Vec<(PathBuf, u64)> = Vec::new();
    let mut n = 0;
    while writer.try_wait().unwrap().is_none() {
        n += 1;
        let file = tmp.path().join(format!("load-{n}.zfbackup"));
        let out = run(&a, None, &["backup", "--out", p(&file)]);
        assert!(out.status.success(), "{}", text(&out));
        let records = rows(&read_backup(&a, &file).await, "client_records");
        taken.push((file, records));
    }
    assert!(writer.wait().unwrap().success());
    let records_after = count(&a, "client_records") as u64;
    let (file, records) = taken
        .iter()
        .find(|(_, r)| *r > records_before as u64 && *r < records_after)
        .unwrap_or_else(|| {
            panic!("no backup landed while the writer was writing: {taken:?} of {records_after}")
        });
    let b = tmp.path().join("b");
    new_machine(&b, &a);
    let out = ok(run(&b, None, &["restore", "--from", p(file)]));
    assert!(out.contains("intact"), "{out}");
    assert_eq!(count(&b, "client_records") as u64, *records);
    assert_consistent(&b);
    assert_consistent(&a);
}

#[tokio::test]
async fn a_database_holding_data_is_refused_without_force_and_kept_aside_with_it() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    demo(&a, 8);
    let file = tmp.path().join("a.zfbackup");
    ok(run(&a, None, &["backup", "--out", p(&file)]));

    let f = tmp.path().join("f");
    new_machine(&f, &a);
    ok(run(
        &f,
        None,
        &["user", "add", "--username", "zhaoliu", "--role", "sales"],
    ));
    let events = count(&f, "audit_events");
    let stderr = refused(run(&f, None, &["restore", "--from", p(&file)]));
    assert!(stderr.contains("already holds data"), "{stderr}");
    assert!(stderr.contains("--force"), "{stderr}");
    assert_eq!(count(&f, "audit_events"), events);
    assert_eq!(count(&f, "clients"), 0);

    let out = ok(run(&f, None, &["restore", "--force", "--from", p(&file)]));
    let line = out
        .lines()
        .find(|l| l.contains("is kept in the file"))
        .unwrap_or_else(|| panic!("{out}"));
    let copy = PathBuf::from(
        line.split("is kept in the file ")
            .nth(1)
            .unwrap()
            .trim_end_matches('.'),
    );
    assert!(
        copy.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("zhangfang.db.before-restore-"),
        "{line}"
    );
    assert_eq!(
        std::fs::metadata(&copy).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let kept: i64 = rusqlite::Connection::open(&copy)
        .unwrap()
        .query_row(
            "SELECT COUNT(*) FROM users WHERE username = 'zhaoliu'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(kept, 1, "the safety copy holds the data that was there");
    assert_eq!(count(&f, "clients"), 8);
    let gone: i64 = sqlite(&f)
        .query_row(
            "SELECT COUNT(*) FROM users WHERE username = 'zhaoliu'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(gone, 0);
    assert!(ok(run(&f, None, &["audit", "verify"])).contains("intact"));

    let Some(pg) = Pg::new("force").await else {
        return;
    };
    let g = tmp.path().join("g");
    new_machine(&g, &a);
    ok(run(&g, Some(&pg.url), &["restore", "--from", p(&file)]));
    let events = pg.count("audit_events").await;
    let stderr = refused(run(&g, Some(&pg.url), &["restore", "--from", p(&file)]));
    assert!(stderr.contains("already holds data"), "{stderr}");
    assert_eq!(pg.count("audit_events").await, events);
    let out = ok(run(
        &g,
        Some(&pg.url),
        &["restore", "--force", "--from", p(&file)],
    ));
    let line = out
        .lines()
        .find(|l| l.contains("is kept in the PostgreSQL schema"))
        .unwrap_or_else(|| panic!("{out}"));
    let aside = line
        .split("schema ")
        .nth(1)
        .unwrap()
        .trim_end_matches('.')
        .to_owned();
    assert!(aside.starts_with(&format!("{}_before_restore_", pg.schema)));
    let kept: i64 = pg
        .client
        .query_one(&format!("SELECT COUNT(*) FROM {aside}.audit_events"), &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(kept, events);
    assert_eq!(pg.count("clients").await, 8);
    pg.drop_all(&[&aside]).await;
}

/// The benchmark is a command, not a timed test: here it runs on a tiny firm only to prove it
/// works, restores identical data, and prints its table and JSON.
#[test]
fn the_backup_benchmark_runs_on_a_tiny_firm() {
    let tmp = tempfile::tempdir().unwrap();
    let json = tmp.path().join("bench.json");
    let mut cmd = Command::new(BIN);
    cmd.args(["bench", "backup", "--clients", "3", "--json"])
        .arg(&json)
        .env("TMPDIR", tmp.path());
    if postgres_url().is_none() {
        cmd.env_remove("ZF_TEST_POSTGRES_URL");
    }
    let out = cmd.output().unwrap();
    let stdout = ok(out);
    for part in [
        "| backup (snapshot",
        "| restore into SQLite",
        "raw copy of the backup file",
        "1,000,000 clients",
    ] {
        assert!(stdout.contains(part), "{stdout}");
    }
    let figures: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(figures["clients"], 3);
    assert!(figures["backup_bytes"].as_u64().unwrap() > 0);
    let restores = figures["restores"].as_array().unwrap();
    let expected = if postgres_url().is_some() { 2 } else { 1 };
    assert_eq!(restores.len(), expected, "{figures}");
    assert!(restores.iter().all(|r| r["identical"] == true));
}

/// Erases one client of `data` through the application as the firm must: the demo supervisor
/// asks, and a second supervisor approves.
async fn erase_one(data: &Path) -> String {
    let id: String = sqlite(data)
        .query_row("SELECT id FROM clients ORDER BY id LIMIT 1", [], |r| {
            r.get(0)
        })
        .unwrap();
    let instance = zf_server::Instance::open(
        data,
        zf_server::DatabaseChoice::parse(data, None).unwrap(),
        zf_app::AppConfig::default(),
    )
    .await
    .unwrap();
    let app = &instance.app;
    let second = zf_domain::Username::parse("demo-fuzeren").unwrap();
    app.add_user(
        second.clone(),
        zf_policy::Role::Supervisor,
        None,
        zf_audit::Actor::cli("test"),
    )
    .await
    .unwrap();
    let meta = zf_app::RequestMeta::default();
    let asks = app
        .operator_grant(
            &zf_domain::Username::parse("demo-zhuguan").unwrap(),
            zf_policy::Operation::ErasureRequest,
        )
        .await
        .unwrap();
    let request = app
        .erasure_request(
            &asks,
            zf_domain::ClientId::parse(&id).unwrap(),
            "客户解约，申请删除资料",
            &meta,
        )
        .await
        .unwrap();
    let approves = app
        .operator_grant(&second, zf_policy::Operation::ErasureDecide)
        .await
        .unwrap();
    app.erasure_decide(&approves, &request.id, true, "已核实，同意删除", &meta)
        .await
        .unwrap();
    id
}

fn has_client(data: &Path, id: &str) -> bool {
    sqlite(data)
        .query_row("SELECT COUNT(*) FROM clients WHERE id = ?1", [id], |r| {
            r.get::<_, i64>(0)
        })
        .unwrap()
        > 0
}

#[tokio::test]
async fn a_client_erased_after_a_backup_stays_erased_when_it_is_restored() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    demo(&data, 4);
    let before = dir.path().join("before.zfbackup");
    backup(&data, None, &before).await;
    let erased = erase_one(&data).await;
    assert!(!has_client(&data, &erased));
    let ledger = std::fs::read_to_string(data.join("erasures.ledger")).unwrap();
    assert!(
        ledger.contains(&erased),
        "the data directory keeps the ledger too"
    );

    // Restoring the older backup over the database: the client comes back with the backup and
    // is erased again before the restore is done, audited as such.
    let out = ok(run(
        &data,
        None,
        &["restore", "--from", p(&before), "--force"],
    ));
    assert!(out.contains("Erased again 1 clients"), "{out}");
    assert!(!has_client(&data, &erased));
    assert_eq!(count(&data, "clients"), 3);
    let key_left: i64 = sqlite(&data)
        .query_row(
            "SELECT COUNT(*) FROM client_keys WHERE client_id = ?1",
            [&erased],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(key_left, 0, "its data key is gone again");
    let events: i64 = sqlite(&data)
        .query_row(
            "SELECT COUNT(*) FROM audit_events WHERE action = 'erasure_reapplied' AND record_id = ?1",
            [&erased],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(events, 1);

    // The database lost altogether, the data directory's ledger survives: still erased.
    for name in ["zhangfang.db", "zhangfang.db-wal", "zhangfang.db-shm"] {
        let _ = std::fs::remove_file(data.join(name));
    }
    for entry in std::fs::read_dir(&data).unwrap() {
        let path = entry.unwrap().path();
        if path.to_string_lossy().contains("safety") {
            let _ = std::fs::remove_file(&path);
        }
    }
    let out = ok(run(&data, None, &["restore", "--from", p(&before)]));
    assert!(out.contains("Erased again 1 clients"), "{out}");
    assert!(!has_client(&data, &erased));
}
