use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::*;

fn mode_of(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

fn write_with_mode(path: &Path, contents: &[u8], mode: u32) {
    fs::write(path, contents).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

fn key_path(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("master.key")
}

#[test]
fn creates_a_0600_file_and_reloads_the_same_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = key_path(&dir);
    let (created, was_created) = MasterKey::load_or_create(&path).unwrap();
    assert!(was_created);
    assert_eq!(mode_of(&path), 0o600);

    let contents = fs::read(&path).unwrap();
    assert_eq!(contents.len(), LINE_LEN);
    assert!(contents.starts_with(b"zhangfang-master-key v1 "));
    assert!(contents.ends_with(b"\n"));
    assert!(contents
        .windows(HEX_LEN)
        .any(|w| w == hex::encode(created.as_array()).as_bytes()));

    let (reloaded, was_created) = MasterKey::load_or_create(&path).unwrap();
    assert!(!was_created);
    assert_eq!(reloaded.as_array(), created.as_array());
    assert_eq!(
        MasterKey::load(&path).unwrap().as_array(),
        created.as_array()
    );
}

#[test]
fn creates_a_missing_parent_directory_with_mode_0700() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("zhangfang-data");
    let path = data_dir.join("master.key");
    let (_, was_created) = MasterKey::load_or_create(&path).unwrap();
    assert!(was_created);
    assert_eq!(mode_of(&data_dir), 0o700);
    assert_eq!(mode_of(&path), 0o600);
}

#[test]
fn loads_a_hand_written_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = key_path(&dir);
    let line = format!("zhangfang-master-key v1 {}\n", "ab".repeat(32));
    write_with_mode(&path, line.as_bytes(), 0o400);
    assert_eq!(MasterKey::load(&path).unwrap().as_array(), &[0xab; 32]);
}

#[test]
fn refuses_group_or_other_permissions() {
    let dir = tempfile::tempdir().unwrap();
    let path = key_path(&dir);
    MasterKey::load_or_create(&path).unwrap();
    for mode in [0o644, 0o640, 0o604, 0o610, 0o602] {
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        let error = MasterKey::load_or_create(&path).unwrap_err();
        match &error {
            KeyFileError::Permissions {
                path: reported,
                mode: reported_mode,
            } => {
                assert_eq!(reported, &path);
                assert_eq!(*reported_mode, mode);
            }
            other => panic!("expected a permissions error, got {other:?}"),
        }
        assert!(matches!(
            MasterKey::load(&path),
            Err(KeyFileError::Permissions { .. })
        ));
    }
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    let message = MasterKey::load(&path).unwrap_err().to_string();
    assert_eq!(
        message,
        format!(
            "master key file {} has mode 0644; it must be readable by its owner only (chmod 600)",
            path.display()
        )
    );
}

#[test]
fn rejects_malformed_files_without_echoing_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = key_path(&dir);
    let secret_hex = "5ec4e75ec4e75ec4e75ec4e75ec4e75ec4e75ec4e75ec4e75ec4e75ec4e75ec4";
    let cases = [
        String::new(),
        format!("zhangfang-master-key v1 {secret_hex}"),
        format!("zhangfang-master-key v2 {secret_hex}\n"),
        format!("zhangfang-master-key v1 {}\n", &secret_hex[..62]),
        format!("zhangfang-master-key v1 {secret_hex}00\n"),
        format!("zhangfang-master-key v1 {}zz\n", &secret_hex[..62]),
        format!("zhangfang-master-key v1 {secret_hex}\nextra\n"),
        format!("zhangfang-master-key v1 {secret_hex}\r\n"),
        format!(" zhangfang-master-key v1 {secret_hex}\n"),
        secret_hex.to_string(),
    ];
    for contents in cases {
        write_with_mode(&path, contents.as_bytes(), 0o600);
        let error = MasterKey::load_or_create(&path).unwrap_err();
        assert!(
            matches!(error, KeyFileError::Malformed { .. }),
            "{contents:?} gave {error:?}"
        );
        let shown = format!("{error} {error:?}");
        assert!(
            !shown.contains(&secret_hex[..16]),
            "error echoes the file: {shown}"
        );
        assert!(shown.contains(&path.display().to_string()));
        assert_eq!(
            fs::read(&path).unwrap(),
            contents.as_bytes(),
            "a malformed key file was rewritten"
        );
    }
}

#[test]
fn rejects_a_directory_at_the_key_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = key_path(&dir);
    fs::create_dir(&path).unwrap();
    assert!(matches!(
        MasterKey::load_or_create(&path),
        Err(KeyFileError::Malformed { .. })
    ));
}

#[test]
fn load_reports_a_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = key_path(&dir);
    let error = MasterKey::load(&path).unwrap_err();
    assert!(matches!(&error, KeyFileError::NotFound { path: reported } if reported == &path));
    assert!(!path.exists(), "load must never create the file");
}

/// The race in `load_or_create`: the file appears after our load found nothing. `create` must leave the existing key
/// untouched and report it, and the caller then loads it.
#[test]
fn create_never_overwrites_an_existing_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = key_path(&dir);
    let (existing, _) = MasterKey::load_or_create(&path).unwrap();
    let before = fs::read(&path).unwrap();

    assert!(matches!(create(&path), Ok(Created::AlreadyExists)));
    assert_eq!(fs::read(&path).unwrap(), before);

    let (loaded, was_created) = MasterKey::load_or_create(&path).unwrap();
    assert!(!was_created);
    assert_eq!(loaded.as_array(), existing.as_array());
}

#[test]
fn reports_io_errors_with_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("not-a-directory");
    fs::write(&blocker, b"").unwrap();
    let path = blocker.join("master.key");
    let error = MasterKey::load_or_create(&path).unwrap_err();
    assert!(
        matches!(&error, KeyFileError::Io { path: reported, .. } if reported == &path),
        "{error:?}"
    );
    assert!(error.to_string().contains(&path.display().to_string()));
}

#[test]
fn a_key_from_the_environment_is_the_same_key_as_its_file_and_bad_values_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (from_file, _) = MasterKey::load_or_create(&key_path(&dir)).unwrap();
    let line = fs::read_to_string(key_path(&dir)).unwrap();
    let digits = line.trim().rsplit(' ').next().unwrap().to_owned();
    for value in [line.as_str(), line.trim(), digits.as_str()] {
        let from_env = MasterKey::from_env_value("ZHANGFANG_MASTER_KEY", value).unwrap();
        assert_eq!(from_env.as_array(), from_file.as_array());
    }
    for bad in [
        "",
        "abc",
        &digits[..63],
        &format!("{digits}0"),
        &digits.replace(|c: char| c.is_ascii_digit(), "g"),
    ] {
        let err = MasterKey::from_env_value("ZHANGFANG_MASTER_KEY", bad).unwrap_err();
        assert!(matches!(err, KeyFileError::Environment { .. }), "{bad:?}");
        // The message names the variable and never echoes its value.
        let text = err.to_string();
        assert!(text.contains("ZHANGFANG_MASTER_KEY"), "{text}");
        assert!(bad.len() < 8 || !text.contains(bad), "{text}");
    }
}
