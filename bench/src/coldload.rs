//! A board that already holds many notes, fetched by fresh projectors one after another: how
//! long a projector opened mid-lab takes to show the whole board.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use labboard_protocol::client::Client;
use labboard_protocol::PeerId;
use serde_json::json;

use crate::cli::{Coldload, NoteSize};
use crate::phone::{
    bounded, close_all, ensure_positive, note_count, unique, Lab, Phone, SETUP_CONCURRENCY,
};
use crate::proc_stats::{Meter, PeakRss};
use crate::report::{Percentiles, Report};
use crate::text::Rng;
use crate::Env;

pub async fn run(args: &Coldload, env: &Env) -> anyhow::Result<Report> {
    ensure_positive("the number of notes", args.notes)?;
    ensure_positive("the number of writers", args.writers)?;
    ensure_positive("the number of fetches", args.fetches)?;
    let mut report = Report::new(
        "coldload",
        format!(
            "a board of {} notes by {} writers, fetched by {} fresh projectors in turn ({})",
            args.notes,
            args.writers,
            args.fetches,
            env.target.describe()
        ),
    );
    report.field(
        "params",
        json!({
            "notes": args.notes,
            "writers": args.writers,
            "fetches": args.fetches,
            "minChars": args.size.min_chars,
            "maxChars": args.size.max_chars,
        }),
    );

    // Set-up: the board, written concurrently, one change per note.
    let setup = Meter::start(env.server)?;
    let lab = env.target.create_lab("Bench cold load").await?;
    let board = fill_board(env, &lab, args.notes, args.writers, &args.size).await?;
    let (heads, board_bytes, changes) = (board.heads, board.bytes, board.changes);
    let mut urls = Vec::with_capacity(args.fetches);
    for index in 0..args.fetches {
        urls.push(
            env.target
                .phone_url(&lab, &format!("Projector {}", index + 1))
                .await?,
        );
    }
    let setup = setup.finish()?;

    let peak = env.server.map(PeakRss::start);
    let meter = Meter::start(env.server)?;
    let mut connected = Vec::new();
    let mut complete = Vec::new();
    for (index, url) in urls.into_iter().enumerate() {
        let started = Instant::now();
        let peer_id = PeerId::new(format!("bench-projector-{}-{}", index + 1, unique()));
        let client = Client::connect(&url, peer_id)
            .await
            .context("a projector connecting")?;
        connected.push(started.elapsed());
        let wanted = heads.clone();
        let fetch = async {
            let doc = client.find(lab.doc_id).await?;
            doc.wait_until(move |doc| doc.get_heads() == wanted).await?;
            anyhow::Ok(doc)
        };
        let doc = match tokio::time::timeout(env.settle, fetch).await {
            Ok(result) => result.context("a projector fetching the board")?,
            Err(_) => {
                report.fail(format!(
                    "projector {} did not get the whole board within {:?}",
                    index + 1,
                    env.settle
                ));
                break;
            }
        };
        complete.push(started.elapsed());
        let count = doc.with_doc(note_count);
        if count != args.notes {
            report.fail(format!(
                "projector {} has {count} notes, expected {}",
                index + 1,
                args.notes
            ));
        }
        client.close().await;
    }
    let usage = meter.finish()?;
    let peak_rss = match (peak, env.server) {
        (Some(peak), Some(server)) => Some(peak.stop(server)),
        _ => None,
    };
    let hwm = env.server.and_then(|server| server.hwm_kib().ok());

    report.row(
        "board",
        format!(
            "{} notes, {changes} changes, {:.1} KiB saved",
            args.notes,
            board_bytes as f64 / 1024.0
        ),
    );
    report.row(
        "fetches complete",
        format!("{} / {} with identical heads", complete.len(), args.fetches),
    );
    let load = Percentiles::of(&complete);
    let connect = Percentiles::of(&connected);
    let line = |p: &Option<Percentiles>| p.as_ref().map_or_else(|| "n/a".into(), Percentiles::line);
    report.row("load p50/p95/p99/max", line(&load));
    report.row("  of which connect", line(&connect));
    report.usage(&usage, &setup, peak_rss, hwm);
    let json_of = |p: &Option<Percentiles>| {
        p.as_ref()
            .map_or(serde_json::Value::Null, Percentiles::json)
    };
    report.field("boardNotes", json!(args.notes));
    report.field("boardChanges", json!(changes));
    report.field("boardBytes", json!(board_bytes));
    report.field("fetchesComplete", json!(complete.len()));
    report.field("headsEqual", json!(complete.len() == args.fetches));
    report.field("loadMs", json_of(&load));
    report.field("connectMs", json_of(&connect));
    if complete.len() < args.fetches && report.ok() {
        report.fail("not every fetch completed");
    }
    Ok(report)
}

/// A board written by [`fill_board`].
pub struct FilledBoard {
    pub heads: Vec<automerge::ChangeHash>,
    /// Its saved size.
    pub bytes: usize,
    pub changes: usize,
}

/// Writes `notes` notes onto a lab's board from `writers` phones at once, one change per note,
/// and returns once every writer has all of them (so the server has them all); the writers
/// then disconnect.
pub async fn fill_board(
    env: &Env,
    lab: &Lab,
    notes: usize,
    writers: usize,
    size: &NoteSize,
) -> anyhow::Result<FilledBoard> {
    let connects = (0..writers)
        .map(|index| {
            let (target, lab) = (Arc::clone(&env.target), lab.clone());
            async move {
                let name = format!("Writer {}", index + 1);
                let seat = target.seat(&lab, &name).await?;
                Phone::connect(seat, name, lab.doc_id).await
            }
        })
        .collect();
    let phones: Vec<Phone> = bounded(SETUP_CONCURRENCY, connects).await?;
    let writes = phones
        .iter()
        .enumerate()
        .map(|(index, writer)| {
            let (writer, size, total) = (writer.clone(), size.clone(), notes);
            let (settle, alone) = (env.settle, writers == 1);
            let mine: Vec<usize> = (index..notes).step_by(writers).collect();
            async move {
                let mut rng = Rng::new(u64::try_from(index).expect("fits"));
                for k in mine {
                    let id = format!("{}-{k}", writer.client().peer_id());
                    writer.post_note(&id, &rng.note_text(size.min_chars, size.max_chars), k)?;
                    tokio::task::yield_now().await;
                }
                // Every note a writer did not write reached it through the server, so once every
                // writer has every note the server has them all. A lone writer has only the
                // server's acknowledgement to go by.
                let stored = async {
                    if alone {
                        writer.doc.wait_synced().await
                    } else {
                        writer.doc.wait_until(|doc| note_count(doc) >= total).await
                    }
                };
                tokio::time::timeout(settle, stored)
                    .await
                    .with_context(|| {
                        format!("{}: the board was not complete in time", writer.name)
                    })?
                    .with_context(|| format!("{}: waiting for the whole board", writer.name))?;
                anyhow::Ok(())
            }
        })
        .collect();
    bounded(SETUP_CONCURRENCY, writes).await?;
    let first = phones[0].clone();
    let board = FilledBoard {
        heads: first.doc.heads(),
        bytes: first.doc.with_doc(|doc| doc.save().len()),
        changes: first.doc.with_doc(|doc| doc.get_changes(&[]).len()),
    };
    close_all(phones).await;
    Ok(board)
}
