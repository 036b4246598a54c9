//! The SoftHSM2-backed deployment starts, serves, rotates and restarts with the KEK never
//! present in process memory or on disk.
//!
//! A token is initialised with `softhsm2-util` in a temporary directory. KEK version 1 is put in
//! it from known bytes before the first start (the only way to know what to look for: a KEK
//! generated in the token is never seen by anyone), and then `zhangfang serve` runs with
//! `[keys] provider = "pkcs11"` and the PIN in an environment variable: a client is created
//! over HTTPS, `zhangfang keys rotate` generates version 2 inside the token while the server
//! runs, the server is restarted, the clients are read back, and a backup is restored and
//! drilled with the token alone. The running server's memory (every readable mapping in
//! /proc/<pid>/mem) and every file written are searched for the KEK's bytes; a marker string
//! known to be in memory must be found by the same search, so the search can fail. Last, the
//! server's KEK is destroyed in the token by this process while the server runs: reading a
//! client and creating one answer 503, nothing is written, and the server goes on serving.
//!
//! Without SoftHSM2 the test skips with a printed reason, unless `ZF_REQUIRE_HSM=1`.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};
use zf_crypto::{KeyVersion, Pkcs11Token, TokenPin};

mod common;

use common::{client as https, enrol, ok, private_dir, sign_in_and_replace, start, Node, BIN};
const DEFAULT_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
const TOKEN_LABEL: &str = "zhangfang-e2e";
const USER_PIN: &str = "e2e-user-pin-2468";
const SO_PIN: &str = "e2e-so-pin-1357";
const PIN_VARIABLE: &str = "ZF_E2E_TOKEN_PIN";
/// KEK version 1, imported into the token before the deployment's first start.
const KNOWN_KEK: [u8; 32] = [
    0x5a, 0x46, 0x2d, 0x4b, 0x45, 0x4b, 0x9e, 0x13, 0xc7, 0x41, 0x08, 0xfe, 0x6d, 0x22, 0xb0, 0x39,
    0xe4, 0x7a, 0x55, 0x0c, 0x91, 0xd8, 0x2f, 0x63, 0xaa, 0x17, 0x84, 0xcb, 0x3e, 0xf0, 0x6b, 0x02,
];

fn module() -> String {
    std::env::var("ZF_SOFTHSM2_MODULE").unwrap_or_else(|_| DEFAULT_MODULE.to_owned())
}

/// Skips (or, with ZF_REQUIRE_HSM=1, fails) when SoftHSM2 is missing.
fn softhsm_available() -> bool {
    let module = module();
    let util = Command::new("softhsm2-util").arg("--version").output();
    let reason = if !Path::new(&module).exists() {
        format!("{module} is missing")
    } else if util.is_err() {
        "softhsm2-util is not on the PATH".to_owned()
    } else {
        return true;
    };
    assert!(
        std::env::var("ZF_REQUIRE_HSM").as_deref() != Ok("1"),
        "ZF_REQUIRE_HSM=1 but SoftHSM2 is not usable: {reason} (apt-get install softhsm2)"
    );
    eprintln!("skipping the SoftHSM2 end-to-end test: {reason} (apt-get install softhsm2)");
    false
}

/// A token in `dir`, initialised with its SO and user PINs; returns the SOFTHSM2_CONF path.
fn init_token(dir: &Path) -> PathBuf {
    let tokens = dir.join("tokens");
    std::fs::create_dir(&tokens).unwrap();
    let conf = dir.join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
            tokens.display()
        ),
    )
    .unwrap();
    let out = Command::new("softhsm2-util")
        .args([
            "--init-token",
            "--free",
            "--label",
            TOKEN_LABEL,
            "--so-pin",
            SO_PIN,
            "--pin",
            USER_PIN,
        ])
        .env("SOFTHSM2_CONF", &conf)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "softhsm2-util: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    conf
}

/// A data directory configured for the token, with `marker` as the firm's name.
fn configure(data: &Path, marker: &str) {
    private_dir(data);
    std::fs::write(
        data.join("zhangfang.toml"),
        format!(
            "firm_name = \"{marker}\"\nmonitor_interval_ms = 200\n\n[keys]\nprovider = \"pkcs11\"\n\
             pkcs11_module = \"{}\"\npkcs11_token_label = \"{TOKEN_LABEL}\"\npkcs11_pin_env = \"{PIN_VARIABLE}\"\n",
            module()
        ),
    )
    .unwrap();
}

fn command(conf: &Path, data: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .arg("--data")
        .arg(data)
        .env("SOFTHSM2_CONF", conf)
        .env(PIN_VARIABLE, USER_PIN)
        .env_remove("ZHANGFANG_DATABASE")
        .env_remove("ZHANGFANG_MASTER_KEY")
        .env_remove("ZHANGFANG_KEY_PROVIDER")
        .env_remove("ZHANGFANG_CONFIG");
    cmd
}

fn serve(conf: &Path, data: &Path) -> Node {
    start(command(conf, data, &["serve", "--listen", "127.0.0.1:0"]))
}

fn user_add(conf: &Path, data: &Path, username: &str, role: &str, password: &str) {
    let mut child = command(
        conf,
        data,
        &[
            "user",
            "add",
            "--username",
            username,
            "--role",
            role,
            "--password-stdin",
        ],
    )
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{password}\n").as_bytes())
        .unwrap();
    ok(child.wait_with_output().unwrap());
}

async fn sign_in_and_enrol(c: &reqwest::Client, base: &str, user: &str, one_time: &str) {
    sign_in_and_replace(c, base, user, one_time, "token deployment pass phrase").await;
    enrol(c, base, base).await;
}

async fn create_client(
    c: &reqwest::Client,
    base: &str,
    name: &str,
    uscc: &str,
    id: &str,
) -> String {
    let r = c
        .post(format!("{base}/api/v1/clients"))
        .json(&json!({
            "name": name,
            "uscc": uscc,
            "taxpayer_type": "small_scale",
            "legal_rep_name": "王五",
            "legal_rep_id_number": id,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn read_client(c: &reqwest::Client, base: &str, id: &str) -> Value {
    let r = c
        .get(format!("{base}/api/v1/clients/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    let Some((&first, _)) = needle.split_first() else {
        return true;
    };
    haystack
        .iter()
        .enumerate()
        .filter(|(_, &b)| b == first)
        .any(|(i, _)| haystack.get(i..i + needle.len()) == Some(needle))
}

/// Searches every readable mapping of process `pid` for each needle; returns which were found
/// and how many bytes were read.
fn scan_process(pid: u32, needles: &[&[u8]]) -> (Vec<bool>, u64) {
    const CHUNK: u64 = 1 << 20;
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    let mut mem = std::fs::File::open(format!("/proc/{pid}/mem")).unwrap();
    let overlap = needles.iter().map(|n| n.len()).max().unwrap_or(1) as u64 - 1;
    let mut found = vec![false; needles.len()];
    let mut read_total = 0;
    let mut buf = vec![0u8; (CHUNK + overlap) as usize];
    for line in maps.lines() {
        let mut fields = line.split_whitespace();
        let (Some(range), Some(perms)) = (fields.next(), fields.next()) else {
            continue;
        };
        let name = fields.nth(3).unwrap_or("");
        if !perms.starts_with('r') || name == "[vvar]" || name == "[vsyscall]" {
            continue;
        }
        let (start, end) = range.split_once('-').unwrap();
        let start = u64::from_str_radix(start, 16).unwrap();
        let end = u64::from_str_radix(end, 16).unwrap();
        let mut at = start;
        while at < end {
            let len = (end - at).min(CHUNK + overlap) as usize;
            let Ok(_) = mem.seek(SeekFrom::Start(at)) else {
                break;
            };
            let Ok(()) = mem.read_exact(&mut buf[..len]) else {
                break;
            };
            read_total += len as u64;
            for (i, needle) in needles.iter().enumerate() {
                found[i] |= contains(&buf[..len], needle);
            }
            at += CHUNK;
        }
    }
    (found, read_total)
}

/// Asserts that the KEK's bytes are nowhere in the server's memory, while the marker is.
fn assert_kek_not_in_memory(node: &Node, marker: &str) {
    let hex = hex_lower(&KNOWN_KEK);
    let (found, bytes) = scan_process(
        node.child.id(),
        &[&KNOWN_KEK, hex.as_bytes(), marker.as_bytes()],
    );
    assert!(
        bytes > 1 << 20,
        "only {bytes} bytes of the server's memory were read"
    );
    assert!(
        found[2],
        "the control marker was not found in {bytes} bytes: the scan is blind"
    );
    assert!(!found[0], "the KEK's bytes are in the server's memory");
    assert!(!found[1], "the KEK's hex is in the server's memory");
    eprintln!("searched {bytes} bytes of the server's memory: marker found, KEK absent");
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Asserts that no file under `dir` holds the KEK (raw or hex) and that there is no key file.
fn assert_kek_not_on_disk(dir: &Path) {
    assert!(
        !dir.join("master.key").exists(),
        "{}: a master.key",
        dir.display()
    );
    assert!(!dir.join("master.passphrase").exists());
    let hex = hex_lower(&KNOWN_KEK);
    let mut stack = vec![dir.to_owned()];
    let mut files = 0;
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                files += 1;
                assert!(
                    !contains(&bytes, &KNOWN_KEK),
                    "{} holds the KEK",
                    path.display()
                );
                assert!(
                    !contains(&bytes, hex.as_bytes()),
                    "{} holds the KEK in hex",
                    path.display()
                );
            }
        }
    }
    assert!(files >= 3, "only {files} files under {}", dir.display());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_softhsm2_deployment_serves_rotates_and_restarts_without_the_kek_in_memory_or_on_disk() {
    if !softhsm_available() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let conf = init_token(tmp.path());
    // This process opens the token only to place KEK v1 and, at the end, to read how the keys
    // are protected; the server and the commands are other processes.
    std::env::set_var("SOFTHSM2_CONF", &conf);
    let pin = TokenPin::new(USER_PIN.to_owned());
    {
        let token = Pkcs11Token::open(module(), TOKEN_LABEL, &pin).unwrap();
        token
            .import_kek_for_tests(KeyVersion(1), &KNOWN_KEK)
            .unwrap();
    }

    let marker = format!("ZfTokenMarkerFirm{}", std::process::id());
    let data = tmp.path().join("data");
    configure(&data, &marker);
    let node = serve(&conf, &data);
    user_add(
        &conf,
        &data,
        "kuaiji",
        "accountant",
        "token test one-time 1",
    );
    let c = https(&data);
    sign_in_and_enrol(&c, &node.base, "kuaiji", "token test one-time 1").await;
    let first_id = "11010519491231002X";
    let first = create_client(
        &c,
        &node.base,
        "令牌测试有限公司",
        "91350100M000100Y43",
        first_id,
    )
    .await;
    assert_eq!(
        read_client(&c, &node.base, &first).await["legal_rep_id_number"]["value"],
        first_id
    );

    // Rotation while the server runs: v2 is generated inside the token by another process.
    let out = ok(
        command(&conf, &data, &["keys", "rotate", "--grace-seconds", "1"])
            .output()
            .unwrap(),
    );
    assert!(out.contains("KEK v1 -> v2"), "{out}");
    assert!(out.contains("retired: v1"), "{out}");
    // The server reads the keyring every 200 ms here; give it a moment, then write under v2.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let second_id = "320102199003071239";
    let second = create_client(
        &c,
        &node.base,
        "轮换之后有限公司",
        "91440300000000041M",
        second_id,
    )
    .await;
    let status: Value = serde_json::from_str(&ok(command(&conf, &data, &["keys", "status"])
        .output()
        .unwrap()))
    .unwrap();
    assert_eq!(status["current"], 2, "{status}");
    for v in status["versions"].as_array().unwrap() {
        if v["version"] == 1 {
            assert_eq!(v["state"], "retired", "{status}");
            assert_eq!(v["keys"], json!({}), "nothing is left under v1: {status}");
        }
    }
    assert_kek_not_in_memory(&node, &marker);

    // Restarted: the same session (it lives in the database) reads both clients.
    drop(node);
    let node = serve(&conf, &data);
    for (id, number) in [(&first, first_id), (&second, second_id)] {
        assert_eq!(
            read_client(&c, &node.base, id).await["legal_rep_id_number"]["value"],
            number
        );
    }
    assert_kek_not_in_memory(&node, &marker);
    drop(node);

    // A backup carries the backup key wrapped by the token's KEK; restore and the drill need
    // the token and nothing else.
    let file = tmp.path().join("token.zfbackup");
    ok(
        command(&conf, &data, &["backup", "--out", file.to_str().unwrap()])
            .output()
            .unwrap(),
    );
    let header = std::fs::read(&file).unwrap();
    let len = u32::from_be_bytes(header[10..14].try_into().unwrap()) as usize;
    let header: Value = serde_json::from_slice(&header[14..14 + len]).unwrap();
    assert!(header["backup_key_wrapped"].is_string(), "{header}");
    let out = ok(
        command(&conf, &data, &["backup", "verify", file.to_str().unwrap()])
            .output()
            .unwrap(),
    );
    assert!(out.contains("intact"), "{out}");
    let restored = tmp.path().join("restored");
    configure(&restored, &marker);
    let out = ok(command(
        &conf,
        &restored,
        &["restore", "--from", file.to_str().unwrap()],
    )
    .output()
    .unwrap());
    assert!(out.contains("intact"), "{out}");
    let report = tmp.path().join("drill.json");
    ok(command(
        &conf,
        &data,
        &[
            "drill",
            "--from",
            file.to_str().unwrap(),
            "--report",
            report.to_str().unwrap(),
        ],
    )
    .output()
    .unwrap());
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(report["ok"], true, "{report}");
    // The restored copy serves the clients through the same token.
    let node = serve(&conf, &restored);
    let rc = https(&restored);
    let r = rc
        .post(format!("{}/api/v1/session", node.base))
        .json(&json!({"username": "kuaiji", "password": "token deployment pass phrase"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the restored copy knows the accountant");
    drop(node);
    // Without the token's configuration the backup does not open.
    let plain = tmp.path().join("plain");
    private_dir(&plain);
    let out = Command::new(BIN)
        .args(["backup", "verify", file.to_str().unwrap(), "--data"])
        .arg(&plain)
        .env_remove("ZHANGFANG_MASTER_KEY")
        .env_remove("ZHANGFANG_KEY_PROVIDER")
        .output()
        .unwrap();
    assert!(!out.status.success());

    for dir in [&data, &restored] {
        assert_kek_not_on_disk(dir);
    }

    // The token's KEKs are sensitive and non-extractable; v1, retired, is still there for older
    // backups, and v2 was generated inside the token.
    let token = Pkcs11Token::open(module(), TOKEN_LABEL, &pin).unwrap();
    let v1 = token.kek_protection(KeyVersion(1)).unwrap();
    assert!(
        v1.sensitive && !v1.extractable && !v1.value_readable,
        "{v1:?}"
    );
    let v2 = token.kek_protection(KeyVersion(2)).unwrap();
    assert!(
        v2.sensitive
            && v2.always_sensitive
            && !v2.extractable
            && v2.never_extractable
            && !v2.value_readable,
        "{v2:?}"
    );

    // A token that fails while serving fails the request, never the server: the KEK the server
    // works with disappears from the token (destroyed by this process) between two requests.
    let node = serve(&conf, &data);
    assert_eq!(
        read_client(&c, &node.base, &first).await["legal_rep_id_number"]["value"],
        first_id
    );
    token.destroy_kek(KeyVersion(2)).unwrap();
    let r = c
        .get(format!("{}/api/v1/clients/{first}", node.base))
        .send()
        .await
        .unwrap();
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "unavailable", "{body}");
    let r = c
        .post(format!("{}/api/v1/clients", node.base))
        .json(&json!({
            "name": "令牌故障有限公司",
            "uscc": "91110108MA01A2B3CF",
            "taxpayer_type": "small_scale",
            "legal_rep_name": "赵六",
            "legal_rep_id_number": "110105199001011232",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        503,
        "a new client's key cannot be wrapped either"
    );
    let clients: i64 = rusqlite::Connection::open(data.join("zhangfang.db"))
        .unwrap()
        .query_row("SELECT COUNT(*) FROM clients", [], |r| r.get(0))
        .unwrap();
    assert_eq!(clients, 2, "the refused client was not half-written");
    let r = c
        .get(format!("{}/healthz", node.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the server itself goes on");
    drop(node);
}
