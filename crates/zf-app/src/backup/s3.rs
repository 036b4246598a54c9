//! An S3-compatible object store as a backup target: the API that AWS S3, Aliyun OSS, Tencent
//! COS and MinIO share. Requests are signed with SigV4 by `rusty-s3` (which does no I/O) and
//! sent with reqwest; large files go up in parts, so a failed upload is retried from nothing
//! rather than left half-written, and no object is ever visible until it is complete.
//!
//! Credentials come from environment variables or files named in the configuration, never
//! from the configuration file itself, and never reach a log or an error message: errors are
//! built without the request URL, whose presigned query would carry the access key id and a
//! signature.

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use rusty_s3::actions::{CreateMultipartUpload, S3Action};
use rusty_s3::{Bucket, Credentials, UrlStyle};
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use zeroize::Zeroizing;

use super::target::{create_private, parse_backup_name, BackupTarget, StoredBackup, TargetError};

/// How long a signed request stays valid: long enough for one part on a slow line.
const SIGNED_FOR: Duration = Duration::from_secs(3600);
/// S3's smallest part (except the last) is 5 MiB.
const MIN_PART_MIB: u32 = 5;

/// A page of ListObjectsV2, read leniently: only the key and size are needed, and some
/// S3-compatible stores leave out fields AWS always sends (ETag, Owner, StorageClass).
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListPage {
    #[serde(default)]
    contents: Vec<ListEntry>,
    next_continuation_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListEntry {
    key: String,
    size: u64,
}

/// `[backup.s3]` in the configuration file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    /// `https://oss-cn-hangzhou.aliyuncs.com`, `https://cos.ap-shanghai.myqcloud.com`,
    /// `http://minio.internal:9000`, …
    pub endpoint: String,
    pub region: String,
    pub bucket: String,
    /// Prepended to every object name (`zhangfang/` by default).
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// Path-style URLs (`endpoint/bucket/key`), which MinIO needs; virtual-host style
    /// (`bucket.endpoint/key`) when false, which OSS and COS prefer.
    #[serde(default = "yes")]
    pub path_style: bool,
    /// The environment variables holding the access key id and secret.
    #[serde(default = "default_key_env")]
    pub access_key_id_env: String,
    #[serde(default = "default_secret_env")]
    pub secret_access_key_env: String,
    /// Files holding them instead (a secret mounted by the orchestrator); these win.
    pub access_key_id_file: Option<PathBuf>,
    pub secret_access_key_file: Option<PathBuf>,
    /// Files larger than this many MiB are uploaded in parts of this size (at least 5).
    #[serde(default = "default_part_mib")]
    pub part_mib: u32,
}

fn default_prefix() -> String {
    "zhangfang/".into()
}
fn yes() -> bool {
    true
}
fn default_key_env() -> String {
    "ZHANGFANG_S3_ACCESS_KEY_ID".into()
}
fn default_secret_env() -> String {
    "ZHANGFANG_S3_SECRET_ACCESS_KEY".into()
}
fn default_part_mib() -> u32 {
    16
}

fn secret(file: Option<&Path>, env: &str, what: &str) -> Result<Zeroizing<String>, TargetError> {
    let value = match file {
        Some(path) => Zeroizing::new(
            std::fs::read_to_string(path)
                .map_err(|e| {
                    TargetError::Config(format!(
                        "cannot read the {what} file {}: {e}",
                        path.display()
                    ))
                })?
                .trim()
                .to_owned(),
        ),
        None => Zeroizing::new(std::env::var(env).map_err(|_| {
            TargetError::Config(format!(
                "the {what} is not set (environment variable {env})"
            ))
        })?),
    };
    if value.is_empty() {
        return Err(TargetError::Config(format!("the {what} is empty")));
    }
    Ok(value)
}

pub struct S3Target {
    bucket: Bucket,
    credentials: Credentials,
    prefix: String,
    part_bytes: usize,
    http: reqwest::Client,
    describe: String,
}

fn transport(operation: &'static str, e: reqwest::Error) -> TargetError {
    TargetError::Transport {
        operation,
        message: e.without_url().to_string(),
    }
}

/// The start of an error answer: S3 explains itself in a short XML document, which holds no
/// secret.
async fn refused(operation: &'static str, res: reqwest::Response) -> TargetError {
    let status = res.status().as_u16();
    let text = res.text().await.unwrap_or_default();
    let message: String = text.chars().take(300).collect();
    TargetError::Refused {
        operation,
        status,
        message,
    }
}

async fn send(
    operation: &'static str,
    request: reqwest::RequestBuilder,
) -> Result<reqwest::Response, TargetError> {
    let res = request.send().await.map_err(|e| transport(operation, e))?;
    if res.status().is_success() {
        Ok(res)
    } else {
        Err(refused(operation, res).await)
    }
}

impl S3Target {
    pub fn new(config: &S3Config) -> Result<Self, TargetError> {
        let endpoint = config
            .endpoint
            .parse()
            .map_err(|e| TargetError::Config(format!("endpoint {:?}: {e}", config.endpoint)))?;
        let style = if config.path_style {
            UrlStyle::Path
        } else {
            UrlStyle::VirtualHost
        };
        let bucket = Bucket::new(
            endpoint,
            style,
            config.bucket.clone(),
            config.region.clone(),
        )
        .map_err(|e| TargetError::Config(format!("bucket {:?}: {e}", config.bucket)))?;
        if config.part_mib < MIN_PART_MIB {
            return Err(TargetError::Config(format!(
                "part_mib must be at least {MIN_PART_MIB}"
            )));
        }
        let key = secret(
            config.access_key_id_file.as_deref(),
            &config.access_key_id_env,
            "S3 access key id",
        )?;
        let secret = secret(
            config.secret_access_key_file.as_deref(),
            &config.secret_access_key_env,
            "S3 secret access key",
        )?;
        let http = reqwest::Client::builder()
            .use_rustls_tls()
            .connect_timeout(Duration::from_secs(20))
            .build()
            .map_err(|e| TargetError::Config(format!("HTTP client: {e}")))?;
        Ok(S3Target {
            describe: format!(
                "s3:{}/{}/{}",
                config.endpoint.trim_end_matches('/'),
                config.bucket,
                config.prefix
            ),
            bucket,
            credentials: Credentials::new(key.as_str(), secret.as_str()),
            prefix: config.prefix.clone(),
            part_bytes: config.part_mib as usize * 1024 * 1024,
            http,
        })
    }

    fn key(&self, name: &str) -> Result<String, TargetError> {
        if parse_backup_name(name).is_none() {
            return Err(TargetError::Config(format!(
                "{name:?} is not a backup file name"
            )));
        }
        Ok(format!("{}{name}", self.prefix))
    }

    async fn put_whole(&self, key: &str, body: Vec<u8>) -> Result<(), TargetError> {
        let url = self
            .bucket
            .put_object(Some(&self.credentials), key)
            .sign(SIGNED_FOR);
        send("PUT", self.http.put(url).body(body)).await?;
        Ok(())
    }

    async fn put_parts(
        &self,
        key: &str,
        file: &mut tokio::fs::File,
        first: Vec<u8>,
    ) -> Result<(), TargetError> {
        let url = self
            .bucket
            .create_multipart_upload(Some(&self.credentials), key)
            .sign(SIGNED_FOR);
        let text = send("CreateMultipartUpload", self.http.post(url))
            .await?
            .text()
            .await
            .map_err(|e| transport("CreateMultipartUpload", e))?;
        let created =
            CreateMultipartUpload::parse_response(&text).map_err(|e| TargetError::Malformed {
                operation: "CreateMultipartUpload",
                message: e.to_string(),
            })?;
        let upload_id = created.upload_id().to_owned();
        let uploaded = self.upload_parts(key, &upload_id, file, first).await;
        let result = match uploaded {
            Ok(etags) => {
                let action = self.bucket.complete_multipart_upload(
                    Some(&self.credentials),
                    key,
                    &upload_id,
                    etags.iter().map(String::as_str),
                );
                let url = action.sign(SIGNED_FOR);
                send(
                    "CompleteMultipartUpload",
                    self.http.post(url).body(action.body()),
                )
                .await
                .map(|_| ())
            }
            Err(e) => Err(e),
        };
        if result.is_err() {
            // Parts of an abandoned upload are billed and kept until aborted.
            let url = self
                .bucket
                .abort_multipart_upload(Some(&self.credentials), key, &upload_id)
                .sign(SIGNED_FOR);
            let _ = self.http.delete(url).send().await;
        }
        result
    }

    async fn upload_parts(
        &self,
        key: &str,
        upload_id: &str,
        file: &mut tokio::fs::File,
        first: Vec<u8>,
    ) -> Result<Vec<String>, TargetError> {
        let mut etags = Vec::new();
        let mut part = first;
        let mut number: u16 = 1;
        loop {
            let url = self
                .bucket
                .upload_part(Some(&self.credentials), key, number, upload_id)
                .sign(SIGNED_FOR);
            let res = send("UploadPart", self.http.put(url).body(part)).await?;
            let etag = res
                .headers()
                .get(reqwest::header::ETAG)
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| TargetError::Malformed {
                    operation: "UploadPart",
                    message: "no ETag in the answer".into(),
                })?;
            etags.push(etag.to_owned());
            part = read_up_to(file, self.part_bytes).await?;
            if part.is_empty() {
                return Ok(etags);
            }
            number = number.checked_add(1).ok_or_else(|| {
                TargetError::Config("the file needs more than 65535 parts: raise part_mib".into())
            })?;
        }
    }
}

/// Reads until `limit` bytes or the end of the file.
async fn read_up_to(file: &mut tokio::fs::File, limit: usize) -> Result<Vec<u8>, TargetError> {
    let mut buf = Vec::with_capacity(limit);
    let mut taken = (&mut *file).take(limit as u64);
    taken
        .read_to_end(&mut buf)
        .await
        .map_err(|e| TargetError::Io(format!("cannot read the backup file: {e}")))?;
    Ok(buf)
}

#[async_trait]
impl BackupTarget for S3Target {
    fn describe(&self) -> String {
        self.describe.clone()
    }

    async fn put(&self, name: &str, file: &Path) -> Result<u64, TargetError> {
        let key = self.key(name)?;
        let mut input = tokio::fs::File::open(file)
            .await
            .map_err(|e| TargetError::Io(format!("cannot open {}: {e}", file.display())))?;
        let bytes = input
            .metadata()
            .await
            .map_err(|e| TargetError::Io(format!("cannot read {}: {e}", file.display())))?
            .len();
        let first = read_up_to(&mut input, self.part_bytes).await?;
        if (first.len() as u64) < bytes {
            self.put_parts(&key, &mut input, first).await?;
        } else {
            self.put_whole(&key, first).await?;
        }
        Ok(bytes)
    }

    async fn get(&self, name: &str, to: &Path) -> Result<u64, TargetError> {
        let key = self.key(name)?;
        let url = self
            .bucket
            .get_object(Some(&self.credentials), &key)
            .sign(SIGNED_FOR);
        let mut res = match send("GET", self.http.get(url)).await {
            Err(TargetError::Refused { status: 404, .. }) => {
                return Err(TargetError::NotFound(name.to_owned()))
            }
            other => other?,
        };
        let file = create_private(to)
            .map_err(|e| TargetError::Io(format!("cannot create {}: {e}", to.display())))?;
        let mut out = tokio::fs::File::from_std(file);
        let mut bytes = 0u64;
        while let Some(chunk) = res.chunk().await.map_err(|e| transport("GET", e))? {
            out.write_all(&chunk)
                .await
                .map_err(|e| TargetError::Io(format!("cannot write {}: {e}", to.display())))?;
            bytes += chunk.len() as u64;
        }
        out.sync_all()
            .await
            .map_err(|e| TargetError::Io(format!("cannot sync {}: {e}", to.display())))?;
        Ok(bytes)
    }

    async fn list(&self) -> Result<Vec<StoredBackup>, TargetError> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut action = self.bucket.list_objects_v2(Some(&self.credentials));
            action.with_prefix(self.prefix.as_str());
            if let Some(t) = &token {
                action.with_continuation_token(t.clone());
            }
            let url = action.sign(SIGNED_FOR);
            let text = send("ListObjectsV2", self.http.get(url))
                .await?
                .text()
                .await
                .map_err(|e| transport("ListObjectsV2", e))?;
            let page: ListPage =
                quick_xml::de::from_str(&text).map_err(|e| TargetError::Malformed {
                    operation: "ListObjectsV2",
                    message: e.to_string(),
                })?;
            for object in page.contents {
                let Some(name) = object.key.strip_prefix(self.prefix.as_str()) else {
                    continue;
                };
                if let Some(created_at_ms) = parse_backup_name(name) {
                    out.push(StoredBackup {
                        name: name.to_owned(),
                        bytes: object.size,
                        created_at_ms,
                    });
                }
            }
            match page.next_continuation_token {
                Some(t) if !t.is_empty() => token = Some(t),
                _ => break,
            }
        }
        out.sort_by(|a, b| (a.created_at_ms, &a.name).cmp(&(b.created_at_ms, &b.name)));
        Ok(out)
    }

    async fn delete(&self, name: &str) -> Result<(), TargetError> {
        let key = self.key(name)?;
        let url = self
            .bucket
            .delete_object(Some(&self.credentials), &key)
            .sign(SIGNED_FOR);
        send("DELETE", self.http.delete(url)).await?;
        Ok(())
    }
}
