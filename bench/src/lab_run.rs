//! Labs in session: in each lab, observers post notes on a schedule while a projector watches
//! the board. Steady, burst and many-labs are this one run with different sizes.
//!
//! Latency is measured inside this process on one monotonic clock: an observer records the
//! `Instant` just before committing a note to its replica, and the lab's projector, woken by
//! every change to its own replica, records when each note id first appears there.

use std::collections::{HashMap, HashSet};
use std::ops::RangeBounds;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context;
use automerge::ChangeHash;
use serde_json::json;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::sleep_until;

use crate::phone::{bounded, close_all, ensure_positive, Lab, Phone, SETUP_CONCURRENCY};
use crate::proc_stats::{Meter, PeakRss, Usage, Watched};
use crate::report::{round, secs, AlsoUsed, Percentiles, Report};
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
pub struct LabPhones {
    pub lab: Lab,
    pub observers: Vec<Phone>,
    pub projector: Phone,
}

/// When each note was committed and through which node, by note id. Written by the observers,
/// read by the projector.
// std Mutex: held only to insert or look up, never across an `.await`.
type SentLog = Arc<Mutex<HashMap<String, (Instant, usize)>>>;

/// What one projector saw.
#[derive(Default)]
struct Arrivals {
    /// Per note: when it was committed, and how long it took to arrive.
    samples: Vec<(Instant, Duration)>,
    /// The latencies of the notes posted through another node than the projector's.
    cross_node: Vec<Duration>,
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

    let measure = Measure::start(env)?;
    let flow = NoteFlow::start(plan, &labs, None);
    let delivery = flow.finish(env.settle).await?;
    let used = measure
        .settle(&mut report, plan, labs, env, &delivery)
        .await?;
    used.report(&mut report, &setup);
    Ok(report)
}

/// The server's CPU and memory over a run's measured phase: started before its notes flow,
/// read by [`Measure::settle`] once they are in.
pub struct Measure {
    peak: Option<PeakRss>,
    meter: Meter,
    /// The other nodes, the database, the proxy: CPU time at the start, and peak RSS.
    also: Vec<(Watched, Duration, Option<PeakRss>)>,
}

/// What [`Measure::settle`] read.
pub struct Used {
    usage: Usage,
    also: Vec<AlsoUsed>,
    peak_rss_kib: Option<u64>,
    hwm_kib: Option<u64>,
}

impl Measure {
    pub fn start(env: &Env) -> anyhow::Result<Self> {
        let also = env
            .also
            .iter()
            .map(|watched| {
                let cpu = watched.cpu_time()?;
                Ok((watched.clone(), cpu, watched.process().map(PeakRss::start)))
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Self {
            peak: env.server.map(PeakRss::start),
            meter: Meter::start(env.server)?,
            also,
        })
    }

    /// Ends the run: waits until every replica has converged, reads the usage, closes the labs
    /// and reports how the notes were delivered.
    pub async fn settle(
        self,
        report: &mut Report,
        plan: &Plan,
        labs: Vec<LabPhones>,
        env: &Env,
        delivery: &Delivery,
    ) -> anyhow::Result<Used> {
        let stuck = converge(&labs, Instant::now() + env.settle).await;
        let usage = self.meter.finish()?;
        let peak_rss_kib = match (self.peak, env.server) {
            (Some(peak), Some(server)) => Some(peak.stop(server)),
            _ => None,
        };
        let hwm_kib = env.server.and_then(|server| server.hwm_kib().ok());
        let mut also = Vec::new();
        for (watched, before, peak) in self.also {
            let cpu = watched.cpu_time()?.saturating_sub(before);
            let peak_rss_kib = match (peak, watched.process()) {
                (Some(peak), Some(process)) => Some(peak.stop(process)),
                _ => None,
            };
            also.push(AlsoUsed {
                name: watched.name,
                cpu,
                peak_rss_kib,
            });
        }
        close_labs(labs).await;
        delivery.report(report, plan.labs * (plan.observers + 1), stuck, env.settle);
        Ok(Used {
            usage,
            also,
            peak_rss_kib,
            hwm_kib,
        })
    }
}

impl Used {
    /// The rows of the server's and the generator's CPU and memory.
    pub fn report(&self, report: &mut Report, setup: &Usage) {
        report.usage(&self.usage, setup, self.peak_rss_kib, self.hwm_kib);
        if !self.also.is_empty() {
            report.also(self.usage.wall, &self.also);
        }
    }
}

/// The notes of every lab on their schedule, with a projector per lab recording when each
/// arrives: started by [`NoteFlow::start`], collected by [`NoteFlow::finish`].
pub struct NoteFlow {
    posters: JoinSet<anyhow::Result<Posted>>,
    watchers: JoinSet<Arrivals>,
    posting_done: watch::Sender<bool>,
    /// When the first note is due.
    pub start: Instant,
}

impl NoteFlow {
    /// Starts every observer posting `plan.notes_per_observer` notes, one per interval from
    /// [`START_DELAY`] on, every observer of every lab spread evenly over one interval. With
    /// `until`, an observer that has posted its notes keeps posting on the same schedule until
    /// `until` reads true (and at most for as long again as its notes took).
    pub fn start(
        plan: &Plan,
        labs: &[LabPhones],
        until: Option<watch::Receiver<bool>>,
    ) -> NoteFlow {
        let (posting_done, done) = watch::channel(false);
        let mut watchers = JoinSet::new();
        let mut posters = JoinSet::new();
        let start = Instant::now() + START_DELAY;
        let phones_total = labs.len() * plan.observers;
        for (lab_index, lab) in labs.iter().enumerate() {
            let sent: SentLog = Arc::default();
            watchers.spawn(watch_arrivals(
                lab.projector.clone(),
                Arc::clone(&sent),
                done.clone(),
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
                    until.clone(),
                ));
            }
        }
        NoteFlow {
            posters,
            watchers,
            posting_done,
            start,
        }
    }

    /// Waits for every observer to post its last note, then up to `settle` for every note to
    /// reach its lab's projector.
    pub async fn finish(mut self, settle: Duration) -> anyhow::Result<Delivery> {
        let mut delivery = Delivery::default();
        while let Some(posted) = self.posters.join_next().await {
            let posted = posted.context("an observer task panicked")??;
            delivery.sent += posted.count;
            delivery.first_commit = min_instant(delivery.first_commit, posted.first);
            delivery.max_lag = delivery.max_lag.max(posted.max_lag);
        }
        // Every note now has `settle` to reach its projector.
        let settle_deadline = Instant::now() + settle;
        self.posting_done.send_replace(true);
        let stopper = {
            let posting_done = self.posting_done;
            tokio::spawn(async move {
                sleep_until(settle_deadline.into()).await;
                // Past the deadline: the projectors stop waiting for what is missing.
                drop(posting_done);
            })
        };
        while let Some(arrivals) = self.watchers.join_next().await {
            let arrivals = arrivals.context("a projector task panicked")?;
            delivery.samples.extend(arrivals.samples);
            delivery.cross_node.extend(arrivals.cross_node);
            delivery.last_arrival = delivery.last_arrival.max(arrivals.last);
            delivery.unexpected += arrivals.unexpected;
        }
        stopper.abort();
        Ok(delivery)
    }
}

/// What a [`NoteFlow`] delivered.
#[derive(Default)]
pub struct Delivery {
    pub sent: usize,
    /// Per note that arrived: when it was committed, and how long it took to arrive.
    pub samples: Vec<(Instant, Duration)>,
    /// The latencies of the notes that went from one node to another on their way (the lab's
    /// phones spread over several nodes): a subset of `samples`.
    pub cross_node: Vec<Duration>,
    first_commit: Option<Instant>,
    last_arrival: Option<Instant>,
    max_lag: Duration,
    /// Note ids that were never sent (should not happen).
    unexpected: usize,
}

impl Delivery {
    /// The latencies of the notes committed within `when`.
    pub fn latencies_committed(&self, when: impl RangeBounds<Instant>) -> Vec<Duration> {
        self.samples
            .iter()
            .filter(|(committed, _)| when.contains(committed))
            .map(|(_, latency)| *latency)
            .collect()
    }

    /// The rows, fields and failures every note-posting scenario reports: delivery,
    /// convergence of `replicas` replicas (`stuck` those that did not), latency, throughput.
    pub fn report(
        &self,
        report: &mut Report,
        replicas: usize,
        stuck: Vec<Stuck>,
        settle: Duration,
    ) {
        let (unacknowledged, diverged): (Vec<Stuck>, Vec<Stuck>) =
            stuck.into_iter().partition(|stuck| stuck.heads_equal);
        let sent_count = self.sent;
        let received = self.samples.len();
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
        let latencies: Vec<Duration> = self.samples.iter().map(|(_, latency)| *latency).collect();
        let percentiles = Percentiles::of(&latencies);
        report.row(
            "latency p50/p95/p99/max",
            percentiles
                .as_ref()
                .map_or_else(|| "n/a".to_owned(), Percentiles::line),
        );
        let span = match (self.first_commit, self.last_arrival) {
            (Some(first), Some(last)) => last.saturating_duration_since(first),
            _ => Duration::ZERO,
        };
        let throughput = if span.is_zero() {
            0.0
        } else {
            received as f64 / span.as_secs_f64()
        };
        if !self.cross_node.is_empty() {
            let cross = Percentiles::of(&self.cross_node);
            let mut same: Vec<Duration> = latencies.clone();
            // Every latency, less the cross-node ones: the same multiset minus a sub-multiset.
            same.sort_unstable();
            for latency in &self.cross_node {
                if let Ok(at) = same.binary_search(latency) {
                    same.remove(at);
                }
            }
            let same = Percentiles::of(&same);
            let line = |p: &Option<Percentiles>| {
                p.as_ref()
                    .map_or_else(|| "n/a".to_owned(), Percentiles::line)
            };
            report.row(
                "cross-node latency",
                format!(
                    "{} ({} notes posted on another node than the projector's)",
                    line(&cross),
                    self.cross_node.len()
                ),
            );
            report.row("same-node latency", line(&same));
            report.field(
                "crossNodeLatencyMs",
                cross
                    .as_ref()
                    .map_or(serde_json::Value::Null, Percentiles::json),
            );
            report.field("crossNodeNotes", json!(self.cross_node.len()));
            report.field(
                "sameNodeLatencyMs",
                same.as_ref()
                    .map_or(serde_json::Value::Null, Percentiles::json),
            );
        }
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
                self.max_lag.as_secs_f64() * 1000.0
            ),
        );
        report.field("notesSent", json!(sent_count));
        report.field("notesReceived", json!(received));
        report.field("notesLost", json!(lost));
        report.field("unexpectedNotes", json!(self.unexpected));
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
            json!(round(self.max_lag.as_secs_f64() * 1000.0)),
        );

        if lost > 0 {
            report.fail(format!(
                "LOST {lost} of {sent_count} notes: they never reached the projector within \
                 {settle:?} of the last send"
            ));
        }
        if self.unexpected > 0 {
            report.fail(format!(
                "{} notes nobody sent appeared on a board",
                self.unexpected
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
    }
}

/// Closes every phone of every lab.
pub async fn close_labs(labs: Vec<LabPhones>) {
    close_all(labs.into_iter().flat_map(|lab| {
        let mut phones = lab.observers;
        phones.push(lab.projector);
        phones
    }))
    .await;
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
pub async fn connect_labs(plan: &Plan, env: &Env) -> anyhow::Result<Vec<LabPhones>> {
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
                let seat = target.seat_at(&lab, &name, seat).await?;
                Phone::connect(seat, name, lab.doc_id).await
            });
        }
    }
    let mut phones = bounded(SETUP_CONCURRENCY, connects).await?.into_iter();
    Ok(labs
        .into_iter()
        .map(|lab| {
            let observers = phones.by_ref().take(plan.observers).collect();
            let projector = phones.next().expect("one projector per lab was connected");
            LabPhones {
                lab,
                observers,
                projector,
            }
        })
        .collect())
}

/// One observer's notes, on schedule from `first_due`: the plan's, then, with `until`, more
/// until it reads true (at most as many again).
async fn post_notes(
    phone: Phone,
    sent: SentLog,
    plan: Plan,
    first_due: Instant,
    seed: u64,
    until: Option<watch::Receiver<bool>>,
) -> anyhow::Result<Posted> {
    let mut rng = Rng::new(seed);
    let mut posted = Posted {
        count: 0,
        first: None,
        max_lag: Duration::ZERO,
    };
    for k in 0..plan.notes_per_observer.saturating_mul(2) {
        let more = until.as_ref().is_some_and(|until| !*until.borrow());
        if k >= plan.notes_per_observer && !more {
            break;
        }
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
        lock(&sent).insert(id.clone(), (committed, phone.node));
        phone.post_note(&id, &text, k)?;
        posted.first.get_or_insert(committed);
        posted.count += 1;
    }
    Ok(posted)
}

/// Watches a projector's replica until, once `done` reads true (posting is over), every note
/// in `sent` has arrived, or until `done`'s sender is dropped (the settle time is over).
async fn watch_arrivals(
    projector: Phone,
    sent: SentLog,
    mut done: watch::Receiver<bool>,
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
                    Some(&(at, node)) => {
                        let latency = now.saturating_duration_since(at);
                        arrivals.samples.push((at, latency));
                        if node != projector.node {
                            arrivals.cross_node.push(latency);
                        }
                    }
                    None => arrivals.unexpected += 1,
                }
                seen.insert(id);
            }
            arrivals.last = Some(now);
        }
        // Marked seen before counting, so the end of posting during the count wakes us again.
        if *done.borrow_and_update() && arrivals.samples.len() >= lock(&sent).len() {
            return arrivals;
        }
        tokio::select! {
            changed = changes.changed() => if changed.is_err() { return arrivals },
            changed = done.changed() => if changed.is_err() { return arrivals },
        }
    }
}

/// Waits, until `deadline`, for every replica of each lab to reach its projector's heads and
/// for the server to acknowledge them; describes each replica that did not.
pub async fn converge(labs: &[LabPhones], deadline: Instant) -> Vec<Stuck> {
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
pub struct Stuck {
    /// It has the projector's heads (and an open connection); only the acknowledgement is missing.
    heads_equal: bool,
    what: String,
}

impl Stuck {
    /// The first few, for the failure message.
    pub fn list(stuck: &[Stuck]) -> String {
        let shown: Vec<&str> = stuck.iter().take(3).map(|s| s.what.as_str()).collect();
        let more = stuck.len().saturating_sub(shown.len());
        if more > 0 {
            format!("{} (and {more} more)", shown.join("; "))
        } else {
            shown.join("; ")
        }
    }
}
