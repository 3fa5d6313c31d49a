//! Labs in session: in each lab, observers post notes on a schedule while a projector watches
//! the board. Steady, burst and many-labs are this one run with different sizes.
//!
//! Latency is measured inside this process on one monotonic clock: an observer records the
//! `Instant` just before committing a note to its replica, and the lab's projector, woken by
//! every change to its own replica, records when each note id first appears there.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context;
use automerge::ChangeHash;
use serde_json::json;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::sleep_until;

use crate::phone::{bounded, close_all, ensure_positive, Lab, Phone, SETUP_CONCURRENCY};
use crate::proc_stats::{Meter, PeakRss};
use crate::report::{round, secs, Percentiles, Report};
use crate::text::Rng;
use crate::Env;

/// Delay between the end of set-up and the first scheduled note, so every poster and watcher
/// task is running before the clock starts.
const START_DELAY: Duration = Duration::from_millis(200);

/// What to run.
#[derive(Debug, Clone)]
pub struct Plan {
    pub labs: usize,
    pub observers: usize,
    pub notes_per_observer: usize,
    /// Zero for a burst: every note at once, one change each.
    pub interval: Duration,
    pub min_chars: usize,
    pub max_chars: usize,
}

/// One lab's phones, connected and holding the board.
struct LabPhones {
    observers: Vec<Phone>,
    projector: Phone,
}

/// When each note was committed, by note id. Written by the observers, read by the projector.
// std Mutex: held only to insert or look up, never across an `.await`.
type SentLog = Arc<Mutex<HashMap<String, Instant>>>;

/// What one projector saw.
#[derive(Default)]
struct Arrivals {
    latencies: Vec<Duration>,
    last: Option<Instant>,
    /// Note ids that were never sent (should not happen).
    unexpected: usize,
}

/// What one observer did.
struct Posted {
    count: usize,
    first: Option<Instant>,
    /// How late the worst note left against its schedule: the generator's own saturation.
    max_lag: Duration,
}

pub async fn run(scenario: &'static str, plan: &Plan, env: &Env) -> anyhow::Result<Report> {
    ensure_positive("the number of labs", plan.labs)?;
    ensure_positive("the number of observers", plan.observers)?;
    ensure_positive("the number of notes", plan.notes_per_observer)?;
    let every = if plan.interval.is_zero() {
        "all at once".to_owned()
    } else {
        format!("every {:?}", plan.interval)
    };
    let mut report = Report::new(
        scenario,
        format!(
            "{} lab(s) x {} observers + 1 projector, {} notes each {every}, {}-{} chars ({})",
            plan.labs,
            plan.observers,
            plan.notes_per_observer,
            plan.min_chars,
            plan.max_chars,
            env.target.describe()
        ),
    );
    report.field(
        "params",
        json!({
            "labs": plan.labs,
            "observers": plan.observers,
            "projectors": plan.labs,
            "notesPerObserver": plan.notes_per_observer,
            "intervalMs": plan.interval.as_millis(),
            "minChars": plan.min_chars,
            "maxChars": plan.max_chars,
        }),
    );

    let setup = Meter::start(env.server)?;
    let labs = connect_labs(plan, env).await?;
    let setup = setup.finish()?;

    let peak = env.server.map(PeakRss::start);
    let meter = Meter::start(env.server)?;
    let (stop, stopped) = watch::channel(false);
    let expected = plan.observers * plan.notes_per_observer;
    let mut watchers = JoinSet::new();
    let mut posters = JoinSet::new();
    let start = Instant::now() + START_DELAY;
    let phones_total = plan.labs * plan.observers;
    for (lab_index, lab) in labs.iter().enumerate() {
        let sent: SentLog = Arc::default();
        watchers.spawn(watch_arrivals(
            lab.projector.clone(),
            Arc::clone(&sent),
            expected,
            stopped.clone(),
        ));
        for (index, observer) in lab.observers.iter().enumerate() {
            // Spread every observer of every lab evenly over one interval.
            let slot = lab_index * plan.observers + index;
            let offset = plan.interval.mul_f64(slot as f64 / phones_total as f64);
            let seed = u64::try_from(slot).expect("slot fits in u64");
            posters.spawn(post_notes(
                observer.clone(),
                Arc::clone(&sent),
                plan.clone(),
                start + offset,
                seed,
            ));
        }
    }

    let mut sent_count = 0;
    let mut first_commit: Option<Instant> = None;
    let mut max_lag = Duration::ZERO;
    while let Some(posted) = posters.join_next().await {
        let posted = posted.context("an observer task panicked")??;
        sent_count += posted.count;
        first_commit = min_instant(first_commit, posted.first);
        max_lag = max_lag.max(posted.max_lag);
    }
    let posting_done = Instant::now();

    // Every note now has `settle` to reach its projector.
    let settle_deadline = posting_done + env.settle;
    let stopper = tokio::spawn(async move {
        sleep_until(settle_deadline.into()).await;
        stop.send_replace(true);
    });
    let mut latencies = Vec::with_capacity(sent_count);
    let mut last_arrival: Option<Instant> = None;
    let mut unexpected = 0;
    while let Some(arrivals) = watchers.join_next().await {
        let arrivals = arrivals.context("a projector task panicked")?;
        latencies.extend(arrivals.latencies);
        last_arrival = last_arrival.max(arrivals.last);
        unexpected += arrivals.unexpected;
    }
    stopper.abort();
    let received = latencies.len();

    let stuck = converge(&labs, Instant::now() + env.settle).await;
    let (unacknowledged, diverged): (Vec<Stuck>, Vec<Stuck>) =
        stuck.into_iter().partition(|stuck| stuck.heads_equal);
    let usage = meter.finish()?;
    let peak_rss = match (peak, env.server) {
        (Some(peak), Some(server)) => Some(peak.stop(server)),
        _ => None,
    };
    let hwm = env.server.and_then(|server| server.hwm_kib().ok());
    close_all(labs.into_iter().flat_map(|lab| {
        let mut phones = lab.observers;
        phones.push(lab.projector);
        phones
    }))
    .await;

    let replicas = plan.labs * (plan.observers + 1);
    let lost = sent_count.saturating_sub(received);
    report.row(
        "notes sent / received",
        if lost == 0 {
            format!("{sent_count} / {received}, all arrived")
        } else {
            format!("{sent_count} / {received}, {lost} LOST")
        },
    );
    report.row(
        "replicas converged",
        format!(
            "{} / {replicas} with identical heads, {} of them acknowledged by the server",
            replicas - diverged.len(),
            replicas - diverged.len() - unacknowledged.len()
        ),
    );
    let percentiles = Percentiles::of(&latencies);
    report.row(
        "latency p50/p95/p99/max",
        percentiles
            .as_ref()
            .map_or_else(|| "n/a".to_owned(), Percentiles::line),
    );
    let span = match (first_commit, last_arrival) {
        (Some(first), Some(last)) => last.saturating_duration_since(first),
        _ => Duration::ZERO,
    };
    let throughput = if span.is_zero() {
        0.0
    } else {
        received as f64 / span.as_secs_f64()
    };
    report.row(
        "throughput",
        format!(
            "{throughput:.1} notes/s (first commit to last arrival: {:.2} s)",
            span.as_secs_f64()
        ),
    );
    report.row(
        "posting lag",
        format!(
            "worst note left {:.1} ms behind schedule",
            max_lag.as_secs_f64() * 1000.0
        ),
    );
    report.usage(&usage, &setup, peak_rss, hwm);
    report.field("notesSent", json!(sent_count));
    report.field("notesReceived", json!(received));
    report.field("notesLost", json!(lost));
    report.field("unexpectedNotes", json!(unexpected));
    report.field("replicas", json!(replicas));
    report.field("replicasConverged", json!(replicas - diverged.len()));
    report.field("headsEqual", json!(diverged.is_empty()));
    report.field("replicasUnacknowledged", json!(unacknowledged.len()));
    report.field(
        "latencyMs",
        percentiles
            .as_ref()
            .map_or(serde_json::Value::Null, Percentiles::json),
    );
    report.field("throughputNotesPerS", json!(round(throughput)));
    report.field("spanS", json!(secs(span)));
    report.field(
        "maxPostingLagMs",
        json!(round(max_lag.as_secs_f64() * 1000.0)),
    );

    if lost > 0 {
        report.fail(format!(
            "LOST {lost} of {sent_count} notes: they never reached the projector within {:?} \
             of the last send",
            env.settle
        ));
    }
    if unexpected > 0 {
        report.fail(format!(
            "{unexpected} notes nobody sent appeared on a board"
        ));
    }
    if !diverged.is_empty() {
        report.fail(format!(
            "DIVERGED: {} of {replicas} replicas did not end with the projector's heads: {}",
            diverged.len(),
            Stuck::list(&diverged)
        ));
    }
    if !unacknowledged.is_empty() {
        report.fail(format!(
            "UNACKNOWLEDGED: {} of {replicas} replicas have the projector's heads, but the \
             server never sent them a sync message with those heads, so their last notes \
             still count as not stored: {}",
            unacknowledged.len(),
            Stuck::list(&unacknowledged)
        ));
    }
    Ok(report)
}

fn min_instant(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Creates the labs and connects every phone, each with its own name, token and replica.
async fn connect_labs(plan: &Plan, env: &Env) -> anyhow::Result<Vec<LabPhones>> {
    let creates = (0..plan.labs)
        .map(|index| {
            let target = Arc::clone(&env.target);
            async move { target.create_lab(&format!("Bench lab {}", index + 1)).await }
        })
        .collect();
    let labs: Vec<Lab> = bounded(SETUP_CONCURRENCY, creates).await?;
    let mut connects = Vec::new();
    for (index, lab) in labs.iter().enumerate() {
        for seat in 0..=plan.observers {
            let name = if seat < plan.observers {
                format!("Observer {}-{}", index + 1, seat + 1)
            } else {
                format!("Projector {}", index + 1)
            };
            let (target, lab) = (Arc::clone(&env.target), lab.clone());
            connects.push(async move {
                let seat = target.seat(&lab, &name).await?;
                Phone::connect(seat, name, lab.doc_id).await
            });
        }
    }
    let mut phones = bounded(SETUP_CONCURRENCY, connects).await?.into_iter();
    Ok(labs
        .iter()
        .map(|_| {
            let observers = phones.by_ref().take(plan.observers).collect();
            let projector = phones.next().expect("one projector per lab was connected");
            LabPhones {
                observers,
                projector,
            }
        })
        .collect())
}

/// One observer's notes, on schedule from `first_due`.
async fn post_notes(
    phone: Phone,
    sent: SentLog,
    plan: Plan,
    first_due: Instant,
    seed: u64,
) -> anyhow::Result<Posted> {
    let mut rng = Rng::new(seed);
    let mut posted = Posted {
        count: 0,
        first: None,
        max_lag: Duration::ZERO,
    };
    for k in 0..plan.notes_per_observer {
        let steps = u32::try_from(k).context("too many notes")?;
        let due = first_due + plan.interval * steps;
        if k > 0 && plan.interval.is_zero() {
            tokio::task::yield_now().await; // a burst: no wait, but let the others run
        } else {
            sleep_until(due.into()).await;
            posted.max_lag = posted
                .max_lag
                .max(Instant::now().saturating_duration_since(due));
        }
        let id = format!("{}-{k}", phone.client().peer_id());
        let text = rng.note_text(plan.min_chars, plan.max_chars);
        let committed = Instant::now();
        lock(&sent).insert(id.clone(), committed);
        phone.post_note(&id, &text, k)?;
        posted.first.get_or_insert(committed);
        posted.count += 1;
    }
    Ok(posted)
}

/// Watches a projector's replica until `expected` notes have arrived or `stop` fires.
async fn watch_arrivals(
    projector: Phone,
    sent: SentLog,
    expected: usize,
    mut stop: watch::Receiver<bool>,
) -> Arrivals {
    let mut changes = projector.doc.subscribe();
    let mut seen = HashSet::new();
    let mut arrivals = Arrivals::default();
    loop {
        // Marked seen before reading, so a change during the scan wakes us again.
        changes.borrow_and_update();
        let fresh = projector
            .doc
            .with_doc(|doc| crate::phone::new_note_ids(doc, &seen));
        if !fresh.is_empty() {
            let now = Instant::now();
            let sent = lock(&sent);
            for id in fresh {
                match sent.get(&id) {
                    Some(at) => arrivals.latencies.push(now.saturating_duration_since(*at)),
                    None => arrivals.unexpected += 1,
                }
                seen.insert(id);
            }
            arrivals.last = Some(now);
        }
        if arrivals.latencies.len() >= expected {
            return arrivals;
        }
        tokio::select! {
            changed = changes.changed() => if changed.is_err() { return arrivals },
            _ = stop.wait_for(|stop| *stop) => return arrivals,
        }
    }
}

/// Waits, until `deadline`, for every replica of each lab to reach its projector's heads and
/// for the server to acknowledge them; describes each replica that did not.
async fn converge(labs: &[LabPhones], deadline: Instant) -> Vec<Stuck> {
    let mut checks = JoinSet::new();
    for lab in labs {
        let target: Vec<ChangeHash> = lab.projector.doc.heads();
        let expected = lab.projector.doc.with_doc(crate::phone::note_count);
        for phone in lab.observers.iter().chain([&lab.projector]) {
            let (phone, target) = (phone.clone(), target.clone());
            checks.spawn(async move {
                let wanted = target.clone();
                let check = async {
                    phone
                        .doc
                        .wait_until(move |doc| doc.get_heads() == wanted)
                        .await?;
                    phone.doc.wait_synced().await
                };
                match tokio::time::timeout_at(deadline.into(), check).await {
                    Ok(Ok(())) => None,
                    Ok(Err(err)) => Some(Stuck {
                        heads_equal: false,
                        what: format!("{}: {err}", phone.name),
                    }),
                    Err(_) => Some(describe_stuck(&phone, &target, expected).await),
                }
            });
        }
    }
    let mut stuck = Vec::new();
    while let Some(check) = checks.join_next().await {
        match check {
            Ok(Some(one)) => stuck.push(one),
            Ok(None) => {}
            Err(err) => stuck.push(Stuck {
                heads_equal: false,
                what: format!("a convergence check panicked: {err}"),
            }),
        }
    }
    stuck
}

/// What a replica that did not converge looks like, to tell a missing change from a missing
/// acknowledgement from a dead connection.
async fn describe_stuck(phone: &Phone, target: &[ChangeHash], projector_notes: usize) -> Stuck {
    let heads = phone.doc.heads();
    let notes = phone.doc.with_doc(crate::phone::note_count);
    let connection = match tokio::time::timeout(Duration::ZERO, phone.client().closed()).await {
        Ok(info) => format!("connection closed ({info})"),
        Err(_) => "connection open".to_owned(),
    };
    let open = connection == "connection open";
    let what = format!(
        "{} ({}): {notes} notes vs the projector's {projector_notes}, heads {} the projector's \
         ({} vs {}), {} by the server, {connection}",
        phone.name,
        phone.client().peer_id(),
        if heads == target {
            "equal to"
        } else {
            "DIFFERENT from"
        },
        heads.len(),
        target.len(),
        if phone.doc.is_synced() {
            "acknowledged"
        } else {
            "NOT acknowledged"
        },
    );
    Stuck {
        heads_equal: heads == target && open,
        what,
    }
}

/// A replica that did not end converged and acknowledged.
struct Stuck {
    /// It has the projector's heads (and an open connection); only the acknowledgement is missing.
    heads_equal: bool,
    what: String,
}

impl Stuck {
    /// The first few, for the failure message.
    fn list(stuck: &[Stuck]) -> String {
        let shown: Vec<&str> = stuck.iter().take(3).map(|s| s.what.as_str()).collect();
        let more = stuck.len().saturating_sub(shown.len());
        if more > 0 {
            format!("{} (and {more} more)", shown.join("; "))
        } else {
            shown.join("; ")
        }
    }
}
