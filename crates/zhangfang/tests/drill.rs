//! `zhangfang drill` as an operator runs it: a demo firm is backed up to a directory target,
//! the drill recovers the newest backup on a fresh directory, serves it over HTTPS and reports
//! RTO and RPO; a damaged backup fails the drill. Both are kept as evidence in the instance.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use serde_json::Value;
use zf_app::AppConfig;
use zf_audit::Actor;
use zf_server::{DatabaseChoice, Instance};

const BIN: &str = env!("CARGO_BIN_EXE_zhangfang");

fn zhangfang(data: &Path, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .arg("--data")
        .arg(data)
        .args(args)
        .env_remove("ZHANGFANG_DATABASE")
        .env_remove("ZHANGFANG_CONFIG")
        .output()
        .expect("run zhangfang")
}

async fn instance(data: &Path) -> Instance {
    let config = AppConfig {
        backup: zf_app::backup::BackupConfig {
            directory: Some(data.parent().unwrap().join("backups")),
            ..Default::default()
        },
        ..AppConfig::default()
    };
    Instance::open(data, DatabaseChoice::parse(data, None).unwrap(), config)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drill_recovers_the_newest_backup_and_reports_rto_and_rpo() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let backups = root.path().join("backups");
    std::fs::create_dir(&backups).unwrap();
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::write(
        data.join("zhangfang.toml"),
        format!(
            "[backup]\ndirectory = {:?}\n",
            backups.display().to_string()
        ),
    )
    .unwrap();
    let out = zhangfang(&data, &["demo", "--clients", "5"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    {
        let source = instance(&data).await;
        let run = source
            .app
            .backup_run(Actor::cli("test"), "cli")
            .await
            .unwrap();
        assert_eq!(run.outcome, "success", "{run:?}");
        // Erased after the backup (asked by the demo supervisor, approved by a second one):
        // the recovered copy must not bring it back.
        let second = zf_domain::Username::parse("demo-fuzeren").unwrap();
        source
            .app
            .add_user(
                second.clone(),
                zf_policy::Role::Supervisor,
                None,
                Actor::cli("test"),
            )
            .await
            .unwrap();
        let asks = source
            .app
            .operator_grant(
                &zf_domain::Username::parse("demo-zhuguan").unwrap(),
                zf_policy::Operation::ErasureRequest,
            )
            .await
            .unwrap();
        let approves = source
            .app
            .operator_grant(&second, zf_policy::Operation::ErasureDecide)
            .await
            .unwrap();
        let some = source
            .app
            .store()
            .client_list(
                zf_policy::Scope::All,
                zf_store::Page {
                    limit: 1,
                    offset: 0,
                },
            )
            .await
            .unwrap();
        let meta = zf_app::RequestMeta::default();
        let request = source
            .app
            .erasure_request(&asks, some[0].row.id, "客户解约，申请删除资料", &meta)
            .await
            .unwrap();
        source
            .app
            .erasure_decide(&approves, &request.id, true, "已核实，同意删除", &meta)
            .await
            .unwrap();
    }

    let report = root.path().join("report.json");
    let out = zhangfang(&data, &["drill", "--report", report.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("PASSED"), "{stdout}");
    assert!(stdout.contains("RTO"), "{stdout}");
    let r: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(r["ok"], true);
    assert_eq!(r["rto_met"], true);
    assert!(r["rpo_ms"].as_i64().unwrap() >= 0);
    assert_eq!(r["rto_objective_ms"], 4 * 3_600_000);
    let steps: Vec<&str> = r["steps"]
        .as_array()
        .unwrap()
        .iter()
        .inspect(|s| assert_eq!(s["ok"], true, "{s}"))
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert_eq!(
        steps,
        [
            "fetch",
            "keys",
            "restore",
            "open",
            "erasure ledger",
            "serve over HTTPS",
            "audit chain",
            "decrypt every sealed field"
        ]
    );
    assert_eq!(r["steps"][4]["note"], "1 erased again");
    assert!(r["steps"][7]["note"]
        .as_str()
        .unwrap()
        .starts_with("4 clients"));

    // A damaged file fails the drill, and the failure is kept too.
    let name = std::fs::read_dir(&backups)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "zfbackup"))
        .unwrap();
    let mut bytes = std::fs::read(&name).unwrap();
    let at = bytes.len() - 100;
    bytes[at] ^= 1;
    let damaged = root.path().join("damaged.zfbackup");
    std::fs::write(&damaged, &bytes).unwrap();
    let out = zhangfang(
        &data,
        &[
            "drill",
            "--from",
            damaged.to_str().unwrap(),
            "--report",
            report.to_str().unwrap(),
        ],
    );
    assert!(!out.status.success());
    let r: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(r["ok"], false);
    assert_eq!(r["steps"][2]["step"], "restore");
    assert_eq!(r["steps"][2]["ok"], false);

    let source = instance(&data).await;
    let drills = source
        .app
        .store()
        .backup_runs(Some("drill"), 10)
        .await
        .unwrap();
    let outcomes: Vec<&str> = drills.iter().map(|d| d.outcome.as_str()).collect();
    assert_eq!(outcomes, ["failed", "success"]);
    let overview = source.app.backup_overview().await.unwrap();
    assert!(!overview.drill_overdue);
    assert!(overview.runs[1].rto_ms.unwrap() >= 0);
}

#[test]
fn a_backup_section_that_cannot_work_is_refused_with_its_reason() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700)).unwrap();
    for (toml, reason) in [
        ("[backup]\nschedule = \"02:30\"\n", "needs a target"),
        (
            "[backup]\ndirectory = \"/mnt\"\nschedule = \"25:00\"\n",
            "not a time of day",
        ),
        (
            "[backup]\ndirectory = \"/mnt\"\nretention = 7\n",
            "retention",
        ),
        (
            "[backup]\ndirectory = \"/mnt\"\nkeep = 7\n",
            "unknown field",
        ),
        (
            "[backup]\ndirectory = \"/mnt\"\n[backup.s3]\nendpoint = \"http://x\"\n",
            "missing field",
        ),
    ] {
        std::fs::write(data.join("zhangfang.toml"), toml).unwrap();
        let out = zhangfang(&data, &["drill"]);
        assert!(!out.status.success(), "{toml}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(reason), "{toml}: {err}");
    }
}
