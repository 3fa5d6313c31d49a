//! Several nodes on one PostgreSQL database: phones of one lab on both converge, a node killed
//! while its phones write loses nothing they saw acknowledged and they carry on through the
//! other, and deleting or ending a lab on one node reaches the sockets on the other.
//!
//! Real parts: the `labboard` binary twice, a real PostgreSQL server (started by `scripts/test`),
//! the official JS client in Node and the Rust client.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use labboard_protocol::client::Client;
use labboard_protocol::PeerId;
use labboard_tests::js::{ensure_installed, JsPeer};
use labboard_tests::pg::scratch_database;
use labboard_tests::{
    add_note, create_lab, facilitate, http, join_lab, lab_sync_url, note, within, Lab,
    ServerProcess, TEST_ORGANIZER_TOKEN,
};
use serde_json::json;
use tempfile::TempDir;

/// One node: the binary on its own data directory, sharing the database at `database_url`.
struct Node {
    process: ServerProcess,
    _dir: TempDir,
}

impl Node {
    async fn start(database_url: &str) -> Self {
        Self::start_with(database_url, &[]).await
    }

    async fn start_with(database_url: &str, extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut args = vec!["--database-url", database_url];
        args.extend_from_slice(extra);
        let process = ServerProcess::spawn_with(dir.path(), &args)
            .await
            .expect("the node starts on PostgreSQL");
        Self { process, _dir: dir }
    }

    fn addr(&self) -> SocketAddr {
        self.process.addr
    }

    fn sync_url(&self, lab: &Lab, token: &str) -> String {
        lab_sync_url(self.addr(), &lab.lab_id, token)
    }
}

/// A JS phone signed in to `lab` as its facilitator (who may write any key, as these tests of
/// sync do) through `node`, connected to it.
async fn js_phone(node: &Node, lab: &Lab, name: &str) -> (JsPeer, String) {
    let token = facilitate(node.addr(), lab).await;
    let mut peer = JsPeer::spawn(&node.sync_url(lab, &token), name)
        .await
        .expect("node peer starts");
    peer.wait_connected().await.expect("the phone connects");
    peer.find(&lab.doc_url)
        .await
        .expect("the phone opens the board");
    (peer, token)
}

/// The document's heads as a JS peer has them, sorted.
async fn js_heads(peer: &mut JsPeer, url: &str) -> Vec<String> {
    let got = peer.get(url).await.expect("get");
    let mut heads: Vec<String> = serde_json::from_value(got["heads"].clone()).expect("heads");
    heads.sort();
    heads
}

/// Waits until `peer` has every key of `keys` (each with the value [`value_of`] gives it).
async fn sees_all(peer: &mut JsPeer, url: &str, keys: &BTreeSet<String>) {
    for key in keys {
        peer.wait_for(url, key, json!(value_of(key)))
            .await
            .unwrap_or_else(|err| panic!("{} never saw {key}: {err}", peer.peer_id()));
    }
}

fn value_of(key: &str) -> String {
    format!("seen: {key}")
}

#[tokio::test]
async fn six_phones_on_each_of_two_nodes_share_one_board() {
    ensure_installed().expect("JS test dependencies");
    let database = scratch_database().await;
    let a = Node::start(&database).await;
    let b = Node::start(&database).await;
    let lab = create_lab(a.addr(), "Two nodes, one lab").await;
    let url = lab.doc_url.clone();

    let mut phones = Vec::new();
    for i in 0..6 {
        phones.push(js_phone(&a, &lab, &format!("a{i}")).await.0);
        phones.push(js_phone(&b, &lab, &format!("b{i}")).await.0);
    }
    // Every phone writes notes of its own, all at once.
    let mut keys = BTreeSet::new();
    let mut writers = Vec::new();
    for mut phone in phones {
        let url = url.clone();
        let mine: Vec<String> = (0..5).map(|n| format!("{}-{n}", phone.peer_id())).collect();
        keys.extend(mine.iter().cloned());
        writers.push(tokio::spawn(async move {
            for key in &mine {
                phone
                    .set(&url, key, json!(value_of(key)))
                    .await
                    .expect("set");
            }
            phone
        }));
    }
    let mut phones = Vec::new();
    for writer in writers {
        phones.push(writer.await.expect("writer"));
    }
    // Every note reaches every phone, on either node, and all end on the same heads.
    for phone in &mut phones {
        sees_all(phone, &url, &keys).await;
    }
    for phone in &mut phones {
        phone.wait_synced(&url).await.expect("synced with its node");
    }
    let first = js_heads(&mut phones[0], &url).await;
    for phone in &mut phones[1..] {
        assert_eq!(js_heads(phone, &url).await, first, "{}", phone.peer_id());
    }
}

/// What one phone wrote, and which of it a node acknowledged.
#[derive(Default)]
struct Written {
    keys: Vec<String>,
    acknowledged: Vec<String>,
    /// Whether it moved to its fallback node.
    moved: bool,
}

/// Writes `count` notes one after another, asking after each whether the node holds
/// everything so far. When the node stops answering, moves to `fallback` (as a proxy sends the
/// phones of a dead node to another) and goes on.
async fn write_through_failover(
    phone: &mut JsPeer,
    url: &str,
    count: usize,
    fallback: &str,
    acknowledged_total: &AtomicUsize,
) -> Written {
    let mut written = Written::default();
    for n in 0..count {
        let key = format!("{}-{n}", phone.peer_id());
        phone
            .set(url, &key, json!(value_of(&key)))
            .await
            .expect("set");
        written.keys.push(key);
        let asked = json!({ "cmd": "waitSynced", "url": url, "timeoutMs": 1500 });
        match phone.call(asked).await {
            Ok(_) => {
                let newly = written.keys.len() - written.acknowledged.len();
                written.acknowledged.clone_from(&written.keys);
                acknowledged_total.fetch_add(newly, Ordering::SeqCst);
            }
            Err(_) if !written.moved => {
                phone.reconnect_to(fallback).await.expect("reconnect");
                written.moved = true;
            }
            Err(err) => panic!(
                "{} got no acknowledgement after moving: {err}",
                phone.peer_id()
            ),
        }
    }
    written
}

#[tokio::test]
async fn a_node_killed_while_its_phones_write_loses_nothing_they_saw_acknowledged() {
    ensure_installed().expect("JS test dependencies");
    let database = scratch_database().await;
    let mut a = Node::start(&database).await;
    let b = Node::start(&database).await;
    let lab = create_lab(a.addr(), "Failover").await;
    let url = lab.doc_url.clone();
    const NOTES: usize = 12;

    // Every phone connects first; then all write at once.
    let mut connected = Vec::new();
    for i in 0..6 {
        let on_a = i % 2 == 0;
        let node = if on_a { &a } else { &b };
        let name = format!("{}{i}", if on_a { "a" } else { "b" });
        let (phone, token) = js_phone(node, &lab, &name).await;
        // Where the proxy sends it once its node is gone: B, for every phone.
        connected.push((phone, on_a, b.sync_url(&lab, &token)));
    }
    let acknowledged_total = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for (mut phone, on_a, fallback) in connected {
        let url = url.clone();
        let total = Arc::clone(&acknowledged_total);
        tasks.push(tokio::spawn(async move {
            let written = write_through_failover(&mut phone, &url, NOTES, &fallback, &total).await;
            (phone, on_a, fallback, written)
        }));
    }
    // Kill A once the phones are well under way: a few notes each acknowledged.
    within("the phones write", async {
        while acknowledged_total.load(Ordering::SeqCst) < 12 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    a.process.kill().await.expect("SIGKILL node A");

    let mut phones = Vec::new();
    let mut acknowledged = BTreeSet::new();
    let mut all = BTreeSet::new();
    for task in tasks {
        let (mut phone, on_a, fallback, written) = task.await.expect("phone task");
        if on_a && !written.moved {
            // It finished writing before it noticed: the proxy moves it all the same.
            phone.reconnect_to(&fallback).await.expect("reconnect");
        }
        acknowledged.extend(written.acknowledged);
        all.extend(written.keys);
        phones.push(phone);
    }
    assert!(acknowledged.len() >= 12, "{acknowledged:?}");
    // Every phone, now all on B, gets every note, and all converge.
    for phone in &mut phones {
        sees_all(phone, &url, &all).await;
        phone.wait_synced(&url).await.expect("synced with B");
    }
    let first = js_heads(&mut phones[0], &url).await;
    for phone in &mut phones[1..] {
        assert_eq!(js_heads(phone, &url).await, first, "{}", phone.peer_id());
    }
    drop(phones);
    // And a node started afresh on the database has every note a phone saw acknowledged.
    let c = Node::start(&database).await;
    let token = facilitate(c.addr(), &lab).await;
    let client = Client::connect(&c.sync_url(&lab, &token), PeerId::from("checker"))
        .await
        .expect("connect to C");
    let board = within("C opens the board", client.find(lab.doc_id))
        .await
        .expect("board");
    board.with_doc(|doc| {
        for key in &acknowledged {
            assert_eq!(
                labboard_tests::read_string(doc, automerge::ROOT, key.as_str()).as_deref(),
                Some(value_of(key).as_str()),
                "{key} was acknowledged and is gone"
            );
        }
    });
}

/// A Rust client of `lab` on `node` with `token`, its board open.
async fn rust_phone(
    node: &Node,
    lab: &Lab,
    token: &str,
    name: &str,
) -> (Client, labboard_protocol::client::DocHandle) {
    let client = within(
        "connect",
        Client::connect(&node.sync_url(lab, token), PeerId::from(name)),
    )
    .await
    .expect("the token opens a socket");
    let board = within("find the board", client.find(lab.doc_id))
        .await
        .expect("the board");
    (client, board)
}

#[tokio::test]
async fn a_lab_deleted_through_one_node_closes_its_sockets_on_the_other_and_its_tokens_fail_on_both(
) {
    let database = scratch_database().await;
    let a = Node::start(&database).await;
    let b = Node::start(&database).await;
    let lab = create_lab(a.addr(), "Deleted on B").await;
    let kept = create_lab(a.addr(), "Kept").await;
    let observer = join_lab(a.addr(), &lab.join_code, "Ana").await;
    let kept_observer = join_lab(a.addr(), &kept.join_code, "Ben").await;
    let (client, board) = rust_phone(&a, &lab, &observer, "ana").await;
    let (kept_client, kept_board) = rust_phone(&a, &kept, &kept_observer, "ben").await;
    add_note(&board, "before", "written before the deletion");
    within("stored", board.wait_synced()).await.unwrap();

    let facilitator = facilitate(b.addr(), &lab).await;
    let path = format!("/api/labs/{}", lab.lab_id);
    let deleted = http(b.addr(), "DELETE", &path, Some(&facilitator), None).await;
    assert_eq!(deleted.status, 204, "{}", deleted.body);

    // A closes the phone's socket, saying why.
    let closed = within("A closes the deleted lab's socket", client.closed()).await;
    assert!(closed.to_string().contains("deleted"), "{closed}");
    // Its tokens fail on both nodes.
    for node in [&a, &b] {
        for token in [&observer, &facilitator] {
            let access = http(node.addr(), "GET", "/api/session", Some(token), None).await;
            assert_eq!(access.status, 401, "{}", access.body);
            let path = format!("/sync?lab={}&token={token}", lab.lab_id);
            let refused = http(node.addr(), "GET", &path, None, None).await;
            assert_eq!(refused.status, 401, "{}", refused.body);
        }
    }
    // The other lab's phone on A is undisturbed.
    add_note(&kept_board, "after", "written after the other lab went");
    within("the other lab still syncs", kept_board.wait_synced())
        .await
        .unwrap();
    drop(kept_client);
}

#[tokio::test]
async fn a_lab_ended_through_one_node_is_read_only_on_the_other_at_once() {
    let database = scratch_database().await;
    let a = Node::start(&database).await;
    let b = Node::start(&database).await;
    let lab = create_lab(a.addr(), "Ended on B").await;
    let observer = join_lab(a.addr(), &lab.join_code, "Ana").await;
    let (client, board) = rust_phone(&a, &lab, &observer, "ana").await;
    add_note(&board, "before", "written before the end");
    within("stored", board.wait_synced()).await.unwrap();

    let facilitator = facilitate(b.addr(), &lab).await;
    let path = format!("/api/labs/{}/end", lab.lab_id);
    let ended = http(b.addr(), "POST", &path, Some(&facilitator), None).await;
    assert_eq!(ended.status, 200, "{}", ended.body);

    // The board open on A refuses the next change (A may hear of the end a moment after B
    // answered, so the phone writes until it is refused).
    let refused = within("A refuses changes to the ended board", async {
        let mut n = 0;
        loop {
            add_note(&board, &format!("after-{n}"), "written after the end");
            n += 1;
            tokio::select! {
                closed = client.closed() => break closed,
                () = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
        }
    })
    .await;
    let error = refused.error.clone().unwrap_or_default();
    assert!(error.contains("ended"), "{refused}");
    // What was written before the end is still there, read from either node.
    for node in [&a, &b] {
        let token = facilitate(node.addr(), &lab).await;
        let (_reader, read) = rust_phone(node, &lab, &token, "reader").await;
        assert_eq!(
            read.with_doc(|doc| note(doc, "before")).as_deref(),
            Some("written before the end")
        );
    }
}

/// The sockets open on a node, from its metrics.
async fn sockets_open(node: &Node) -> usize {
    let metrics = http(
        node.addr(),
        "GET",
        "/metrics",
        Some(TEST_ORGANIZER_TOKEN),
        None,
    )
    .await;
    assert_eq!(metrics.status, 200, "{}", metrics.body);
    let line = metrics
        .body
        .lines()
        .find(|line| line.starts_with("labboard_connections_open "))
        .unwrap_or_else(|| panic!("no connections gauge in {}", metrics.body));
    let value: f64 = line
        .rsplit(' ')
        .next()
        .and_then(|value| value.parse().ok())
        .expect("a number");
    value as usize
}

/// Waits until the nodes have these many sockets open, in order.
async fn sockets_become(nodes: [&Node; 2], expected: [usize; 2]) {
    within("the sockets settle", async {
        loop {
            let now = [sockets_open(nodes[0]).await, sockets_open(nodes[1]).await];
            if now == expected {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn through_nginx_every_phone_of_a_lab_lands_on_one_node_and_moves_when_it_dies() {
    let database = scratch_database().await;
    let mut a = Node::start(&database).await;
    let b = Node::start(&database).await;
    let nginx = labboard_tests::nginx::start_shipped(&[a.addr(), b.addr()])
        .await
        .expect("nginx starts on the shipped configuration");

    // Labs made and joined through the proxy, as a district would.
    let mut landed = [Vec::new(), Vec::new()];
    for n in 0..16 {
        let lab = create_lab(nginx.addr, &format!("Lab {n}")).await;
        let mut phones = Vec::new();
        for p in 0..3 {
            let token = join_lab(nginx.addr, &lab.join_code, &format!("Phone {p}")).await;
            let url = lab_sync_url(nginx.addr, &lab.lab_id, &token);
            let client = within(
                "connect",
                Client::connect(&url, PeerId::from(format!("p{p}").as_str())),
            )
            .await
            .expect("the phone connects through nginx");
            within("find", client.find(lab.doc_id))
                .await
                .expect("board");
            phones.push(client);
        }
        let open = [sockets_open(&a).await, sockets_open(&b).await];
        assert!(
            open == [3, 0] || open == [0, 3],
            "the phones of lab {n} are spread over the nodes: {open:?}"
        );
        landed[usize::from(open[1] == 3)].push(lab);
        for phone in &phones {
            phone.close().await;
        }
        sockets_become([&a, &b], [0, 0]).await;
    }
    assert!(
        !landed[0].is_empty() && !landed[1].is_empty(),
        "all 16 labs went to one node"
    );

    // A lab of A's, once A is gone, is served by B through the same address.
    let lab = landed[0][0].clone();
    a.process.kill().await.expect("SIGKILL node A");
    let token = join_lab(nginx.addr, &lab.join_code, "After A").await;
    let url = lab_sync_url(nginx.addr, &lab.lab_id, &token);
    let client = within(
        "connect after A died",
        Client::connect(&url, PeerId::from("after")),
    )
    .await
    .expect("the phone connects through nginx to B");
    let board = within("find", client.find(lab.doc_id))
        .await
        .expect("board");
    add_note(&board, "after-a", "B serves A's lab");
    within("B stores it", board.wait_synced()).await.unwrap();
    assert_eq!(sockets_open(&b).await, 1);
}

/// A fresh database owned by a role of its own, for nodes the test can keep from making new
/// connections without disturbing other tests on the same server: the administrative URL of the
/// database, the role, and the URL the nodes use.
async fn database_of_own_role() -> (String, String, String) {
    let admin = scratch_database().await;
    let role = format!("lb_role_{}", uuid::Uuid::new_v4().simple());
    let database = labboard_tests::pg::database_name(&admin);
    labboard_tests::pg::execute(
        &admin,
        &format!("CREATE ROLE {role} LOGIN; ALTER DATABASE {database} OWNER TO {role};"),
    )
    .await;
    let url = labboard_tests::pg::with_user(&admin, &role);
    (admin, role, url)
}

/// Cuts every connection of `role` (or only those listening) and keeps it from making new ones.
async fn cut_off(admin: &str, role: &str, listening_only: bool) {
    let which = if listening_only {
        " AND query LIKE 'LISTEN%'"
    } else {
        ""
    };
    let counted = format!("SELECT count(*) FROM pg_stat_activity WHERE usename = '{role}'{which}");
    labboard_tests::pg::execute(
        admin,
        &format!(
            "ALTER ROLE {role} NOLOGIN; SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE usename = '{role}'{which};"
        ),
    )
    .await;
    within("the connections are gone", async {
        while labboard_tests::pg::count(admin, &counted).await > 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn while_the_database_is_unreachable_notes_wait_and_are_stored_once_it_is_back() {
    let (admin, role, url) = database_of_own_role().await;
    let a = Node::start(&url).await;
    let lab = create_lab(a.addr(), "Database down").await;
    let ana = join_lab(a.addr(), &lab.join_code, "Ana").await;
    let (client, board) = rust_phone(&a, &lab, &ana, "ana").await;
    add_note(&board, "before", "stored at once");
    within("stored", board.wait_synced()).await.unwrap();

    cut_off(&admin, &role, false).await;
    add_note(&board, "during", "written while the database was away");
    within("the node says it is not ready", async {
        while http(a.addr(), "GET", "/readyz", None, None).await.status != 503 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;

    // Back: the note is stored and acknowledged on the same connection.
    labboard_tests::pg::execute(&admin, &format!("ALTER ROLE {role} LOGIN;")).await;
    within("the note waiting in memory is stored", board.wait_synced())
        .await
        .unwrap();
    within("the node is ready again", async {
        while http(a.addr(), "GET", "/readyz", None, None).await.status != 200 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    let b = Node::start(&url).await;
    let token = facilitate(b.addr(), &lab).await;
    let (_reader, read) = rust_phone(&b, &lab, &token, "reader").await;
    assert_eq!(
        read.with_doc(|doc| note(doc, "during")).as_deref(),
        Some("written while the database was away")
    );
    drop(client);
}

#[tokio::test]
async fn a_node_that_could_not_listen_for_a_while_catches_up_on_what_it_missed() {
    let (admin, role, url) = database_of_own_role().await;
    let a = Node::start(&url).await;
    let b = Node::start(&url).await;
    let lab = create_lab(b.addr(), "Missed notifications").await;
    let gone = create_lab(b.addr(), "Deleted meanwhile").await;
    let ana = join_lab(a.addr(), &lab.join_code, "Ana").await;
    let ben = join_lab(b.addr(), &lab.join_code, "Ben").await;
    let cy = join_lab(a.addr(), &gone.join_code, "Cy").await;
    let (_ana_client, ana_board) = rust_phone(&a, &lab, &ana, "ana").await;
    let (_ben_client, ben_board) = rust_phone(&b, &lab, &ben, "ben").await;
    let (cy_client, _cy_board) = rust_phone(&a, &gone, &cy, "cy").await;
    add_note(&ben_board, "first", "heard at once");
    within(
        "A hears of B's note",
        ana_board.wait_until(|doc| note(doc, "first").is_some()),
    )
    .await
    .unwrap();

    // The listening connections are cut and cannot be made again for now; the pools' open
    // connections go on working.
    cut_off(&admin, &role, true).await;
    // Meanwhile B stores a note and deletes a lab: A hears of neither.
    add_note(&ben_board, "missed", "written while A was not listening");
    within("B stores it", ben_board.wait_synced())
        .await
        .unwrap();
    let facilitator = facilitate(b.addr(), &gone).await;
    let path = format!("/api/labs/{}", gone.lab_id);
    let deleted = http(b.addr(), "DELETE", &path, Some(&facilitator), None).await;
    assert_eq!(deleted.status, 204, "{}", deleted.body);

    // Once A can listen again, it takes in what it missed and closes the deleted lab's socket.
    labboard_tests::pg::execute(&admin, &format!("ALTER ROLE {role} LOGIN;")).await;
    within(
        "A catches up on the note",
        ana_board.wait_until(|doc| note(doc, "missed").is_some()),
    )
    .await
    .unwrap();
    let closed = within("A closes the deleted lab's socket", cy_client.closed()).await;
    assert!(closed.to_string().contains("deleted"), "{closed}");
}

#[tokio::test]
async fn both_nodes_compacting_the_board_while_both_take_notes_lose_none() {
    let database = scratch_database().await;
    // Every second chunk a compaction, on both nodes, while phones on both write.
    let a = Node::start_with(&database, &["--compact-after-chunks", "2"]).await;
    let b = Node::start_with(&database, &["--compact-after-chunks", "2"]).await;
    let lab = create_lab(a.addr(), "Compacting on both").await;
    let mut writers = Vec::new();
    for i in 0..6 {
        let node = if i % 2 == 0 { &a } else { &b };
        let token = join_lab(node.addr(), &lab.join_code, &format!("Phone {i}")).await;
        let (client, board) = rust_phone(node, &lab, &token, &format!("p{i}")).await;
        writers.push(tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            for n in 0..20 {
                let id = format!("p{i}-{n}");
                add_note(&board, &id, &format!("note {n} of phone {i}"));
                within("the node stores it", board.wait_synced())
                    .await
                    .unwrap();
                acknowledged.push(id);
            }
            (client, board, acknowledged)
        }));
    }
    let mut boards = Vec::new();
    let mut acknowledged = BTreeSet::new();
    for writer in writers {
        let (client, board, ids) = writer.await.expect("writer");
        acknowledged.extend(ids);
        boards.push((client, board));
    }
    // Every phone gets every note, on either node.
    for (_, board) in &boards {
        within(
            "every note reaches every phone",
            board.wait_until(|doc| acknowledged.iter().all(|id| note(doc, id).is_some())),
        )
        .await
        .unwrap();
    }
    // And what is stored holds them all: a third node loads the board from the database.
    let c = Node::start(&database).await;
    let token = facilitate(c.addr(), &lab).await;
    let (_reader, read) = rust_phone(&c, &lab, &token, "reader").await;
    read.with_doc(|doc| {
        for id in &acknowledged {
            assert!(note(doc, id).is_some(), "{id} was acknowledged and is gone");
        }
    });
    let snapshots =
        labboard_tests::pg::count(&database, "SELECT count(*) FROM doc_parts WHERE snapshot").await;
    assert!(snapshots >= 1, "no compaction happened");
}
