//! What a loaded board costs the server in memory. Boards of many notes are written, the
//! server is restarted (as after a reboot, or once it has unloaded idle boards), and then one
//! fresh projector per board connects and opens it, so the server loads every board from
//! storage. Resident memory is read three times: after the restart, with the projectors
//! connected but nothing open, and with every board open; the last step's growth per board is
//! the cost of a loaded board (its document, sync state and snapshot), apart from connections.

use std::time::{Duration, Instant};

use anyhow::Context;
use labboard_protocol::client::Client;
use labboard_protocol::PeerId;
use serde_json::json;

use crate::cli::Boards;
use crate::coldload::fill_board;
use crate::http;
use crate::phone::{bounded, ensure_positive, note_count, unique, Target, SETUP_CONCURRENCY};
use crate::proc_stats::{Meter, Process};
use crate::report::{mib, round, Report};
use crate::Env;

/// Time for the server to finish what a step started (tasks, allocator) before RSS is read.
const QUIET: Duration = Duration::from_millis(500);

pub async fn run(args: &Boards, env: &Env) -> anyhow::Result<Report> {
    ensure_positive("the number of boards", args.count)?;
    ensure_positive("the number of notes", args.notes)?;
    ensure_positive("the number of writers", args.writers)?;
    let started = env.started.as_ref().context(
        "boards restarts the server to load the boards from storage: it needs --start-labboard",
    )?;
    let mut report = Report::new(
        "boards",
        format!(
            "{} boards of {} notes, loaded from storage after a restart, one projector each ({})",
            args.count,
            args.notes,
            env.target.describe()
        ),
    );
    report.field(
        "params",
        json!({ "boards": args.count, "notes": args.notes, "writers": args.writers,
                "minChars": args.size.min_chars, "maxChars": args.size.max_chars }),
    );

    let setup = Meter::start(env.server)?;
    let mut boards = Vec::with_capacity(args.count);
    for index in 0..args.count {
        let lab = env
            .target
            .create_lab(&format!("Bench board {}", index + 1))
            .await?;
        let board = fill_board(env, &lab, args.notes, args.writers, &args.size).await?;
        let url = env.target.phone_url(&lab, "Projector").await?;
        boards.push((lab, board, url));
    }
    let setup = setup.finish()?;
    let saved: usize = boards.iter().map(|(_, board, _)| board.bytes).sum();

    let pid = started.lock().await.restart().await?;
    let server = Process(Some(pid));
    tokio::time::sleep(QUIET).await;
    let fresh = server.rss_kib()?;

    let connects = boards
        .iter()
        .enumerate()
        .map(|(index, (_, _, url))| {
            let url = url.clone();
            async move {
                let peer_id = PeerId::new(format!("bench-projector-{}-{}", index + 1, unique()));
                Client::connect(&url, peer_id)
                    .await
                    .context("a projector connecting")
            }
        })
        .collect();
    let projectors: Vec<Client> = bounded(SETUP_CONCURRENCY, connects).await?;
    tokio::time::sleep(QUIET).await;
    let connected = server.rss_kib()?;

    let meter = Meter::start(Some(server))?;
    let opens = projectors
        .iter()
        .zip(&boards)
        .map(|(client, (lab, board, _))| {
            let (client, doc_id, wanted, settle) =
                (client.clone(), lab.doc_id, board.heads.clone(), env.settle);
            async move {
                let open = async {
                    let doc = client.find(doc_id).await?;
                    doc.wait_until(move |doc| doc.get_heads() == wanted).await?;
                    anyhow::Ok(doc.with_doc(note_count))
                };
                tokio::time::timeout(settle, open)
                    .await
                    .context("a board did not load in time")?
            }
        })
        .collect();
    let counts: Vec<usize> = bounded(SETUP_CONCURRENCY, opens).await?;
    let usage = meter.finish()?;
    tokio::time::sleep(QUIET).await;
    let loaded = server.rss_kib()?;
    for (index, count) in counts.iter().enumerate() {
        if *count != args.notes {
            report.fail(format!(
                "board {} loaded with {count} notes, expected {}",
                index + 1,
                args.notes
            ));
        }
    }
    for client in projectors {
        client.close().await;
    }
    let unloaded = if args.unload_wait.is_zero() {
        None
    } else {
        Some(wait_for_unload(env, args.unload_wait).await?)
    };
    let after_unload = server.rss_kib()?;

    let per = |from: u64, to: u64| to.saturating_sub(from) as f64 / args.count as f64;
    let per_board = per(connected, loaded);
    let per_projector = per(fresh, connected);
    report.row(
        "boards",
        format!(
            "{} of {} notes, {:.1} KiB saved on average; {} / {} loaded whole",
            args.count,
            args.notes,
            saved as f64 / args.count as f64 / 1024.0,
            counts.iter().filter(|count| **count == args.notes).count(),
            args.count
        ),
    );
    report.row(
        "server RSS",
        format!(
            "{} after the restart, {} with the projectors connected, {} with every board open",
            mib(fresh),
            mib(connected),
            mib(loaded)
        ),
    );
    report.row(
        "per loaded board",
        format!("{per_board:.0} KiB ({:.2} MiB)", per_board / 1024.0),
    );
    report.row("per projector", format!("{per_projector:.1} KiB"));
    match unloaded {
        None => report.row("idle unload", "not checked (--unload-wait 0)"),
        Some(Some(after)) => report.row(
            "idle unload",
            format!(
                "every board unloaded {:.0} s after its projector left; RSS then {}",
                after.as_secs_f64(),
                mib(after_unload)
            ),
        ),
        Some(None) => {
            report.row("idle unload", "boards still loaded");
            report.fail(format!(
                "boards were still loaded {:?} after their last projector left",
                args.unload_wait
            ));
        }
    }
    report.field(
        "unloadedAfterS",
        json!(unloaded.flatten().map(|after| round(after.as_secs_f64()))),
    );
    report.field("rssAfterUnloadKiB", json!(after_unload));
    report.row(
        "opening them all",
        format!(
            "{:.2} s, {SETUP_CONCURRENCY} at a time (writing them took {:.1} s)",
            usage.wall.as_secs_f64(),
            setup.wall.as_secs_f64()
        ),
    );
    report.usage(&usage, &setup, Some(loaded), server.hwm_kib().ok());
    report.field("boardsLoaded", json!(counts.len()));
    report.field("savedBytesPerBoard", json!(saved / args.count));
    report.field("rssAfterRestartKiB", json!(fresh));
    report.field("rssConnectedKiB", json!(connected));
    report.field("rssLoadedKiB", json!(loaded));
    report.field("rssPerBoardKiB", json!(round(per_board)));
    report.field("rssPerProjectorKiB", json!(round(per_projector)));
    Ok(report)
}

/// Polls `/healthz` until the server holds no board; how long that took, or `None` if it
/// still held some after `limit`.
async fn wait_for_unload(env: &Env, limit: Duration) -> anyhow::Result<Option<Duration>> {
    let Target::Labboard { authority, .. } = &*env.target else {
        anyhow::bail!("boards needs a labboard target");
    };
    let started = Instant::now();
    loop {
        if http::documents_loaded(authority).await? == 0 {
            return Ok(Some(started.elapsed()));
        }
        if started.elapsed() >= limit {
            return Ok(None);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
