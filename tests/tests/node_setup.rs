//! scripts/lib/node.sh, which scripts/run and scripts/test use to get a Node.js new enough for
//! the web client's build: the version check, and the download path against a local registry
//! laid out as the npm registry is (package metadata with a tarball URL and its SHA-512
//! integrity, `file://` URLs), with a stand-in `node` in the `node-linux-<arch>` package.
#![cfg(unix)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::Engine as _;
use sha2::{Digest, Sha512};

const VERSION: &str = "22.12.0";
const NPM_VERSION: &str = "10.9.2";

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
        .env_remove("LABBOARD_NPM_VERSION")
        .env_remove("LABBOARD_NODE_REGISTRY")
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

/// Packs `stage/package` as `tarball` (a registry's package tarball).
fn pack(stage: &Path, tarball: &Path) {
    std::fs::create_dir_all(tarball.parent().unwrap()).unwrap();
    let status = Command::new("tar")
        .arg("-czf")
        .arg(tarball)
        .arg("-C")
        .arg(stage)
        .arg("package")
        .status()
        .unwrap();
    assert!(status.success());
}

/// Writes the registry's metadata of `name@version` for `tarball`: its URL and integrity, or
/// `integrity` when given.
fn publish(registry: &Path, name: &str, version: &str, tarball: &Path, integrity: Option<&str>) {
    let right = format!(
        "sha512-{}",
        base64::engine::general_purpose::STANDARD
            .encode(Sha512::digest(std::fs::read(tarball).unwrap()))
    );
    let meta = serde_json::json!({
        "name": name,
        "version": version,
        "dist": {
            "tarball": format!("file://{}", tarball.display()),
            "integrity": integrity.unwrap_or(&right),
        },
    });
    let dir = registry.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(version), serde_json::to_vec_pretty(&meta).unwrap()).unwrap();
}

/// A registry holding `node-linux-<arch>@VERSION`, whose `node` prints that version, and
/// `npm@NPM_VERSION`; the node package's integrity is `integrity`, or the right one.
fn registry(dir: &Path, integrity: Option<&str>) -> PathBuf {
    let registry = dir.join("registry");
    let node = dir.join("stage-node");
    executable(
        &node.join("package/bin/node"),
        &format!("#!/bin/sh\necho v{VERSION}\n"),
    );
    let node_tgz = dir.join("tarballs/node.tgz");
    pack(&node, &node_tgz);
    publish(
        &registry,
        &format!("node-linux-{}", arch()),
        VERSION,
        &node_tgz,
        integrity,
    );
    let npm = dir.join("stage-npm");
    std::fs::create_dir_all(npm.join("package/bin")).unwrap();
    std::fs::write(npm.join("package/bin/npm-cli.js"), "// npm\n").unwrap();
    let npm_tgz = dir.join("tarballs/npm.tgz");
    pack(&npm, &npm_tgz);
    publish(&registry, "npm", NPM_VERSION, &npm_tgz, None);
    registry
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
            ("LABBOARD_NODE_REGISTRY", Path::new("file:///nowhere")),
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
    let registry = registry(dir.path(), None);
    let cache = dir.path().join("cache");
    let url = file_url(&registry);
    let env = [
        ("LABBOARD_NODE_CACHE", cache.as_path()),
        ("LABBOARD_NODE_REGISTRY", url.as_path()),
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
    let home = cache.join(format!(
        "node-v{VERSION}-npm-{NPM_VERSION}-linux-{}",
        arch()
    ));
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        [
            home.join("bin/node").display().to_string(),
            format!("v{VERSION}")
        ]
    );
    assert!(home.join("bin/npm").exists(), "npm comes with it");
    assert!(home.join("lib/node_modules/npm/bin/npm-cli.js").exists());

    // A second run finds it in the cache: the registry is not asked again.
    std::fs::remove_dir_all(&registry).unwrap();
    std::fs::remove_dir_all(dir.path().join("tarballs")).unwrap();
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
fn a_download_that_does_not_match_its_integrity_hash_is_not_installed() {
    let dir = tempfile::tempdir().unwrap();
    let old = fake_node(&dir.path().join("system"), "v18.19.0");
    let wrong = format!(
        "sha512-{}",
        base64::engine::general_purpose::STANDARD.encode([1u8; 64])
    );
    let registry = registry(dir.path(), Some(&wrong));
    let cache = dir.path().join("cache");
    let url = file_url(&registry);
    let out = with_node_sh(
        &old,
        &[
            ("LABBOARD_NODE_CACHE", cache.as_path()),
            ("LABBOARD_NODE_REGISTRY", url.as_path()),
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
