//! One suite for every document store: each case is written once over `&dyn Storage` and run on
//! SQLite (a file in a temporary directory), in memory, and on PostgreSQL (a database of its
//! own on the test server). Cases that only one backend can have (a full disk, file modes,
//! schema versions of the SQLite file) live beside that backend.

use std::collections::HashSet;
use std::sync::Arc;

use labboard::pg::Pg;
use labboard::storage::{ChunkSeq, MemoryStorage, PgStorage, SqliteStorage, Storage, StorageError};
use labboard_protocol::DocumentId;

/// Where a store keeps its data, so that it can be opened again on the same data.
enum Backend {
    Sqlite(tempfile::TempDir),
    Memory,
    Postgres(String),
}

impl Backend {
    fn sqlite() -> Self {
        Self::Sqlite(tempfile::tempdir().expect("a temporary directory"))
    }

    fn memory() -> Self {
        Self::Memory
    }

    async fn postgres() -> Self {
        Self::Postgres(labboard_tests::pg::scratch_database().await)
    }

    /// A store on this backend's data; each call opens a new one (memory: an empty one).
    async fn open(&self) -> Arc<dyn Storage> {
        match self {
            Self::Sqlite(dir) => Arc::new(SqliteStorage::open(dir.path()).expect("open sqlite")),
            Self::Memory => Arc::new(MemoryStorage::default()),
            Self::Postgres(url) => {
                let pg = Pg::connect(url).await.expect("connect to postgres");
                Arc::new(PgStorage::new(pg).await.expect("postgres storage"))
            }
        }
    }
}

/// The seqs a compaction leaves: the parts it did not cover, and its snapshot's own where the
/// backend keeps snapshots as parts, in order.
fn after_compaction(kept: &[ChunkSeq], snapshot: Option<ChunkSeq>) -> Vec<ChunkSeq> {
    let mut parts: Vec<ChunkSeq> = kept.iter().copied().chain(snapshot).collect();
    parts.sort_unstable();
    parts
}

async fn append_load_compact_delete(backend: &Backend) {
    let store = backend.open().await;
    assert!(!store.storage_id().is_empty());
    let doc = DocumentId::random();
    let other = DocumentId::random();
    assert_eq!(store.load(doc).await.unwrap(), None);

    let first = store.append(doc, vec![1, 2]).await.unwrap();
    let second = store.append(doc, vec![3]).await.unwrap();
    store.append(other, vec![9]).await.unwrap();
    assert!(second > first);
    let loaded = store.load(doc).await.unwrap().unwrap();
    assert_eq!(loaded.snapshot, None);
    assert_eq!(loaded.chunks, vec![vec![1, 2], vec![3]]);
    assert_eq!(loaded.parts, vec![first, second]);
    assert_eq!(loaded.concatenated(), vec![1, 2, 3]);

    // A chunk appended after the snapshot was taken survives the compaction.
    let late = store.append(doc, vec![4]).await.unwrap();
    let snapshot = store.compact(doc, vec![7, 7], &loaded.parts).await.unwrap();
    let loaded = store.load(doc).await.unwrap().unwrap();
    assert_eq!(loaded.snapshot, Some(vec![7, 7]));
    assert_eq!(loaded.chunks, vec![vec![4]]);
    assert_eq!(loaded.parts, after_compaction(&[late], snapshot));
    assert_eq!(loaded.concatenated(), vec![7, 7, 4]);

    store.delete(doc).await.unwrap();
    assert_eq!(store.load(doc).await.unwrap(), None);
    assert_eq!(
        store.load_new(doc, &[]).await.unwrap(),
        Default::default(),
        "nothing new of a deleted document"
    );
    store.close().await.unwrap();
}

async fn load_new_returns_the_parts_not_known(backend: &Backend) {
    let store = backend.open().await;
    let doc = DocumentId::random();
    assert_eq!(
        store.load_new(doc, &[]).await.unwrap(),
        Default::default(),
        "nothing of a document never stored"
    );
    let a = store.append(doc, vec![1]).await.unwrap();
    let b = store.append(doc, vec![2]).await.unwrap();
    let c = store.append(doc, vec![3]).await.unwrap();
    store.append(DocumentId::random(), vec![8]).await.unwrap();

    let all = store.load_new(doc, &[]).await.unwrap();
    assert_eq!(all.snapshot, None);
    assert_eq!(all.chunks, vec![vec![1], vec![2], vec![3]]);
    assert_eq!(all.parts, vec![a, b, c]);

    let new = store.load_new(doc, &[a, c]).await.unwrap();
    assert_eq!(new.chunks, vec![vec![2]]);
    assert_eq!(new.parts, vec![b]);
    // Seqs that are not the document's (or no longer exist) change nothing.
    let new = store.load_new(doc, &[a, b, c, c + 1000]).await.unwrap();
    assert_eq!(new, Default::default());

    // A compaction by the holder of every part: a backend that keeps snapshots as parts shows
    // the snapshot as new to whoever did not know it, and nothing new to its writer.
    let snapshot = store.compact(doc, vec![5, 5], &[a, b, c]).await.unwrap();
    let d = store.append(doc, vec![4]).await.unwrap();
    let new = store.load_new(doc, &[a, b, c]).await.unwrap();
    match snapshot {
        Some(seq) => {
            assert_eq!(new.snapshot, Some(vec![5, 5]));
            assert_eq!(new.parts, vec![seq, d]);
            let mut known = vec![a, b, c, seq];
            assert_eq!(store.load_new(doc, &known).await.unwrap().parts, vec![d]);
            known.push(d);
            assert_eq!(
                store.load_new(doc, &known).await.unwrap(),
                Default::default()
            );
        }
        None => {
            assert_eq!(new.snapshot, None);
            assert_eq!(new.parts, vec![d]);
        }
    }
    assert_eq!(new.chunks, vec![vec![4]]);
    store.close().await.unwrap();
}

async fn a_compaction_keeps_the_parts_it_did_not_cover(backend: &Backend) {
    let store = backend.open().await;
    let doc = DocumentId::random();
    let a = store.append(doc, vec![1]).await.unwrap();
    let b = store.append(doc, vec![2]).await.unwrap();
    let c = store.append(doc, vec![3]).await.unwrap();

    let snapshot = store.compact(doc, vec![6], &[a, c]).await.unwrap();
    let loaded = store.load(doc).await.unwrap().unwrap();
    assert_eq!(loaded.snapshot, Some(vec![6]));
    assert_eq!(loaded.chunks, vec![vec![2]]);
    assert_eq!(loaded.parts, after_compaction(&[b], snapshot));

    // Covering nothing deletes nothing.
    let again = store.compact(doc, vec![6, 6], &[]).await.unwrap();
    let loaded = store.load(doc).await.unwrap().unwrap();
    assert_eq!(loaded.chunks, vec![vec![2]]);
    assert!(loaded.parts.contains(&b));
    if let (Some(first), Some(second)) = (snapshot, again) {
        // Both snapshots are kept, in the order written.
        assert_eq!(loaded.snapshot, Some(vec![6, 6, 6]));
        assert_eq!(loaded.parts, vec![b, first, second]);
    }
    store.close().await.unwrap();
}

async fn delete_leaves_other_documents_alone(backend: &Backend) {
    let store = backend.open().await;
    let doc = DocumentId::random();
    let other = DocumentId::random();
    let first = store.append(doc, vec![1]).await.unwrap();
    store.append(other, vec![9]).await.unwrap();
    store.compact(doc, vec![5], &[first]).await.unwrap();
    let other_part = store.append(other, vec![10]).await.unwrap();
    let other_snapshot = store.compact(other, vec![8], &[]).await.unwrap();
    let before = store.load(other).await.unwrap().unwrap();

    store.delete(doc).await.unwrap();
    assert_eq!(store.load(doc).await.unwrap(), None);
    let after = store.load(other).await.unwrap().unwrap();
    assert_eq!(after, before);
    assert_eq!(after.snapshot, Some(vec![8]));
    assert_eq!(after.chunks, vec![vec![9], vec![10]]);
    assert!(after.parts.contains(&other_part));
    assert_eq!(after.parts.len(), 2 + usize::from(other_snapshot.is_some()));

    // Deleting a document that is not stored is no error, and harms nothing.
    store.delete(DocumentId::random()).await.unwrap();
    assert_eq!(store.load(other).await.unwrap().unwrap(), before);
    // A deleted document can be written again, from nothing.
    store.append(doc, vec![2]).await.unwrap();
    let again = store.load(doc).await.unwrap().unwrap();
    assert_eq!(again.snapshot, None);
    assert_eq!(again.chunks, vec![vec![2]]);
    store.close().await.unwrap();
}

async fn a_closed_store_refuses_every_call(backend: &Backend) {
    let store = backend.open().await;
    let doc = DocumentId::random();
    let seq = store.append(doc, vec![1]).await.unwrap();
    store.close().await.unwrap();
    fn closed<T: std::fmt::Debug>(what: &str, result: Result<T, StorageError>) {
        assert!(
            matches!(result, Err(StorageError::Closed)),
            "{what} after close: {result:?}"
        );
    }
    closed("append", store.append(doc, vec![2]).await);
    closed("load", store.load(doc).await);
    closed("load_new", store.load_new(doc, &[]).await);
    closed("compact", store.compact(doc, vec![3], &[seq]).await);
    closed("delete", store.delete(doc).await);
    closed("close", store.close().await);
}

/// Only for backends that keep data: what was stored is there when the store is opened again.
async fn reopening_keeps_the_data(backend: &Backend) {
    let store = backend.open().await;
    let id = store.storage_id().to_owned();
    let doc = DocumentId::random();
    let first = store.append(doc, vec![1]).await.unwrap();
    store.compact(doc, vec![4, 4], &[first]).await.unwrap();
    store.append(doc, vec![2]).await.unwrap();
    let deleted = DocumentId::random();
    store.append(deleted, vec![3]).await.unwrap();
    store.delete(deleted).await.unwrap();
    let before = store.load(doc).await.unwrap().unwrap();
    store.close().await.unwrap();
    drop(store);

    let again = backend.open().await;
    assert_eq!(again.storage_id(), id, "the storage id is stable");
    assert_eq!(again.load(doc).await.unwrap(), Some(before));
    assert_eq!(again.load(deleted).await.unwrap(), None);
    again.close().await.unwrap();
}

async fn concurrent_appends_are_all_durable_with_distinct_seqs(backend: &Backend) {
    const WRITERS: u8 = 8;
    const CHUNKS: u8 = 20;
    let store = backend.open().await;
    let docs: Vec<DocumentId> = (0..WRITERS).map(|_| DocumentId::random()).collect();
    // One document that every writer appends to as well.
    let shared = DocumentId::random();
    let tasks: Vec<_> = docs
        .iter()
        .copied()
        .zip(0..)
        .map(|(doc, i)| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let mut seqs = Vec::new();
                for n in 0..CHUNKS {
                    seqs.push(store.append(doc, vec![i, n]).await.unwrap());
                    seqs.push(store.append(shared, vec![i, n]).await.unwrap());
                }
                seqs
            })
        })
        .collect();
    let mut seqs = Vec::new();
    for task in tasks {
        seqs.extend(task.await.unwrap());
    }
    let distinct: HashSet<ChunkSeq> = seqs.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        seqs.len(),
        "every append has a seq of its own"
    );

    for (doc, i) in docs.iter().zip(0..) {
        let loaded = store.load(*doc).await.unwrap().unwrap();
        let expected: Vec<Vec<u8>> = (0..CHUNKS).map(|n| vec![i, n]).collect();
        assert_eq!(loaded.chunks, expected, "one writer's chunks, in its order");
    }
    let shared = store.load(shared).await.unwrap().unwrap();
    let mut chunks = shared.chunks.clone();
    chunks.sort();
    let mut expected: Vec<Vec<u8>> = (0..WRITERS)
        .flat_map(|i| (0..CHUNKS).map(move |n| vec![i, n]))
        .collect();
    expected.sort();
    assert_eq!(
        chunks, expected,
        "every writer's chunks of the shared document"
    );
    assert!(shared.parts.iter().all(|seq| distinct.contains(seq)));
    store.close().await.unwrap();
}

macro_rules! on_backend {
    ($backend:ident, $open:expr, [$($case:ident),* $(,)?]) => {
        mod $backend {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let backend = $open;
                    super::$case(&backend).await;
                }
            )*
        }
    };
}

on_backend!(
    sqlite,
    Backend::sqlite(),
    [
        append_load_compact_delete,
        load_new_returns_the_parts_not_known,
        a_compaction_keeps_the_parts_it_did_not_cover,
        delete_leaves_other_documents_alone,
        a_closed_store_refuses_every_call,
        reopening_keeps_the_data,
        concurrent_appends_are_all_durable_with_distinct_seqs,
    ]
);

on_backend!(
    memory,
    Backend::memory(),
    [
        append_load_compact_delete,
        load_new_returns_the_parts_not_known,
        a_compaction_keeps_the_parts_it_did_not_cover,
        delete_leaves_other_documents_alone,
        a_closed_store_refuses_every_call,
        concurrent_appends_are_all_durable_with_distinct_seqs,
    ]
);

on_backend!(
    postgres,
    Backend::postgres().await,
    [
        append_load_compact_delete,
        load_new_returns_the_parts_not_known,
        a_compaction_keeps_the_parts_it_did_not_cover,
        delete_leaves_other_documents_alone,
        a_closed_store_refuses_every_call,
        reopening_keeps_the_data,
        concurrent_appends_are_all_durable_with_distinct_seqs,
        two_nodes_compacting_at_once_lose_nothing,
        an_append_is_announced_once_committed,
        a_lost_connection_is_retryable_and_storage_recovers,
    ]
);

/// PostgreSQL only (several nodes share one database): two stores on one database each
/// compact with what they hold, neither having taken in the other's latest; every part
/// survives in one snapshot or the other, or as a chunk.
async fn two_nodes_compacting_at_once_lose_nothing(backend: &Backend) {
    let one = backend.open().await;
    let two = backend.open().await;
    let doc = DocumentId::random();
    let a = one.append(doc, vec![1]).await.unwrap();
    // Two takes in what one stored.
    let seen = two.load(doc).await.unwrap().unwrap();
    assert_eq!(seen.parts, vec![a]);
    let b = two.append(doc, vec![2]).await.unwrap();
    let c = one.append(doc, vec![3]).await.unwrap();

    // One holds a and c, two holds a and b.
    let s1 = one.compact(doc, vec![10], &[a, c]).await.unwrap().unwrap();
    let s2 = two.compact(doc, vec![20], &[a, b]).await.unwrap().unwrap();
    let loaded = one.load(doc).await.unwrap().unwrap();
    assert_eq!(
        loaded.snapshot,
        Some(vec![10, 20]),
        "both snapshots are kept"
    );
    assert_eq!(loaded.chunks, Vec::<Vec<u8>>::new());
    assert_eq!(loaded.parts, vec![s1, s2]);

    // Each node takes in the other's snapshot, and the next compaction covers both.
    let new = one.load_new(doc, &[s1]).await.unwrap();
    assert_eq!((new.snapshot, new.parts), (Some(vec![20]), vec![s2]));
    let s3 = one
        .compact(doc, vec![30], &[s1, s2])
        .await
        .unwrap()
        .unwrap();
    let loaded = two.load(doc).await.unwrap().unwrap();
    assert_eq!((loaded.snapshot, loaded.parts), (Some(vec![30]), vec![s3]));
    one.close().await.unwrap();
    two.close().await.unwrap();
}

/// PostgreSQL only: an append tells the other nodes, on the chunks channel, which document,
/// which seq and which node, and only once it is committed.
async fn an_append_is_announced_once_committed(backend: &Backend) {
    use futures_util::StreamExt;
    let Backend::Postgres(url) = backend else {
        unreachable!("announcements are PostgreSQL's");
    };
    let (client, mut connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    let (notes_tx, mut notes) = tokio::sync::mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            if let Ok(tokio_postgres::AsyncMessage::Notification(note)) = message {
                if notes_tx
                    .send((note.channel().to_owned(), note.payload().to_owned()))
                    .is_err()
                {
                    break;
                }
            }
        }
    });
    client
        .batch_execute(&format!("LISTEN {}", labboard::pg::CHUNKS_CHANNEL))
        .await
        .unwrap();

    let pg = Pg::connect(url).await.unwrap();
    let node = pg.node_id().to_owned();
    let store = PgStorage::new(pg).await.unwrap();
    let doc = DocumentId::random();
    let seq = store.append(doc, vec![1]).await.unwrap();
    let (channel, payload) = notes.recv().await.expect("a notification");
    assert_eq!(channel, labboard::pg::CHUNKS_CHANNEL);
    assert_eq!(payload, format!("{doc} {seq} {node}"));

    // A compaction announces nothing; the next append does.
    store.compact(doc, vec![5], &[seq]).await.unwrap();
    let next = store.append(doc, vec![2]).await.unwrap();
    let (_, payload) = notes.recv().await.expect("a notification");
    assert_eq!(payload, format!("{doc} {next} {node}"));

    // An append whose transaction fails at commit (a deferred check the test adds, refusing
    // the chunk [3]) is not acknowledged, not stored, and not announced: the next notification
    // is the next append's.
    client
        .batch_execute(
            "CREATE FUNCTION refuse_three() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
                 IF NEW.data = '\\x03'::bytea THEN RAISE EXCEPTION 'refused at commit'; END IF;
                 RETURN NULL;
             END $$;
             CREATE CONSTRAINT TRIGGER refuse_three AFTER INSERT ON doc_parts
                 DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse_three();",
        )
        .await
        .unwrap();
    let refused = store.append(doc, vec![3]).await;
    assert!(
        matches!(&refused, Err(StorageError::Postgres(text)) if text.contains("refused at commit")),
        "{refused:?}"
    );
    let last = store.append(doc, vec![4]).await.unwrap();
    let (_, payload) = notes.recv().await.expect("a notification");
    assert_eq!(payload, format!("{doc} {last} {node}"));
    let loaded = store.load(doc).await.unwrap().unwrap();
    assert_eq!(loaded.chunks, vec![vec![2], vec![4]]);
    store.close().await.unwrap();
    drop(client);
    driver.await.unwrap();
}

/// PostgreSQL only: when the server ends the store's connections (a restart, a failover), a
/// call fails with an error that says to try again, or succeeds on a new connection; storage
/// works again without being reopened, and holds exactly what was acknowledged.
async fn a_lost_connection_is_retryable_and_storage_recovers(backend: &Backend) {
    let Backend::Postgres(url) = backend else {
        unreachable!("connections are PostgreSQL's");
    };
    let store = backend.open().await;
    let doc = DocumentId::random();
    let mut acknowledged = vec![store.append(doc, vec![0]).await.unwrap()];

    let (admin, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    let driver = tokio::spawn(connection);
    let ended = admin
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
            &[],
        )
        .await
        .unwrap();
    assert!(ended >= 1, "the store's connection was ended");

    let mut failures = 0;
    for n in 1..=20u8 {
        match store.append(doc, vec![n]).await {
            Ok(seq) => acknowledged.push(seq),
            Err(err) => {
                assert!(err.is_retryable(), "{err:?}");
                assert!(matches!(err, StorageError::Unavailable(_)), "{err:?}");
                failures += 1;
            }
        }
    }
    // The pool holds at most one connection per call in flight: one call here at a time, so a
    // few calls fail at most before every dead connection is replaced.
    assert!(failures < 20, "storage never recovered");
    let loaded = store.load(doc).await.unwrap().unwrap();
    assert_eq!(
        loaded.parts, acknowledged,
        "exactly the appends acknowledged"
    );
    store.close().await.unwrap();
    drop(admin);
    driver.await.unwrap().unwrap();
}

/// Nodes that share one document store, each with its own replica, as document actors keep
/// them: whatever they do in whatever order, no change a store acknowledged is ever lost.
mod nodes {
    use std::sync::Arc;

    use automerge::transaction::Transactable;
    use automerge::{Automerge, ChangeHash, ReadDoc};
    use labboard::storage::{ChunkSeq, Storage};
    use labboard_protocol::DocumentId;
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestCaseError, TestRunner};

    use super::Backend;

    #[derive(Debug, Clone)]
    enum Step {
        /// The node makes a change and appends it (`save_after` what it had saved).
        Change { node: usize, key: u8, value: i64 },
        /// The node takes in what the others stored that it does not hold.
        TakeIn { node: usize },
        /// The node compacts: its snapshot, covering the parts it holds.
        Compact { node: usize },
    }

    fn steps(nodes: usize) -> impl Strategy<Value = Vec<Step>> {
        let step = prop_oneof![
            3 => (0..nodes, 0..8u8, any::<i64>())
                .prop_map(|(node, key, value)| Step::Change { node, key, value }),
            2 => (0..nodes).prop_map(|node| Step::TakeIn { node }),
            2 => (0..nodes).prop_map(|node| Step::Compact { node }),
        ];
        prop::collection::vec(step, 1..30)
    }

    /// One node's replica of the document and the stored parts whose changes it holds.
    struct Node {
        store: Arc<dyn Storage>,
        doc: Automerge,
        saved_heads: Vec<ChangeHash>,
        parts: Vec<ChunkSeq>,
    }

    impl Node {
        async fn take_in(&mut self, id: DocumentId) -> Result<(), TestCaseError> {
            let new = self.store.load_new(id, &self.parts).await.unwrap();
            if let Some(snapshot) = &new.snapshot {
                self.doc
                    .load_incremental(snapshot)
                    .map_err(|err| TestCaseError::fail(format!("a stored snapshot: {err}")))?;
            }
            for chunk in &new.chunks {
                self.doc
                    .load_incremental(chunk)
                    .map_err(|err| TestCaseError::fail(format!("a stored chunk: {err}")))?;
            }
            self.parts.extend_from_slice(&new.parts);
            // Nothing of its own waits for storage: every change was appended when made.
            self.saved_heads = self.doc.get_heads();
            Ok(())
        }
    }

    async fn run(stores: &[Arc<dyn Storage>], steps: Vec<Step>) -> Result<(), TestCaseError> {
        // A document of its own per case: cases share the stores.
        let id = DocumentId::random();
        let mut nodes: Vec<Node> = stores
            .iter()
            .map(|store| Node {
                store: Arc::clone(store),
                doc: Automerge::new(),
                saved_heads: Vec::new(),
                parts: Vec::new(),
            })
            .collect();
        let mut acknowledged = Vec::new();
        for step in steps {
            match step {
                Step::Change { node, key, value } => {
                    let node = &mut nodes[node];
                    let mut tx = node.doc.transaction();
                    tx.put(automerge::ROOT, format!("k{key}"), value).unwrap();
                    let (hash, _) = tx.commit();
                    let hash = hash.expect("a change with an op");
                    let chunk = node.doc.save_after(&node.saved_heads);
                    let seq = node.store.append(id, chunk).await.unwrap();
                    node.parts.push(seq);
                    node.saved_heads = node.doc.get_heads();
                    acknowledged.push(hash);
                }
                Step::TakeIn { node } => nodes[node].take_in(id).await?,
                Step::Compact { node } => {
                    let node = &mut nodes[node];
                    let snapshot = node.doc.save();
                    let part = node.store.compact(id, snapshot, &node.parts).await.unwrap();
                    node.parts = part.into_iter().collect();
                }
            }
        }

        let mut stored = Automerge::new();
        if let Some(loaded) = stores[0].load(id).await.unwrap() {
            stored
                .load_incremental(&loaded.concatenated())
                .map_err(|err| TestCaseError::fail(format!("the stored document: {err}")))?;
        }
        for hash in &acknowledged {
            prop_assert!(
                stored.get_change_by_hash(hash).is_some(),
                "acknowledged change {} is not stored",
                hash
            );
        }
        // Every node that takes in what is stored ends with exactly the stored document.
        for node in &mut nodes {
            node.take_in(id).await?;
            prop_assert_eq!(node.doc.get_heads(), stored.get_heads());
        }
        Ok(())
    }

    /// Runs the property on the stores `open` gives, all on one backend's data.
    fn check(cases: u32, nodes: usize, open: impl AsyncFnOnce() -> Vec<Arc<dyn Storage>>) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let stores = runtime.block_on(open());
        assert_eq!(stores.len(), nodes);
        let mut runner = TestRunner::new(Config {
            cases,
            failure_persistence: None,
            ..Config::default()
        });
        let result = runner.run(&steps(nodes), |steps| runtime.block_on(run(&stores, steps)));
        if let Err(err) = result {
            panic!("{err}");
        }
    }

    /// Two nodes on one PostgreSQL database, each compacting whenever it likes, also without
    /// having taken in the other's latest.
    #[test]
    fn postgres_two_nodes_lose_no_acknowledged_change() {
        check(64, 2, async || {
            let backend = Backend::postgres().await;
            vec![backend.open().await, backend.open().await]
        });
    }

    /// One node on memory storage (which keeps a single snapshot: one node owns it).
    #[test]
    fn memory_one_node_loses_no_acknowledged_change() {
        check(64, 1, async || vec![Backend::memory().open().await]);
    }
}
