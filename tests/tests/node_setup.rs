//! scripts/lib/node.sh, which scripts/run and scripts/test use to get a Node.js new enough for
//! the web client's build: the version check, and the download path against a local mirror laid
//! out as nodejs.org/dist is (a `file://` URL), with a stand-in `node` in the tarball.
#![cfg(unix)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use labboard_tests::sha256_hex;

const VERSION: &str = "22.12.0";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs `script` in bash after sourcing node.sh, with `path_first` first on a PATH of the
/// system directories, and `env` set.
fn with_node_sh(path_first: &Path, env: &[(&str, &Path)], script: &str) -> Output {
    let mut command = Command::new("bash");
    command
        .current_dir(repo())
        .arg("-c")
        .arg(format!(". scripts/lib/node.sh\n{script}"))
        .env(
            "PATH",
            format!("{}:/usr/local/bin:/usr/bin:/bin", path_first.display()),
        )
        .env_remove("LABBOARD_NODE_VERSION")
        .env_remove("LABBOARD_NODE_MIRROR")
        .env_remove("LABBOARD_NODE_CACHE");
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("running bash")
}

fn executable(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A directory with `node` printing `version` and an `npm`.
fn fake_node(dir: &Path, version: &str) -> PathBuf {
    let bin = dir.join("bin");
    executable(&bin.join("node"), &format!("#!/bin/sh\necho {version}\n"));
    executable(&bin.join("npm"), "#!/bin/sh\necho 10.0.0\n");
    bin
}

fn arch() -> String {
    let empty = tempfile::tempdir().unwrap();
    let out = with_node_sh(empty.path(), &[], "node_arch");
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// A mirror holding release `VERSION` with a tarball whose `node` prints it; the checksum file
/// lists `checksum` for it, or the right one.
fn mirror(dir: &Path, checksum: Option<&str>) -> PathBuf {
    let name = format!("node-v{VERSION}-linux-{}", arch());
    let stage = dir.join("stage");
    fake_node(&stage.join(&name), &format!("v{VERSION}"));
    let release = dir.join("mirror").join(format!("v{VERSION}"));
    std::fs::create_dir_all(&release).unwrap();
    let tarball = release.join(format!("{name}.tar.gz"));
    let status = Command::new("tar")
        .arg("-czf")
        .arg(&tarball)
        .arg("-C")
        .arg(&stage)
        .arg(&name)
        .status()
        .unwrap();
    assert!(status.success());
    let right = sha256_hex(&std::fs::read(&tarball).unwrap());
    std::fs::write(
        release.join("SHASUMS256.txt"),
        format!(
            "{}  node-v{VERSION}-darwin-arm64.tar.gz\n{}  {name}.tar.gz\n",
            "0".repeat(64),
            checksum.unwrap_or(&right)
        ),
    )
    .unwrap();
    dir.join("mirror")
}

fn file_url(path: &Path) -> PathBuf {
    PathBuf::from(format!("file://{}", path.display()))
}

#[test]
fn the_version_check_follows_vites_minimum() {
    let empty = tempfile::tempdir().unwrap();
    for (version, ok) in [
        ("v18.19.0", false),
        ("v20.18.3", false),
        ("v20.19.0", true),
        ("v21.7.3", false),
        ("v22.11.0", false),
        ("v22.12.0", true),
        ("v24.1.0", true),
        ("", false),
        ("not a version", false),
    ] {
        let out = with_node_sh(empty.path(), &[], &format!("node_version_ok '{version}'"));
        assert_eq!(out.status.success(), ok, "{version:?}");
    }
}

#[test]
fn a_new_enough_node_is_used_as_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let bin = fake_node(&dir.path().join("system"), "v20.19.1");
    let cache = dir.path().join("cache");
    let out = with_node_sh(
        &bin,
        &[
            ("LABBOARD_NODE_CACHE", &cache),
            ("LABBOARD_NODE_MIRROR", Path::new("file:///nowhere")),
        ],
        "ensure_node && command -v node",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        bin.join("node").display().to_string()
    );
    assert!(!cache.exists(), "nothing was downloaded");
}

#[test]
fn an_old_node_is_replaced_by_the_checked_download() {
    let dir = tempfile::tempdir().unwrap();
    let old = fake_node(&dir.path().join("system"), "v18.19.0");
    let mirror = mirror(dir.path(), None);
    let cache = dir.path().join("cache");
    let url = file_url(&mirror);
    let env = [
        ("LABBOARD_NODE_CACHE", cache.as_path()),
        ("LABBOARD_NODE_MIRROR", url.as_path()),
    ];
    let out = with_node_sh(
        &old,
        &env,
        "ensure_node && command -v node && node --version",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("v18.19.0 is too old"), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let installed = cache
        .join(format!("node-v{VERSION}-linux-{}", arch()))
        .join("bin/node");
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        [installed.display().to_string(), format!("v{VERSION}")]
    );

    // A second run finds it in the cache: the mirror is not asked again.
    std::fs::remove_dir_all(&mirror).unwrap();
    let out = with_node_sh(&old, &env, "ensure_node && node --version");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("v{VERSION}")
    );
}

#[test]
fn a_download_that_does_not_match_its_checksum_is_not_installed() {
    let dir = tempfile::tempdir().unwrap();
    let old = fake_node(&dir.path().join("system"), "v18.19.0");
    let wrong = "1".repeat(64);
    let mirror = mirror(dir.path(), Some(&wrong));
    let cache = dir.path().join("cache");
    let url = file_url(&mirror);
    let out = with_node_sh(
        &old,
        &[
            ("LABBOARD_NODE_CACHE", cache.as_path()),
            ("LABBOARD_NODE_MIRROR", url.as_path()),
        ],
        "ensure_node",
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("does not match"), "{stderr}");
    assert_eq!(
        std::fs::read_dir(&cache).unwrap().count(),
        0,
        "nothing left in the cache"
    );
}
