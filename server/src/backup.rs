//! `labboard backup <file>`: a consistent copy of the database, taken while the server runs.
//!
//! The copy is made with SQLite's `VACUUM INTO`. It reads the whole
//! database inside one read transaction, so the copy is one consistent moment of it, and in WAL
//! mode a reader neither waits for the server's writer nor holds it up: phones keep syncing
//! while the copy is made. (The online backup API, copying a few pages at a time, starts over
//! whenever another connection writes, so under a steady stream of notes it may never finish;
//! copying all pages in one step gains nothing over `VACUUM INTO`, which also leaves out free
//! pages, so the copy is compact and holds nothing of deleted labs.)
//!
//! The copy is written to a temporary file beside the target, checked (`PRAGMA quick_check`),
//! flushed to disk, and only then given the target's name, so a backup that fails or is
//! interrupted never leaves a half-written file under that name. The file is readable by its
//! owner only (it holds every lab).

use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use rusqlite::{Connection, OpenFlags};

use crate::storage::sqlite::{DB_FILE, SCHEMA_VERSION};

/// `labboard backup`: its flags.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "labboard backup",
    about = "Copy the database to a file, consistently, while the server runs"
)]
pub struct BackupArgs {
    /// File to write the copy to. Its directory must exist.
    pub file: PathBuf,

    /// The server's data directory (the one holding `labboard.db`).
    #[arg(long, env = "LABBOARD_DATA_DIR", default_value = "./labboard-data")]
    pub data_dir: PathBuf,

    /// Replace the file if it exists.
    #[arg(long)]
    pub force: bool,

    /// Set when the server keeps its data in PostgreSQL; then this command refuses and says
    /// how to back that up instead.
    #[arg(long, env = "LABBOARD_DATABASE_URL", hide = true)]
    pub database_url: Option<String>,
}

/// What `labboard backup` says when the data is in PostgreSQL.
pub const POSTGRES_BACKUP: &str = "this server keeps its data in PostgreSQL (--database-url), \
     not in the data directory: back it up with PostgreSQL's own tools, e.g. `pg_dump \
     --format=custom --file=labboard.dump <database url>` while the nodes run, or continuous \
     archiving (see the README, Several nodes)";

/// What a backup wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backup {
    pub bytes: u64,
    pub schema_version: i64,
}

/// Runs `labboard backup` with `args` (the word `backup` first) and prints what it wrote.
pub fn main<I, T>(args: I) -> anyhow::Result<()>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args = <BackupArgs as clap::Parser>::try_parse_from(
        std::iter::once(std::ffi::OsString::from("labboard backup"))
            .chain(args.into_iter().skip(1).map(Into::into)),
    )
    .unwrap_or_else(|err| err.exit());
    if args.database_url.is_some() {
        bail!(POSTGRES_BACKUP);
    }
    let done = backup(&args.data_dir, &args.file, args.force)?;
    println!(
        "backed up {} to {} ({} bytes, schema version {})",
        args.data_dir.join(DB_FILE).display(),
        args.file.display(),
        done.bytes,
        done.schema_version
    );
    Ok(())
}

/// Copies the database in `data_dir` to `target`. Refuses an existing `target` unless `force`.
pub fn backup(data_dir: &Path, target: &Path, force: bool) -> anyhow::Result<Backup> {
    let db = data_dir.join(DB_FILE);
    if !db.is_file() {
        bail!(
            "no database at {}: give the server's data directory with --data-dir \
             (or LABBOARD_DATA_DIR)",
            db.display()
        );
    }
    let Some(name) = target.file_name() else {
        bail!("{} is not a file name", target.display());
    };
    if target.is_dir() {
        bail!("{} is a directory; name a file to write", target.display());
    }
    if target.exists() && !force {
        bail!(
            "{} exists; choose another name, or pass --force to replace it",
            target.display()
        );
    }
    let dir = match target.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !dir.is_dir() {
        bail!("the directory {} does not exist", dir.display());
    }
    if same_file(&db, target) {
        bail!("{} is the database itself", target.display());
    }

    let mut partial_name = OsString::from(".");
    partial_name.push(name);
    partial_name.push(format!(".partial-{}", std::process::id()));
    let partial = Partial(dir.join(partial_name));
    create_owner_only(&partial.0).with_context(|| format!("creating {}", partial.0.display()))?;

    // Read-write (but never creating the database), although it only reads: when the server is
    // stopped, the last connection to close removes the `-wal` and `-shm` files it made, where
    // a read-only one would leave them behind, owned by whoever ran the backup (root, say),
    // and the server's own user could then not open the database.
    let source = Connection::open_with_flags(
        &db,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("opening {}", db.display()))?;
    source.busy_timeout(std::time::Duration::from_secs(30))?;
    let partial_text = partial
        .0
        .to_str()
        .with_context(|| format!("{} is not valid UTF-8", partial.0.display()))?;
    source
        .execute("VACUUM INTO ?1", [partial_text])
        .with_context(|| format!("copying {} to {}", db.display(), partial.0.display()))?;
    drop(source);

    let schema_version = check(&partial.0)?;
    let file = File::open(&partial.0)?;
    file.sync_all()
        .with_context(|| format!("flushing {} to disk", partial.0.display()))?;
    let bytes = file.metadata()?.len();
    drop(file);

    if force {
        std::fs::rename(&partial.0, target)
            .with_context(|| format!("renaming the copy to {}", target.display()))?;
    } else {
        // A link fails if the name was taken meanwhile, where a rename would replace it.
        std::fs::hard_link(&partial.0, target).map_err(|err| {
            if err.kind() == std::io::ErrorKind::AlreadyExists {
                anyhow::anyhow!(
                    "{} exists; choose another name, or pass --force to replace it",
                    target.display()
                )
            } else {
                anyhow::Error::new(err).context(format!("naming the copy {}", target.display()))
            }
        })?;
        std::fs::remove_file(&partial.0)?;
    }
    std::mem::forget(partial);
    sync_dir(&dir).with_context(|| format!("flushing the directory {}", dir.display()))?;
    Ok(Backup {
        bytes,
        schema_version,
    })
}

/// The temporary copy, removed unless the backup finishes.
struct Partial(PathBuf);

impl Drop for Partial {
    fn drop(&mut self) {
        // It may not have been created; nothing else to do either way.
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Opens the copy and checks it is a sound database of a schema this binary knows.
fn check(copy: &Path) -> anyhow::Result<i64> {
    let conn = Connection::open_with_flags(copy, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .with_context(|| format!("opening the copy {}", copy.display()))?;
    let verdict: String = conn.query_row("PRAGMA quick_check", [], |row| row.get(0))?;
    if verdict != "ok" {
        bail!("the copy failed SQLite's check: {verdict}");
    }
    let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if version == 0 {
        bail!("the database is not a Labboard database (it has no schema version)");
    }
    if version > SCHEMA_VERSION {
        bail!(
            "the database has schema version {version}, newer than this Labboard knows \
             ({SCHEMA_VERSION}); back it up with the Labboard that runs it"
        );
    }
    Ok(version)
}

fn create_owner_only(path: &Path) -> std::io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// Flushes a directory's entries (the new name) to disk; a no-op where directories cannot be
/// opened as files.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{SqliteStorage, Storage};
    use labboard_protocol::DocumentId;

    #[tokio::test]
    async fn a_backup_is_a_working_database_readable_by_its_owner_only() {
        let data = tempfile::tempdir().unwrap();
        let store = SqliteStorage::open(data.path()).unwrap();
        let doc = DocumentId::random();
        store.append(doc, b"note".to_vec()).await.unwrap();

        let out = tempfile::tempdir().unwrap();
        let target = out.path().join("copy.db");
        let done = backup(data.path(), &target, false).unwrap();
        assert_eq!(done.schema_version, SCHEMA_VERSION);
        assert_eq!(done.bytes, std::fs::metadata(&target).unwrap().len());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&target).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        // Only the copy is left in its directory: no temporary file.
        let names: Vec<_> = std::fs::read_dir(out.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![OsString::from("copy.db")]);
        store.close().await.unwrap();

        let restored = tempfile::tempdir().unwrap();
        std::fs::copy(&target, restored.path().join(DB_FILE)).unwrap();
        let store = SqliteStorage::open(restored.path()).unwrap();
        let stored = store.load(doc).await.unwrap().unwrap();
        assert_eq!(stored.chunks, vec![b"note".to_vec()]);
        store.close().await.unwrap();
    }

    #[test]
    fn a_backup_of_a_stopped_server_leaves_no_log_files_behind() {
        let data = tempfile::tempdir().unwrap();
        // A stopped server's database: in WAL mode, its last connection closed.
        let conn = crate::storage::sqlite::open_connection(&data.path().join(DB_FILE)).unwrap();
        conn.execute_batch("CREATE TABLE t (x INTEGER)").unwrap();
        conn.pragma_update(None, "user_version", SCHEMA_VERSION)
            .unwrap();
        drop(conn);
        let before: Vec<_> = names(data.path());
        assert_eq!(before, vec![OsString::from(DB_FILE)]);
        let out = tempfile::tempdir().unwrap();
        backup(data.path(), &out.path().join("copy.db"), false).unwrap();
        assert_eq!(names(data.path()), before);
    }

    fn names(dir: &Path) -> Vec<OsString> {
        let mut names: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        names.sort();
        names
    }

    #[tokio::test]
    async fn an_existing_file_is_kept_unless_forced() {
        let data = tempfile::tempdir().unwrap();
        SqliteStorage::open(data.path())
            .unwrap()
            .close()
            .await
            .unwrap();
        let out = tempfile::tempdir().unwrap();
        let target = out.path().join("copy.db");
        std::fs::write(&target, "keep me").unwrap();
        let err = backup(data.path(), &target, false).unwrap_err().to_string();
        assert!(err.contains("exists") && err.contains("--force"), "{err}");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep me");
        assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 1);

        backup(data.path(), &target, true).unwrap();
        assert_ne!(std::fs::read(&target).unwrap(), b"keep me");
    }

    #[test]
    fn a_missing_database_or_directory_is_a_clear_error_that_creates_nothing() {
        let empty = tempfile::tempdir().unwrap();
        let out = tempfile::tempdir().unwrap();
        let err = backup(empty.path(), &out.path().join("copy.db"), false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("no database at"), "{err}");
        assert_eq!(std::fs::read_dir(empty.path()).unwrap().count(), 0);
        assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 0);

        let data = tempfile::tempdir().unwrap();
        std::fs::write(data.path().join(DB_FILE), b"").unwrap();
        let err = backup(data.path(), &out.path().join("no/such/dir/copy.db"), false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("does not exist"), "{err}");
        let err = backup(data.path(), out.path(), false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("is a directory"), "{err}");
    }
}
