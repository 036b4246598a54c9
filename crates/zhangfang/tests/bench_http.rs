//! `zhangfang bench` is a command, not a timed test: here it runs on a tiny firm with a short
//! window only to prove it works end to end — the demo firm, the server over TLS, a signed-in
//! supervisor, every row of the table and the JSON beside it. Nothing here asserts a speed.

use std::process::Command;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_zhangfang");

const ROWS: [&str; 16] = [
    "trivial TLS endpoint (GET /healthz)",
    "get client detail (decrypt, audited sensitive read)",
    "list page of 50 (masked)",
    "exact search on an encrypted field (ID number)",
    "create client",
    "update client",
    "login (password step, argon2id)",
    "audit chain verification",
    "export of every client (CSV, ID numbers in full)",
    "import of 5,000 new clients (CSV)",
    "backup (snapshot, zstd, AES-256-GCM), database MB",
    "restore into an empty SQLite database, backup MB",
    "client record sealed and opened, AES-256-GCM (demo sizes)",
    "client record sealed and opened, SM4-GCM (demo sizes)",
    "KEK rotation (every key rewrapped, old version retired)",
    "re-encryption (new data keys, every value sealed again)",
];

#[test]
fn the_http_benchmark_runs_on_a_tiny_firm() {
    let tmp = tempfile::tempdir().unwrap();
    let json = tmp.path().join("bench.json");
    let out = Command::new(BIN)
        .args([
            "bench",
            "--clients",
            "30",
            "--connections",
            "4",
            "--duration",
            "1",
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
    for row in ROWS {
        assert!(text.contains(&format!("| {row} |")), "no row {row}: {text}");
    }
    let figures: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(figures["clients"], 30, "{figures}");
    assert_eq!(figures["connections"], 4);
    let rows = figures["rows"].as_array().unwrap();
    assert_eq!(rows.len(), ROWS.len(), "{figures}");
    for (row, name) in rows.iter().zip(ROWS) {
        assert_eq!(row["name"], name);
        assert!(row["per_second"].as_f64().unwrap() > 0.0, "{row}");
        if let Some(requests) = row.get("requests") {
            assert!(requests.as_u64().unwrap() > 0, "{row}");
            assert_eq!(row["errors"], 0, "{row}");
            assert!(row["p99_ms"].as_f64().unwrap() >= row["p50_ms"].as_f64().unwrap());
        }
        if name != ROWS[0] {
            assert!(row["ratio"].as_f64().unwrap() > 0.0, "{row}");
        }
    }
}

/// `--only` measures the rows named and the baseline, nothing else.
#[test]
fn the_http_benchmark_measures_only_the_rows_asked_for() {
    let tmp = tempfile::tempdir().unwrap();
    let json = tmp.path().join("bench.json");
    let out = Command::new(BIN)
        .args([
            "bench",
            "--clients",
            "5",
            "--connections",
            "2",
            "--duration",
            "0.5",
            "--only",
            "detail,restore",
            "--json",
        ])
        .arg(&json)
        .env("TMPDIR", tmp.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let figures: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let names: Vec<&str> = figures["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, [ROWS[0], ROWS[1], ROWS[11]]);
}

#[test]
fn the_http_benchmark_refuses_a_senseless_shape() {
    for args in [
        ["--clients", "0"],
        ["--connections", "0"],
        ["--duration", "0"],
    ] {
        let out = Command::new(BIN).arg("bench").args(args).output().unwrap();
        assert!(!out.status.success(), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("must be"),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = Command::new(BIN)
        .args(["bench", "--only", "everything"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("everything") && said.contains("detail"),
        "{said}"
    );
}
