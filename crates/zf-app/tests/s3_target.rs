//! The S3 target against a real S3-compatible server (s3s-fs, serving a temporary directory on
//! 127.0.0.1 with SigV4 authentication): bytes round-trip in one request and in parts, only
//! backups are listed, wrong credentials are refused without leaking them, and a backup whose
//! object was damaged in the store is refused by verification and fails its restore test.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;
use tokio::net::TcpListener;
use zf_app::backup::{
    backup_name, BackupConfig, BackupTarget, Quiet, S3Config, S3Target, TargetError,
};
use zf_app::{App, AppConfig};
use zf_audit::Actor;
use zf_crypto::MasterKey;
use zf_store::SqliteStore;

const ACCESS_KEY: &str = "AKIDZHANGFANGTEST";
const SECRET_KEY: &str = "s3cr3t-that-must-never-be-printed";
const BUCKET: &str = "zf-backups";

struct ObjectStore {
    addr: SocketAddr,
    root: tempfile::TempDir,
    secrets: tempfile::TempDir,
}

impl ObjectStore {
    async fn start() -> ObjectStore {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join(BUCKET)).unwrap();
        let fs = s3s_fs::FileSystem::new(root.path()).unwrap();
        let mut builder = S3ServiceBuilder::new(fs);
        builder.set_auth(SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY.to_owned()));
        let service = builder.build();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let http = ConnBuilder::new(TokioExecutor::new());
            while let Ok((socket, _)) = listener.accept().await {
                let conn = http
                    .serve_connection(TokioIo::new(socket), service.clone())
                    .into_owned();
                tokio::spawn(conn);
            }
        });
        let secrets = tempfile::tempdir().unwrap();
        std::fs::write(secrets.path().join("id"), format!("{ACCESS_KEY}\n")).unwrap();
        std::fs::write(secrets.path().join("secret"), SECRET_KEY).unwrap();
        ObjectStore {
            addr,
            root,
            secrets,
        }
    }

    fn config(&self) -> S3Config {
        let toml = format!(
            r#"
            endpoint = "http://{}"
            region = "us-east-1"
            bucket = "{BUCKET}"
            part_mib = 5
            access_key_id_file = {:?}
            secret_access_key_file = {:?}
            "#,
            self.addr,
            self.secrets.path().join("id").display().to_string(),
            self.secrets.path().join("secret").display().to_string(),
        );
        toml::from_str(&toml).unwrap()
    }

    /// Where the server keeps an object, to damage it behind the API's back.
    fn object_path(&self, name: &str) -> PathBuf {
        self.root.path().join(BUCKET).join("zhangfang").join(name)
    }
}

fn random_file(dir: &Path, name: &str, len: usize) -> (PathBuf, Vec<u8>) {
    let mut bytes = Vec::with_capacity(len);
    while bytes.len() < len {
        bytes.extend_from_slice(&zf_crypto::random_bytes::<32>());
    }
    bytes.truncate(len);
    let path = dir.join(name);
    std::fs::write(&path, &bytes).unwrap();
    (path, bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_round_trip_whole_and_in_parts_and_only_backups_are_listed() {
    let s3 = ObjectStore::start().await;
    let target = S3Target::new(&s3.config()).unwrap();
    assert!(!target.describe().contains(SECRET_KEY));
    let dir = tempfile::tempdir().unwrap();
    let small = backup_name(1_796_524_200_000, "aaaa1111");
    let large = backup_name(1_796_610_600_000, "bbbb2222");
    let (small_file, small_bytes) = random_file(dir.path(), "small", 1000);
    // Twelve MiB in parts of five: three parts, the last shorter.
    let (large_file, large_bytes) = random_file(dir.path(), "large", 12 << 20);
    assert_eq!(target.put(&small, &small_file).await.unwrap(), 1000);
    assert_eq!(target.put(&large, &large_file).await.unwrap(), 12 << 20);
    std::fs::write(s3.object_path("notes.txt"), b"not a backup").unwrap();

    let listed = target.list().await.unwrap();
    let names: Vec<&str> = listed.iter().map(|b| b.name.as_str()).collect();
    assert_eq!(names, [small.as_str(), large.as_str()], "oldest first");
    assert_eq!(listed[1].bytes, 12 << 20);
    assert_eq!(listed[0].created_at_ms, 1_796_524_200_000);

    for (name, bytes) in [(&small, &small_bytes), (&large, &large_bytes)] {
        let to = dir.path().join(format!("back-{name}"));
        target.get(name, &to).await.unwrap();
        assert_eq!(&std::fs::read(&to).unwrap(), bytes, "{name}");
    }
    let absent = backup_name(1_796_524_200_000, "cccc3333");
    assert!(matches!(
        target.get(&absent, &dir.path().join("absent")).await,
        Err(TargetError::NotFound(_))
    ));
    target.delete(&small).await.unwrap();
    let listed = target.list().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].name, large);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_are_refused_and_never_shown() {
    let s3 = ObjectStore::start().await;
    std::fs::write(s3.secrets.path().join("secret"), "not-the-secret").unwrap();
    let target = S3Target::new(&s3.config()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (file, _) = random_file(dir.path(), "f", 10);
    let err = target
        .put(&backup_name(1_796_524_200_000, "dddd4444"), &file)
        .await
        .unwrap_err();
    assert!(
        matches!(err, TargetError::Refused { status: 403, .. }),
        "{err}"
    );
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains("not-the-secret"), "{shown}");
    assert!(!shown.contains("X-Amz-Signature"), "{shown}");
    let missing = S3Config {
        access_key_id_file: None,
        access_key_id_env: "ZF_TEST_UNSET_S3_KEY_VARIABLE".into(),
        ..s3.config()
    };
    assert!(matches!(
        S3Target::new(&missing),
        Err(TargetError::Config(_))
    ));
}

async fn app_backing_up_to(s3: &ObjectStore, dir: &Path) -> App {
    let store = Arc::new(SqliteStore::open(&dir.join("zf.db")).await.unwrap());
    let config = AppConfig {
        backup: BackupConfig {
            s3: Some(s3.config()),
            ..BackupConfig::default()
        },
        ..AppConfig::default()
    };
    App::new(store, &MasterKey::generate(), config)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_goes_off_site_and_a_damaged_object_is_refused() {
    let s3 = ObjectStore::start().await;
    let dir = tempfile::tempdir().unwrap();
    let app = app_backing_up_to(&s3, dir.path()).await;
    let run = app.backup_run(Actor::system(), "manual").await.unwrap();
    assert_eq!(run.outcome, "success", "{run:?}");
    assert!(run
        .target
        .as_deref()
        .unwrap()
        .starts_with("s3:http://127.0.0.1"));
    let test = app.restore_test(Actor::system(), "manual").await.unwrap();
    assert_eq!(test.outcome, "success", "{test:?}");

    let name = serde_json::from_str::<serde_json::Value>(run.detail.as_deref().unwrap()).unwrap()
        ["name"]
        .as_str()
        .unwrap()
        .to_owned();
    let fetched = dir.path().join("fetched");
    S3Target::new(&s3.config())
        .unwrap()
        .get(&name, &fetched)
        .await
        .unwrap();
    app.backup_verify(fetched, Arc::new(Quiet)).await.unwrap();

    let object = s3.object_path(&name);
    let mut bytes = std::fs::read(&object).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    std::fs::write(&object, &bytes).unwrap();
    let damaged = dir.path().join("damaged");
    S3Target::new(&s3.config())
        .unwrap()
        .get(&name, &damaged)
        .await
        .unwrap();
    let err = app
        .backup_verify(damaged, Arc::new(Quiet))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("fails verification"), "{err}");
    let test = app.restore_test(Actor::system(), "manual").await.unwrap();
    assert_eq!(test.outcome, "failed");
    assert!(test.error.unwrap().starts_with("verify:"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_directory_does_not_keep_the_backup_from_going_off_site() {
    let s3 = ObjectStore::start().await;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("zf.db")).await.unwrap());
    let config = AppConfig {
        backup: BackupConfig {
            directory: Some(dir.path().join("unmounted")),
            s3: Some(s3.config()),
            ..BackupConfig::default()
        },
        ..AppConfig::default()
    };
    let app = App::new(store, &MasterKey::generate(), config)
        .await
        .unwrap();
    let run = app.backup_run(Actor::system(), "schedule").await.unwrap();
    assert_eq!(run.outcome, "failed");
    assert!(
        run.error.as_deref().unwrap().contains("unmounted"),
        "{run:?}"
    );
    let held = S3Target::new(&s3.config()).unwrap().list().await.unwrap();
    assert_eq!(held.len(), 1, "the off-site copy was made");
    assert_eq!(
        run.backup_id.as_deref().map(|id| &id[..8]),
        held[0].name.get(27..35)
    );
}
