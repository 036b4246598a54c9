//! `zhangfang keys rotate --reencrypt` on a demo firm while a server answers reads and writes
//! over HTTPS: the command is killed with SIGKILL half-way and run again, and the job finishes.
//! No request fails, every sealed value ends under the new data keys, no old key is left, and
//! every value opens — including the notes written during the job.
//!
//! The firm's size is `ZF_REENCRYPT_CLIENTS` (default 500). The 100,000-client figures in
//! docs/benchmarks.md come from
//! `ZF_REENCRYPT_CLIENTS=100000 cargo test --release -p zhangfang --test reencrypt_crash -- --nocapture`.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

const SEALED_VALUES: [&str; 5] = [
    "SELECT legal_rep_id_number FROM clients",
    "SELECT notes FROM clients WHERE notes IS NOT NULL",
    "SELECT sealed FROM client_records WHERE sealed IS NOT NULL",
    "SELECT content FROM record_blobs",
    "SELECT sealed FROM leads",
];

fn db(data: &Path) -> rusqlite::Connection {
    let c = rusqlite::Connection::open(data.join("zhangfang.db")).unwrap();
    c.busy_timeout(Duration::from_secs(10)).unwrap();
    c
}

/// How many sealed values are under each data-key version.
fn versions(data: &Path) -> BTreeMap<u32, u64> {
    let c = db(data);
    let mut out = BTreeMap::new();
    for query in SEALED_VALUES {
        let mut stmt = c.prepare(query).unwrap();
        for bytes in stmt
            .query_map([], |r| r.get::<_, Vec<u8>>(0))
            .unwrap()
            .map(Result::unwrap)
        {
            let sealed = zf_crypto::Sealed::from_bytes(bytes).unwrap();
            *out.entry(sealed.key_version().0).or_default() += 1;
        }
    }
    out
}

/// (holders done, total, state) of the latest job.
fn job(data: &Path) -> Option<(i64, i64, String)> {
    db(data)
        .query_row(
            "SELECT holders_done, total, state FROM key_jobs ORDER BY started_at DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .ok()
}

fn reencrypt(data: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(["keys", "rotate", "--reencrypt", "--data"])
        .arg(data)
        .env_remove("ZHANGFANG_DATABASE");
    cmd
}

/// What the load generator saw.
#[derive(Default)]
struct Load {
    requests: AtomicU64,
    failures: Mutex<Vec<String>>,
    notes: Mutex<HashMap<String, String>>,
}

async fn drive(
    c: reqwest::Client,
    base: String,
    ids: Vec<String>,
    worker: usize,
    load: Arc<Load>,
    stop: Arc<AtomicBool>,
) {
    let mut round = 0usize;
    while !stop.load(Ordering::Relaxed) {
        let id = &ids[(round * 7 + worker * 13) % ids.len()];
        let r = c.get(format!("{base}/api/v1/clients/{id}")).send().await;
        match r {
            Ok(r) if r.status() == 200 => {}
            Ok(r) => {
                let failure = format!(
                    "GET {id}: {} {}",
                    r.status(),
                    r.text().await.unwrap_or_default()
                );
                load.failures.lock().unwrap().push(failure);
            }
            Err(e) => load.failures.lock().unwrap().push(format!("GET {id}: {e}")),
        }
        let notes = format!("加载{worker}-{round}");
        let r = c
            .patch(format!("{base}/api/v1/clients/{id}"))
            .json(&json!({ "notes": notes }))
            .send()
            .await;
        match r {
            Ok(r) if r.status() == 200 => {
                load.notes.lock().unwrap().insert(id.clone(), notes);
            }
            Ok(r) => {
                let failure = format!(
                    "PATCH {id}: {} {}",
                    r.status(),
                    r.text().await.unwrap_or_default()
                );
                load.failures.lock().unwrap().push(failure);
            }
            Err(e) => load
                .failures
                .lock()
                .unwrap()
                .push(format!("PATCH {id}: {e}")),
        }
        load.requests.fetch_add(2, Ordering::Relaxed);
        round += 1;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reencryption_killed_half_way_under_load_finishes_when_run_again() {
    let clients: u32 = std::env::var("ZF_REENCRYPT_CLIENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::write(
        data.join("zhangfang.toml"),
        // The load generator reads thousands of records in minutes, which the read-volume
        // rule rightly takes for exfiltration and answers by locking the account.
        "[data_keys]\nbatch = 50\ngrace_seconds = 1\nlease_seconds = 3\n\n\
         [monitor.read_volume]\nenabled = false\n",
    )
    .unwrap();
    let started = Instant::now();
    let out = Command::new(BIN)
        .args(["demo", "--clients", &clients.to_string(), "--data"])
        .arg(&data)
        .env_remove("ZHANGFANG_DATABASE")
        .stdout(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "demo firm of {clients} clients in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let before = versions(&data);
    assert_eq!(before.keys().copied().collect::<Vec<_>>(), vec![1]);
    let values: u64 = before.values().sum();
    let had_notes: std::collections::HashSet<String> = {
        let c = db(&data);
        let mut stmt = c
            .prepare("SELECT id FROM clients WHERE notes IS NOT NULL")
            .unwrap();
        let ids = stmt.query_map([], |r| r.get(0)).unwrap();
        ids.map(Result::unwrap).collect()
    };

    let node = serve(&data, None);
    let out = user_add(&data, None, "jiazai", "supervisor", "one-time for the load");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let c = client(&data);
    sign_in_and_replace(
        &c,
        &node.base,
        "jiazai",
        "one-time for the load",
        "load generator pass phrase",
    )
    .await;
    enrol(&c, &node.base, &node.base).await;
    let page: Value = c
        .get(format!("{}/api/v1/clients?limit=200", node.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<String> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect();
    assert!(!ids.is_empty(), "{page}");

    let load = Arc::new(Load::default());
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for worker in 0..3 {
        workers.push(tokio::spawn(drive(
            c.clone(),
            node.base.clone(),
            ids.clone(),
            worker,
            load.clone(),
            stop.clone(),
        )));
    }

    // Start the job and kill the command once a third of the holders have new keys.
    let job_started = Instant::now();
    let mut first = reencrypt(&data)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let killed_at = loop {
        if let Some((done, total, _)) = job(&data) {
            if done * 3 >= total {
                first.kill().unwrap(); // SIGKILL
                first.wait().unwrap();
                break done;
            }
        }
        assert!(
            first.try_wait().unwrap().is_none(),
            "the job finished before it could be killed; use more clients"
        );
        assert!(
            job_started.elapsed() < Duration::from_secs(600),
            "no progress"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let (_, total, state) = job(&data).unwrap();
    assert_eq!(state, "running", "a killed job stays to be resumed");
    assert!(killed_at < total, "killed at {killed_at} of {total}");
    let mid = versions(&data);
    assert!(
        mid.contains_key(&1) && mid.contains_key(&2),
        "half-way: {mid:?}"
    );

    // Run it again: it carries on from the cursor (or follows the server, if the server took
    // the job over when the killed command's lease expired) until the job is finished.
    let out = tokio::task::spawn_blocking({
        let data = data.clone();
        move || reencrypt(&data).output().unwrap()
    })
    .await
    .unwrap();
    let job_took = job_started.elapsed();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("finished"), "{said}");
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }

    let failures = load.failures.lock().unwrap().clone();
    let requests = load.requests.load(Ordering::Relaxed);
    assert!(
        failures.is_empty(),
        "{} of {requests} requests failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert!(requests > 0);

    let (done, total, state) = job(&data).unwrap();
    assert_eq!(state, "finished");
    assert_eq!(done, total, "every holder counted once, across the crash");
    let after = versions(&data);
    assert_eq!(
        after.keys().copied().collect::<Vec<_>>(),
        vec![2],
        "{after:?}"
    );
    // Notes written by the load to clients that had none are the only new values.
    let added = load
        .notes
        .lock()
        .unwrap()
        .keys()
        .filter(|id| !had_notes.contains(*id))
        .count() as u64;
    assert_eq!(after.values().sum::<u64>(), values + added, "no value lost");
    let left: i64 = db(&data)
        .query_row(
            "SELECT (SELECT count(*) FROM client_keys WHERE previous_dek IS NOT NULL)
                  + (SELECT count(*) FROM leads WHERE previous_dek IS NOT NULL)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(left, 0, "no previous data key is left");

    // The last notes each writer saw accepted are what the server reads back.
    let notes = load.notes.lock().unwrap().clone();
    for (id, written) in &notes {
        let got: Value = c
            .get(format!("{}/api/v1/clients/{id}", node.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(got["notes"], written.as_str(), "{got}");
    }
    drop(node);

    // And every sealed value of the firm opens under the keys now in the database.
    let instance = zf_server::Instance::open(
        &data,
        zf_server::DatabaseChoice::parse(&data, None).unwrap(),
        zf_app::AppConfig::default(),
    )
    .await
    .unwrap();
    let check = instance.app.sealed_check().await.unwrap();
    eprintln!(
        "re-encryption of {total} holders ({values} values) under load: {:.1} s including the \
         kill at {killed_at} and the restart; {requests} requests served meanwhile, {} failed; \
         {} values opened afterwards",
        job_took.as_secs_f64(),
        failures.len(),
        check.fields_opened
    );
}
