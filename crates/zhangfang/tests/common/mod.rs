//! What the binary's own tests share: starting `zhangfang serve`, adding users beside it, and
//! signing in over HTTPS with a second factor.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{json, Value};

pub const BIN: &str = env!("CARGO_BIN_EXE_zhangfang");

/// Standard output of a command that must succeed (both streams shown if it did not).
pub fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "expected success:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Standard error of a command that must fail, with its reason.
pub fn refused(out: Output) -> String {
    assert!(
        !out.status.success(),
        "expected a refusal:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(stderr.contains("error:"), "{stderr}");
    stderr
}

/// A directory only its owner may enter, as a data directory must be.
pub fn private_dir(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(path).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).unwrap();
}

pub struct Node {
    pub child: Child,
    pub base: String,
    pub stdout: Vec<String>,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `zhangfang serve` on a random port and waits for its "serving" line.
pub fn serve(data: &Path, database: Option<&str>) -> Node {
    serve_with(data, database, &[])
}

pub fn serve_with(data: &Path, database: Option<&str>, extra: &[&str]) -> Node {
    let mut cmd = Command::new(BIN);
    cmd.arg("serve")
        .args(extra)
        .arg("--data")
        .arg(data)
        .args(["--listen", "127.0.0.1:0"])
        .env_remove("ZHANGFANG_DATABASE");
    if let Some(url) = database {
        cmd.args(["--database", url]);
    }
    start(cmd)
}

/// Runs a prepared `zhangfang serve` command and waits for its "serving" line.
pub fn start(mut cmd: Command) -> Node {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn zhangfang serve");
    // Owned by the node from here on, so a failed start still kills the process.
    let mut node = Node {
        child,
        base: String::new(),
        stdout: Vec::new(),
    };
    let out = node.child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    loop {
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("server did not start");
        let serving = line
            .strip_prefix("Zhangfang is serving on ")
            .map(|u| u.trim_end_matches('/').to_owned());
        node.stdout.push(line);
        if let Some(base) = serving {
            node.base = base;
            return node;
        }
    }
}

pub fn client(data: &Path) -> reqwest::Client {
    let pem = std::fs::read(data.join("tls/cert.pem")).unwrap();
    reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .cookie_store(true)
        .build()
        .unwrap()
}

pub fn user_add(
    data: &Path,
    database: Option<&str>,
    username: &str,
    role: &str,
    password: &str,
) -> std::process::Output {
    let mut cmd = Command::new(BIN);
    cmd.args([
        "user",
        "add",
        "--username",
        username,
        "--role",
        role,
        "--password-stdin",
        "--data",
    ])
    .arg(data)
    .env_remove("ZHANGFANG_DATABASE")
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    if let Some(url) = database {
        cmd.args(["--database", url]);
    }
    let mut child = cmd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{password}\n").as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

pub async fn sign_in_and_replace(
    c: &reqwest::Client,
    base: &str,
    user: &str,
    one_time: &str,
    fresh: &str,
) {
    let r = c
        .post(format!("{base}/api/v1/session"))
        .json(&json!({"username": user, "password": one_time}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = c
        .put(format!("{base}/api/v1/session/password"))
        .json(&json!({"current_password": one_time, "new_password": fresh}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
}

/// Sets up an authenticator: started on one node, confirmed on another, as a load balancer
/// might send the two requests.
pub async fn enrol(c: &reqwest::Client, start_on: &str, confirm_on: &str) {
    let r = c
        .post(format!("{start_on}/api/v1/mfa/totp"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let body: Value = r.json().await.unwrap();
    let secret = zf_crypto::TotpSecret::from_base32(body["secret"].as_str().unwrap()).unwrap();
    let p = zf_crypto::TotpParams::STANDARD;
    let code = secret.code(p.step_at(zf_app::now_ms()), p);
    let r = c
        .post(format!("{confirm_on}/api/v1/mfa/totp/confirm"))
        .json(&json!({ "code": code.as_str() }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}
