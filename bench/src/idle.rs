//! Many connected phones doing nothing: what each connection costs the server in memory, and
//! what keeping them alive (pings) costs in CPU.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::cli::Idle;
use crate::http;
use crate::phone::{bounded, close_all, ensure_positive, Lab, Phone, Target, SETUP_CONCURRENCY};
use crate::proc_stats::{Meter, PeakRss};
use crate::report::{mib, round, secs, Report};
use crate::Env;

pub async fn run(args: &Idle, env: &Env) -> anyhow::Result<Report> {
    ensure_positive("the number of phones", args.count)?;
    ensure_positive("--per-lab", args.per_lab)?;
    let lab_count = args.count.div_ceil(args.per_lab);
    let mut report = Report::new(
        "idle",
        format!(
            "{} idle phones in {lab_count} labs of up to {}, held {:?} ({})",
            args.count,
            args.per_lab,
            args.hold,
            env.target.describe()
        ),
    );
    report.field(
        "params",
        json!({ "phones": args.count, "perLab": args.per_lab, "labs": lab_count,
                "holdS": secs(args.hold) }),
    );

    let setup = Meter::start(env.server)?;
    let creates = (0..lab_count)
        .map(|index| {
            let target = Arc::clone(&env.target);
            async move {
                target
                    .create_lab(&format!("Bench idle lab {}", index + 1))
                    .await
            }
        })
        .collect();
    let labs: Vec<Lab> = bounded(SETUP_CONCURRENCY, creates).await?;
    let joins = (0..args.count)
        .map(|index| {
            let (target, lab) = (Arc::clone(&env.target), labs[index / args.per_lab].clone());
            async move {
                let name = format!("Phone {}", index + 1);
                let seat = target.seat(&lab, &name).await?;
                Ok((seat, name, lab.doc_id))
            }
        })
        .collect();
    let seats = bounded(SETUP_CONCURRENCY, joins).await?;
    let baseline = env.server.map(|server| server.rss_kib()).transpose()?;
    let connecting = Instant::now();
    let connects = seats
        .into_iter()
        .map(|(seat, name, doc_id)| Phone::connect(seat, name, doc_id))
        .collect();
    let phones: Vec<Phone> = bounded(SETUP_CONCURRENCY, connects).await?;
    let connect_time = connecting.elapsed();
    let setup = setup.finish()?;

    let peak = env.server.map(PeakRss::start);
    let meter = Meter::start(env.server)?;
    tokio::time::sleep(args.hold).await;
    let usage = meter.finish()?;
    let after = env.server.map(|server| server.rss_kib()).transpose()?;
    let peak_rss = match (peak, env.server) {
        (Some(peak), Some(server)) => Some(peak.stop(server)),
        _ => None,
    };
    let hwm = env.server.and_then(|server| server.hwm_kib().ok());
    let mut alive = 0;
    for phone in &phones {
        // `closed` resolves at once for an ended connection; a live one stays pending.
        if tokio::time::timeout(Duration::ZERO, phone.client().closed())
            .await
            .is_err()
        {
            alive += 1;
        }
    }
    let server_connections = match env.target.as_ref() {
        Target::Labboard { authority, .. } => Some(http::server_connections(authority).await?),
        Target::SyncUrl { .. } => None,
    };
    close_all(phones).await;

    report.row(
        "phones connected",
        format!(
            "{} in {:.2} s ({:.0}/s, {SETUP_CONCURRENCY} at a time), {alive} still connected after the hold",
            args.count,
            connect_time.as_secs_f64(),
            args.count as f64 / connect_time.as_secs_f64().max(1e-9)
        ),
    );
    if let Some(connections) = server_connections {
        report.row("server says", format!("{connections} connections"));
    }
    let per_connection = match (baseline, after) {
        (Some(before), Some(after)) => {
            let per = after.saturating_sub(before) as f64 / args.count as f64;
            report.row(
                "server RSS per phone",
                format!(
                    "{per:.1} KiB ({} before the phones, {} with them)",
                    mib(before),
                    mib(after)
                ),
            );
            Some(per)
        }
        _ => {
            report.row("server RSS per phone", "n/a (no --server-pid)");
            None
        }
    };
    report.usage(&usage, &setup, peak_rss, hwm);
    report.field("phones", json!(args.count));
    report.field("connectS", json!(secs(connect_time)));
    report.field("stillConnected", json!(alive));
    report.field("serverConnections", json!(server_connections));
    report.field("rssBeforeKiB", json!(baseline));
    report.field("rssAfterKiB", json!(after));
    report.field("rssPerConnectionKiB", json!(per_connection.map(round)));
    if alive < args.count {
        report.fail(format!(
            "{} of {} idle phones were disconnected during the hold",
            args.count - alive,
            args.count
        ));
    }
    if let Some(connections) = server_connections {
        if connections < u64::try_from(args.count).unwrap_or(u64::MAX) {
            report.fail(format!(
                "the server counts {connections} connections, expected at least {}",
                args.count
            ));
        }
    }
    Ok(report)
}
