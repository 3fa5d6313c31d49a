//! Failover: two nodes behind nginx, labs of phones writing through it; one node is killed with
//! SIGKILL, and every phone it held reconnects through nginx, which sends it to the other node.
//!
//! When is a phone "synced again"? An observer, once its connection is back, posts its next
//! note at once; it is synced again when the server has acknowledged that note (a sync message
//! with the phone's heads) and the note has reached its lab's projector (itself reconnected if
//! it was on the killed node). A projector is synced again when, reconnected, the server has
//! acknowledged its heads. The time of each is measured from the kill; the run reports them per
//! phone (with `--json`) and as percentiles, and fails unless every phone of the killed node is
//! synced again within `--recover-within` and, at the end, every replica of every lab has the
//! same heads, acknowledged by the server: no note is lost.
//!
//! A phone reconnects the moment its connection ends, then every [`RETRY_EVERY`] while that
//! fails, keeping its replica (notes it wrote meanwhile are sent on reconnecting). The web
//! client waits 0.5 to 1 s before its first attempt; the bench does not, so that what it
//! measures is the nodes' and the proxy's part.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use labboard_protocol::client::Client;
use labboard_protocol::PeerId;
use serde_json::json;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::sleep_until;

use crate::cli::Failover;
use crate::lab_run::{close_labs, connect_labs, converge, LabPhones, Plan, Stuck};
use crate::phone::{ensure_positive, unique, Phone};
use crate::proc_stats::Meter;
use crate::report::{round, secs, Percentiles, Report};
use crate::text::Rng;
use crate::Env;

/// Delay between two connection attempts of a phone whose connection ended.
const RETRY_EVERY: Duration = Duration::from_millis(200);

/// Bound on one connection attempt.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// After the kill, how long before the bench counts the phones cut off.
const CUT_GRACE: Duration = Duration::from_millis(500);

/// Delay between the end of set-up and the first note.
const START_DELAY: Duration = Duration::from_millis(200);

/// When each note reached a lab's projector, by note id.
type Seen = HashMap<String, Instant>;

/// How one phone of the killed node came back; every time from the kill.
struct Recovery {
    name: String,
    lab: usize,
    /// Its new connection was open (through nginx, to the other node).
    reconnected: Duration,
    /// The server acknowledged its first note after reconnecting (a projector: its heads).
    acknowledged: Duration,
    /// That note reached the lab's projector (a projector: as `acknowledged`).
    synced: Duration,
}

/// What a phone task hands back: the phone as it ended (its latest connection), and how it
/// came back if its connection was cut.
struct Ended {
    phone: Phone,
    lab: usize,
    projector: bool,
    recovery: Option<Recovery>,
    posted: usize,
}

/// What every phone task needs to know of the run.
#[derive(Clone)]
struct Clock {
    /// When the node was killed; `None` before.
    killed: watch::Receiver<Option<Instant>>,
    /// True once the phones are to stop.
    stop: watch::Receiver<bool>,
    /// Phones of the killed node give up reconnecting after this long from the kill.
    recover_within: Duration,
    /// Phones cut off so far, and those of them synced again (or given up).
    progress: Arc<watch::Sender<(usize, usize)>>,
}

/// Counts a phone cut off until dropped, then counts it done.
struct Cut(Arc<watch::Sender<(usize, usize)>>);

impl Cut {
    fn new(progress: &Arc<watch::Sender<(usize, usize)>>) -> Self {
        progress.send_modify(|(cut, _)| *cut += 1);
        Cut(Arc::clone(progress))
    }
}

impl Drop for Cut {
    fn drop(&mut self) {
        self.0.send_modify(|(_, done)| *done += 1);
    }
}

pub async fn run(args: &Failover, env: &Env) -> anyhow::Result<Report> {
    ensure_positive("the number of labs", args.labs)?;
    ensure_positive("the number of observers", args.observers)?;
    anyhow::ensure!(!args.interval.is_zero(), "--interval must be above zero");
    let cluster = env
        .cluster
        .clone()
        .context("failover needs --start-labboard with --nodes 2 --proxy nginx")?;
    {
        let cluster = cluster.lock().await;
        anyhow::ensure!(
            cluster.nginx.is_some() && cluster.others.len() == 1,
            "failover needs --nodes 2 --proxy nginx"
        );
    }
    let mut report = Report::new(
        "failover",
        format!(
            "{} lab(s) x {} observers + 1 projector, a note every {:?} per observer; node 2 \
             killed after {:?} ({})",
            args.labs,
            args.observers,
            args.interval,
            args.before,
            env.target.describe()
        ),
    );
    report.field(
        "params",
        json!({
            "labs": args.labs,
            "observers": args.observers,
            "intervalMs": args.interval.as_millis(),
            "beforeMs": args.before.as_millis(),
            "afterMs": args.after.as_millis(),
            "recoverWithinMs": args.recover_within.as_millis(),
            "retryMs": RETRY_EVERY.as_millis(),
        }),
    );
    let plan = Plan {
        labs: args.labs,
        observers: args.observers,
        notes_per_observer: 1,
        interval: args.interval,
        min_chars: args.size.min_chars,
        max_chars: args.size.max_chars,
    };
    let labs = connect_labs(&plan, env).await?;

    let (kill_tx, killed) = watch::channel(None);
    let (stop_tx, stop) = watch::channel(false);
    let progress = Arc::new(watch::channel((0, 0)).0);
    let clock = Clock {
        killed,
        stop,
        recover_within: args.recover_within,
        progress: Arc::clone(&progress),
    };
    let start = Instant::now() + START_DELAY;
    let phones_total = args.labs * args.observers;
    let mut tasks: JoinSet<anyhow::Result<Ended>> = JoinSet::new();
    for (lab_index, lab) in labs.iter().enumerate() {
        let (seen_tx, seen) = watch::channel(Seen::new());
        tasks.spawn(projector(
            lab.projector.clone(),
            lab_index,
            seen_tx,
            clock.clone(),
        ));
        for (index, observer) in lab.observers.iter().enumerate() {
            let slot = lab_index * args.observers + index;
            let offset = args.interval.mul_f64(slot as f64 / phones_total as f64);
            tasks.spawn(post(
                observer.clone(),
                lab_index,
                seen.clone(),
                clock.clone(),
                start + offset,
                args.clone(),
                u64::try_from(slot).context("slot fits in u64")?,
            ));
        }
    }
    // The phones now live in the tasks (which replace their connections on reconnecting).
    let lab_infos: Vec<crate::phone::Lab> = labs.iter().map(|lab| lab.lab.clone()).collect();
    drop(labs);

    tokio::time::sleep_until((start + args.before).into()).await;
    let meter = Meter::start(env.server)?;
    {
        let mut cluster = cluster.lock().await;
        let node = &mut cluster.others[0];
        kill_tx.send_replace(Some(Instant::now()));
        node.kill().await?;
    }
    let killed_at = kill_tx.borrow().context("the kill was recorded")?;
    // The phones of the killed node see their connections end at once (the kernel closes the
    // node's sockets, nginx then the phones'); give them a moment to count themselves, then
    // wait until every one of them is synced again or has given up (within `recover_within`).
    // The other phones just go on writing. Then `after` more of writing, and the end.
    tokio::time::sleep(CUT_GRACE).await;
    let mut watching = progress.subscribe();
    let _ = tokio::time::timeout_at(
        (killed_at + args.recover_within).into(),
        watching.wait_for(|(cut, done)| cut == done),
    )
    .await;
    tokio::time::sleep(args.after).await;
    stop_tx.send_replace(true);

    let mut ended = Vec::new();
    let mut errors = Vec::new();
    while let Some(task) = tasks.join_next().await {
        match task.context("a phone task panicked")? {
            Ok(one) => ended.push(one),
            Err(err) => errors.push(format!("{err:#}")),
        }
    }
    let usage = meter.finish()?;
    // Every lab, its phones as they ended, to check that all converged.
    let mut by_lab: Vec<(Vec<Phone>, Option<Phone>)> =
        (0..args.labs).map(|_| (Vec::new(), None)).collect();
    // Notes posted in each lab: the projector must end with all of them.
    let mut posted_in = vec![0; args.labs];
    let mut recoveries = Vec::new();
    let mut posted = 0;
    for one in ended {
        posted += one.posted;
        posted_in[one.lab] += one.posted;
        if let Some(recovery) = one.recovery {
            recoveries.push(recovery);
        }
        let lab = &mut by_lab[one.lab];
        if one.projector {
            lab.1 = Some(one.phone);
        } else {
            lab.0.push(one.phone);
        }
    }
    let labs: Vec<LabPhones> = by_lab
        .into_iter()
        .zip(lab_infos)
        .filter_map(|((observers, projector), lab)| {
            Some(LabPhones {
                lab,
                observers,
                projector: projector?,
            })
        })
        .collect();
    let complete = labs.len() == args.labs;
    // The last notes may still be on their way when the phones stop: every projector gets
    // them first (each note has its own id), then every replica must reach its heads.
    let settle_deadline = Instant::now() + env.settle;
    for (lab, expected) in labs.iter().zip(&posted_in) {
        let expected = *expected;
        let _ = tokio::time::timeout_at(
            settle_deadline.into(),
            lab.projector
                .doc
                .wait_until(move |doc| crate::phone::note_count(doc) >= expected),
        )
        .await;
    }
    let stuck = converge(&labs, settle_deadline).await;
    let cut_labs: Vec<usize> = recoveries.iter().map(|r| r.lab).collect();
    let mut projectors_behind = Vec::new();
    for (index, lab) in labs.iter().enumerate() {
        let on_projector = lab.projector.doc.with_doc(crate::phone::note_count);
        let most = lab
            .observers
            .iter()
            .map(|phone| phone.doc.with_doc(crate::phone::note_count))
            .max()
            .unwrap_or(0)
            .max(posted_in.get(index).copied().unwrap_or(0));
        if most != on_projector {
            let connection =
                match tokio::time::timeout(Duration::ZERO, lab.projector.client().closed()).await {
                    Ok(info) => format!("connection closed ({info})"),
                    Err(_) => "connection open".to_owned(),
                };
            projectors_behind.push(format!(
                "lab {} ({}): its projector has {on_projector} notes of {most}; \
                 projector {}, {connection}",
                index + 1,
                if cut_labs.contains(&index) {
                    "was on the killed node"
                } else {
                    "was not on the killed node"
                },
                if lab.projector.doc.is_synced() {
                    "acknowledged by the server"
                } else {
                    "NOT acknowledged by the server"
                },
            ));
        }
    }
    close_labs(labs).await;

    recoveries.sort_by_key(|r| r.synced);
    let affected_labs = {
        let mut labs: Vec<usize> = recoveries.iter().map(|r| r.lab).collect();
        labs.sort_unstable();
        labs.dedup();
        labs.len()
    };
    report.row(
        "phones cut off",
        format!(
            "{} phones of {affected_labs} labs were on the killed node (of {} phones, {} labs)",
            recoveries.len(),
            args.labs * (args.observers + 1),
            args.labs
        ),
    );
    let of = |pick: fn(&Recovery) -> Duration| -> Vec<Duration> {
        recoveries.iter().map(pick).collect()
    };
    let line = |samples: &[Duration]| {
        Percentiles::of(samples).map_or_else(|| "n/a".to_owned(), |p| p.line())
    };
    report.row(
        "synced again after",
        format!(
            "{} (p50/p95/p99/max from the kill)",
            line(&of(|r| r.synced))
        ),
    );
    report.row("  reconnected after", line(&of(|r| r.reconnected)));
    report.row("  acknowledged after", line(&of(|r| r.acknowledged)));
    if let Some(last) = recoveries.last() {
        report.row(
            "last phone synced",
            format!(
                "{} of lab {}, {:.1} ms after the kill",
                last.name,
                last.lab + 1,
                last.synced.as_secs_f64() * 1000.0
            ),
        );
    }
    report.row(
        "notes posted",
        format!("{posted} by {} observers", args.labs * args.observers),
    );
    let replicas = args.labs * (args.observers + 1);
    report.row(
        "replicas converged",
        format!(
            "{} / {replicas} with the projector's heads, acknowledged by the server",
            replicas - stuck.len().min(replicas)
        ),
    );
    report.row(
        "server CPU (node 1)",
        format!(
            "{:.2} s over {:.1} s from the kill",
            usage.server_cpu.unwrap_or_default().as_secs_f64(),
            usage.wall.as_secs_f64()
        ),
    );
    let ms = |d: Duration| round(d.as_secs_f64() * 1000.0);
    report.field(
        "phones",
        json!(recoveries
            .iter()
            .map(|r| json!({
                "name": r.name,
                "lab": r.lab + 1,
                "reconnectedMs": ms(r.reconnected),
                "acknowledgedMs": ms(r.acknowledged),
                "syncedMs": ms(r.synced),
            }))
            .collect::<Vec<_>>()),
    );
    report.field(
        "syncedMs",
        Percentiles::of(&of(|r| r.synced)).map_or(serde_json::Value::Null, |p| p.json()),
    );
    report.field("phonesCutOff", json!(recoveries.len()));
    report.field("labsCutOff", json!(affected_labs));
    report.field("notesPosted", json!(posted));
    report.field("replicasStuck", json!(stuck.len()));
    report.field("measuredS", json!(secs(usage.wall)));

    if recoveries.is_empty() {
        report.fail("no phone was on the killed node: nothing failed over (more labs?)");
    }
    for error in errors.iter().take(5) {
        report.fail(error.clone());
    }
    if errors.len() > 5 {
        report.fail(format!("and {} more phones failed", errors.len() - 5));
    }
    if !complete {
        report.fail("some labs lost their projector: convergence not checked for them");
    }
    for behind in &projectors_behind {
        report.fail(behind.clone());
    }
    if !stuck.is_empty() {
        report.fail(format!(
            "{} of {replicas} replicas did not end with their projector's heads, acknowledged: \
             {}",
            stuck.len(),
            Stuck::list(&stuck)
        ));
    }
    Ok(report)
}

/// One observer: a note every `interval` from `first_due` until told to stop; when its
/// connection ends after the kill, it reconnects and posts its next note at once.
async fn post(
    mut phone: Phone,
    lab: usize,
    mut seen: watch::Receiver<Seen>,
    mut clock: Clock,
    first_due: Instant,
    args: Failover,
    seed: u64,
) -> anyhow::Result<Ended> {
    let mut rng = Rng::new(seed);
    let mut due = first_due;
    let mut posted = 0;
    let mut recovery = None;
    let mut post_one = |phone: &Phone, posted: &mut usize| -> anyhow::Result<String> {
        let id = format!("{}-{}", phone.author_id, *posted);
        let text = rng.note_text(args.size.min_chars, args.size.max_chars);
        phone.post_note(&id, &text, *posted)?;
        *posted += 1;
        Ok(id)
    };
    loop {
        let cut = tokio::select! {
            () = sleep_until(due.into()) => false,
            _ = phone.client().closed() => true,
            _ = clock.stop.wait_for(|stop| *stop) => break,
        };
        if !cut {
            post_one(&phone, &mut posted)?;
            due += args.interval;
            continue;
        }
        let killed = killed_before(&phone, &clock)?;
        if recovery.is_some() {
            bail!("{}: its connection was cut a second time", phone.name);
        }
        let _cut = Cut::new(&clock.progress);
        let deadline = killed + clock.recover_within;
        phone = reconnect(&phone, deadline).await?;
        let reconnected = Instant::now();
        let id = post_one(&phone, &mut posted)?;
        tokio::time::timeout_at(deadline.into(), phone.doc.wait_synced())
            .await
            .with_context(|| format!("{}: no acknowledgement after reconnecting", phone.name))?
            .with_context(|| format!("{}: waiting for an acknowledgement", phone.name))?;
        let acknowledged = Instant::now();
        let arrived = tokio::time::timeout_at(
            deadline.into(),
            seen.wait_for(|seen| seen.contains_key(&id)),
        )
        .await
        .with_context(|| format!("{}: its note never reached the projector", phone.name))?
        .context("the projector task ended")?
        .get(&id)
        .copied()
        .context("the note was seen")?;
        recovery = Some(Recovery {
            name: phone.name.clone(),
            lab,
            reconnected: reconnected - killed,
            acknowledged: acknowledged - killed,
            synced: arrived.max(acknowledged) - killed,
        });
        due = Instant::now() + args.interval;
    }
    Ok(Ended {
        phone,
        lab,
        projector: false,
        recovery,
        posted,
    })
}

/// A lab's projector: records when each note reaches it; when its connection ends after the
/// kill, it reconnects.
async fn projector(
    mut phone: Phone,
    lab: usize,
    seen: watch::Sender<Seen>,
    mut clock: Clock,
) -> anyhow::Result<Ended> {
    let mut recovery = None;
    let mut changes = phone.doc.subscribe();
    let mut known = std::collections::HashSet::new();
    loop {
        changes.borrow_and_update();
        let fresh = phone
            .doc
            .with_doc(|doc| crate::phone::new_note_ids(doc, &known));
        if !fresh.is_empty() {
            let now = Instant::now();
            seen.send_modify(|seen| {
                for id in &fresh {
                    seen.insert(id.clone(), now);
                }
            });
            known.extend(fresh);
        }
        let cut = tokio::select! {
            _ = changes.changed() => false,
            _ = phone.client().closed() => true,
            _ = clock.stop.wait_for(|stop| *stop) => break,
        };
        if !cut {
            continue;
        }
        let killed = killed_before(&phone, &clock)?;
        if recovery.is_some() {
            bail!("{}: its connection was cut a second time", phone.name);
        }
        let _cut = Cut::new(&clock.progress);
        let deadline = killed + clock.recover_within;
        phone = reconnect(&phone, deadline).await?;
        changes = phone.doc.subscribe();
        let reconnected = Instant::now();
        tokio::time::timeout_at(deadline.into(), phone.doc.wait_synced())
            .await
            .with_context(|| format!("{}: no acknowledgement after reconnecting", phone.name))?
            .with_context(|| format!("{}: waiting for an acknowledgement", phone.name))?;
        let acknowledged = Instant::now();
        recovery = Some(Recovery {
            name: phone.name.clone(),
            lab,
            reconnected: reconnected - killed,
            acknowledged: acknowledged - killed,
            synced: acknowledged - killed,
        });
    }
    Ok(Ended {
        phone,
        lab,
        projector: true,
        recovery,
        posted: 0,
    })
}

/// When the node was killed, for a phone whose connection just ended; an error if it ended
/// before any kill.
fn killed_before(phone: &Phone, clock: &Clock) -> anyhow::Result<Instant> {
    match *clock.killed.borrow() {
        Some(killed) => Ok(killed),
        None => bail!(
            "{}: its connection ended before any node was killed",
            phone.name
        ),
    }
}

/// Connects again to the phone's URL (through nginx) until it works or `deadline` passes, and
/// attaches the phone's replica there: what it wrote meanwhile goes up, what it missed comes
/// down.
async fn reconnect(phone: &Phone, deadline: Instant) -> anyhow::Result<Phone> {
    loop {
        let peer_id = PeerId::new(format!(
            "bench-{}-{}",
            phone.name.replace(' ', "-"),
            unique()
        ));
        match Client::connect_with_timeout(&phone.url, peer_id, CONNECT_TIMEOUT).await {
            Ok(client) => {
                let doc = client.create_with_id(phone.doc.id(), phone.doc.fork());
                return Ok(Phone {
                    doc,
                    ..phone.clone()
                });
            }
            Err(err) if Instant::now() + RETRY_EVERY >= deadline => {
                return Err(err).with_context(|| format!("{}: could not reconnect", phone.name));
            }
            Err(_) => tokio::time::sleep(RETRY_EVERY).await,
        }
    }
}
