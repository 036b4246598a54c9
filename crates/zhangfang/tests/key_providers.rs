//! Key providers through the binary: a master key derived from a passphrase (read from standard
//! input when it is not a terminal), and the refusals of a wrong passphrase and of a senseless
//! `[keys]` configuration.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

mod common;

use common::{ok, refused, BIN};

const PASSPHRASE: &str = "correct horse battery staple 账房";

/// Runs `zhangfang <args> --data <data>` with `stdin` as its standard input.
fn run(data: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .arg("--data")
        .arg(data)
        .env_remove("ZHANGFANG_DATABASE")
        .env_remove("ZHANGFANG_MASTER_KEY")
        .env_remove("ZHANGFANG_KEY_PROVIDER")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let _ = input.write_all(stdin.as_bytes());
    drop(input);
    child.wait_with_output().unwrap()
}

fn line(passphrase: &str) -> String {
    format!("{passphrase}\n")
}

/// Starts `serve` with the passphrase on standard input and waits until it serves; then stops it.
fn serve_once(data: &Path) {
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(data)
        .env_remove("ZHANGFANG_DATABASE")
        .env_remove("ZHANGFANG_MASTER_KEY")
        .env_remove("ZHANGFANG_KEY_PROVIDER")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(line(PASSPHRASE).as_bytes()).unwrap();
    drop(input);
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    let served = loop {
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(l) if l.starts_with("Zhangfang is serving on ") => break true,
            Ok(_) => {}
            Err(_) => break false,
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(served, "serve with the passphrase did not start");
}

#[test]
fn a_passphrase_deployment_initialises_restarts_and_refuses_a_wrong_passphrase() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("d");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::write(
        data.join("zhangfang.toml"),
        "[keys]\nprovider = \"passphrase\"\n",
    )
    .unwrap();

    // A new passphrase that is too short is refused, and nothing is created.
    let err = refused(run(&data, &["demo", "--clients", "3"], "short\n"));
    assert!(err.contains("at least 12 characters"), "{err}");
    assert!(!data.join("master.passphrase").exists());

    // First initialisation: the key is derived from the passphrase; no key file is written.
    ok(run(&data, &["demo", "--clients", "3"], &line(PASSPHRASE)));
    assert!(!data.join("master.key").exists());
    let file = data.join("master.passphrase");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let stored = std::fs::read_to_string(&file).unwrap();
    assert!(
        stored.starts_with("zhangfang-passphrase v1\nkdf argon2id\n"),
        "{stored}"
    );
    assert!(!stored.contains("horse"));

    let export = |name: &str, passphrase: &str| {
        let out = tmp.path().join(name);
        let result = run(
            &data,
            &[
                "export",
                "--as",
                "demo-zhuguan",
                "--out",
                out.to_str().unwrap(),
            ],
            &line(passphrase),
        );
        (result, out)
    };
    let (result, first) = export("first.csv", PASSPHRASE);
    ok(result);

    // Restarted with the same passphrase: the server starts, and the data reads the same.
    serve_once(&data);
    let (result, second) = export("second.csv", PASSPHRASE);
    ok(result);
    assert_eq!(
        std::fs::read(&first).unwrap(),
        std::fs::read(&second).unwrap()
    );
    let csv = std::fs::read_to_string(&second).unwrap();
    assert!(csv.lines().count() >= 4, "{csv}");

    // A wrong passphrase is refused with a reason before anything opens, and never echoed.
    let (result, third) = export("third.csv", "correct horse battery stapler");
    let err = refused(result);
    assert!(err.contains("passphrase is wrong"), "{err}");
    assert!(!err.contains("stapler"), "{err}");
    assert!(!third.exists());
    let err = refused(run(
        &data,
        &["serve", "--listen", "127.0.0.1:0"],
        "not the passphrase at all\n",
    ));
    assert!(err.contains("passphrase is wrong"), "{err}");
    let err = refused(run(&data, &["keys", "status"], ""));
    assert!(err.contains("standard input held no passphrase"), "{err}");

    // A backup restores into a new data directory that has the passphrase file.
    let backup = tmp.path().join("b.zfbackup");
    ok(run(
        &data,
        &["backup", "--out", backup.to_str().unwrap()],
        &line(PASSPHRASE),
    ));
    let other = tmp.path().join("other");
    std::fs::create_dir(&other).unwrap();
    std::fs::set_permissions(&other, std::fs::Permissions::from_mode(0o700)).unwrap();
    let err = refused(run(
        &other,
        &[
            "restore",
            "--key-provider",
            "passphrase",
            "--from",
            backup.to_str().unwrap(),
        ],
        &line(PASSPHRASE),
    ));
    assert!(err.contains("master.passphrase"), "{err}");
    std::fs::copy(&file, other.join("master.passphrase")).unwrap();
    ok(run(
        &other,
        &[
            "restore",
            "--key-provider",
            "passphrase",
            "--from",
            backup.to_str().unwrap(),
        ],
        &line(PASSPHRASE),
    ));
    let restored = tmp.path().join("restored.csv");
    ok(run(
        &other,
        &[
            "export",
            "--key-provider",
            "passphrase",
            "--as",
            "demo-zhuguan",
            "--out",
            restored.to_str().unwrap(),
        ],
        &line(PASSPHRASE),
    ));
    assert_eq!(
        std::fs::read(&first).unwrap(),
        std::fs::read(&restored).unwrap()
    );
}

#[test]
fn a_senseless_keys_configuration_is_refused_with_a_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("d");
    for (config, expected) in [
        ("[keys]\nprovider = \"vault\"\n", "keys.provider must be"),
        (
            "[keys]\nprovider = \"pkcs11\"\n",
            "needs keys.pkcs11_module",
        ),
        (
            "[keys]\nprovider = \"file\"\npkcs11_token_label = \"x\"\n",
            "apply only to keys.provider = \"pkcs11\"",
        ),
        ("[keys]\nprovder = \"file\"\n", "unknown field"),
    ] {
        let file = tmp.path().join("zhangfang.toml");
        std::fs::write(&file, config).unwrap();
        let out = run(
            &data,
            &["keys", "status", "--config", file.to_str().unwrap()],
            "",
        );
        let err = refused(out);
        assert!(err.contains(expected), "{config}: {err}");
    }
    // The provider's PIN variable must be set; its name is said, never a value.
    let out = Command::new(BIN)
        .args([
            "keys",
            "status",
            "--key-provider",
            "pkcs11",
            "--pkcs11-module",
            "/nonexistent/libpkcs11.so",
            "--pkcs11-token-label",
            "t",
            "--pkcs11-pin-env",
            "ZF_TEST_UNSET_PIN_VARIABLE",
            "--data",
        ])
        .arg(&data)
        .env_remove("ZF_TEST_UNSET_PIN_VARIABLE")
        .output()
        .unwrap();
    let err = refused(out);
    assert!(err.contains("ZF_TEST_UNSET_PIN_VARIABLE"), "{err}");
    assert!(!data.join("master.key").exists());
}
