//! Phones that write fast are slowed down, never dropped.
//!
//! Several phones of one lab each post a note every 25 ms for half a minute while a projector
//! watches the board, all through the real server on real sockets. Posting that fast is honest
//! use: every phone keeps reading what the server sends it. The server may make the phones wait
//! (TCP backpressure) but must not disconnect any of them, and every note must reach the
//! projector and every phone. The test takes the half minute of real time the scenario lasts; it
//! asserts on what arrived and on which connections stayed open, never on how long anything took.

use std::time::Duration;

use futures_util::FutureExt;
use labboard_protocol::client::{Client, DocHandle};
use labboard_tests::{add_note, note_count, within, Lab, TestServer};
use tokio::time::MissedTickBehavior;

/// Phones writing at once. The reported incident had four; three keep the server as far behind
/// in a debug build, while the test's own replicas leave some of a small machine to the rest.
const WRITERS: usize = 3;

/// Notes per second from each phone, as in the incident.
const NOTES_PER_SECOND: u64 = 40;

/// How long each phone keeps writing at that rate.
const WRITING_FOR: Duration = Duration::from_secs(30);

/// Notes each phone posts: the rate over the whole period.
const NOTES_PER_WRITER: usize = (NOTES_PER_SECOND * WRITING_FOR.as_secs()) as usize;

async fn connect(server: &TestServer, lab: &Lab, name: &str) -> (Client, DocHandle) {
    server.phone(lab, name).await
}

/// Open WebSocket connections, from `GET /healthz`.
async fn connections(server: &TestServer) -> u64 {
    let health = server.http("GET", "/healthz", None, None).await.json();
    health["connections"]
        .as_u64()
        .expect("connections is a number")
}

/// Posts `NOTES_PER_WRITER` notes at `NOTES_PER_SECOND`. A tick that comes late (the test
/// machine is busy) is not made up with a burst: the rate is an upper bound, the count is exact.
async fn write_notes(board: DocHandle, writer: usize) {
    let mut every = tokio::time::interval(Duration::from_secs(1) / NOTES_PER_SECOND as u32);
    every.set_missed_tick_behavior(MissedTickBehavior::Delay);
    for n in 0..NOTES_PER_WRITER {
        every.tick().await;
        add_note(
            &board,
            &format!("w{writer}-{n:04}"),
            &format!("phone {writer}, note {n}: counted on from the bigger number"),
        );
    }
}

/// Waits until `board` holds `total` notes. A busy machine may take a while to get there, so
/// what is bounded is progress, not the total time: it fails if no new note arrives for
/// [`labboard_tests::WAIT`],
/// or at once if the connection closes.
async fn wait_for_notes(board: &DocHandle, total: usize, who: &str) {
    loop {
        let seen = board.with_doc(note_count);
        if seen >= total {
            assert_eq!(seen, total, "{who} has more notes than were written");
            return;
        }
        within(
            &format!("{who} receives more than {seen} of {total} notes"),
            board.wait_until(|doc| note_count(doc) > seen),
        )
        .await
        .unwrap_or_else(|err| panic!("{who} lost its connection: {err}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fast_honest_writers_are_slowed_never_dropped_and_lose_nothing() {
    let server = TestServer::start().await;
    let lab = server.create_lab("Fast fingers").await;
    let (projector, shown) = connect(&server, &lab, "projector").await;
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        writers.push(connect(&server, &lab, &format!("phone-{w}")).await);
    }
    let before = shown.with_doc(note_count);
    assert_eq!(connections(&server).await, WRITERS as u64 + 1);

    let tasks: Vec<_> = writers
        .iter()
        .enumerate()
        .map(|(w, (_, board))| tokio::spawn(write_notes(board.clone(), w)))
        .collect();
    for task in tasks {
        task.await.expect("writer task");
    }

    // A phone the server dropped would never send the rest of its notes: say so first.
    for (name, client) in std::iter::once(("projector".to_owned(), &projector)).chain(
        writers
            .iter()
            .enumerate()
            .map(|(w, (client, _))| (format!("phone {w}"), client)),
    ) {
        if let Some(closed) = client.closed().now_or_never() {
            panic!("{name} was disconnected: {closed}");
        }
    }
    let total = before + WRITERS * NOTES_PER_WRITER;
    wait_for_notes(&shown, total, "the projector").await;
    for (w, (_, board)) in writers.iter().enumerate() {
        wait_for_notes(board, total, &format!("phone {w}")).await;
        within(
            &format!("the server acknowledges phone {w}'s notes"),
            board.wait_synced(),
        )
        .await
        .unwrap_or_else(|err| panic!("phone {w}: {err}"));
        assert_eq!(board.heads(), shown.heads(), "phone {w} converged");
    }

    assert_eq!(
        connections(&server).await,
        WRITERS as u64 + 1,
        "no connection closed"
    );
    server.stop().await;
}
