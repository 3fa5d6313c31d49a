//! `labboard-bench`: a load generator for labboard and any automerge-repo sync server.
//!
//! Each simulated phone is its own WebSocket and its own Automerge replica (a
//! `labboard_protocol::client::Client`), as real phones are. The flow of a run:
//!
//! 1. The target: a labboard given by `--labboard` (labs are created through its API, every
//!    phone joins by code with its own name and gets its own token), one the bench starts itself
//!    (`--start-labboard`, on 127.0.0.1:0 with a temporary data directory), or any sync server
//!    (`--sync-url`: the bench uploads the boards itself with `Client::create`).
//! 2. Set-up: labs and phones are created and connected, each phone holding the board.
//! 3. The measured phase of one scenario (`steady`, `burst`, `labs N`, `coldload`, `idle N`,
//!    `boards N`, `photos`), metered from /proc: the server's CPU time and RSS, and the
//!    generator's own CPU time.
//! 4. Checks: every note arrived, every replica ended with the same heads, acknowledged by the
//!    server. A run that lost a note, diverged or ran out of `--timeout` says so loudly and
//!    exits non-zero.
//! 5. A table, and with `--json` one JSON object on stdout.

mod boards;
mod cli;
mod coldload;
mod compare;
mod failover;
mod http;
mod idle;
mod lab_run;
mod nginx;
mod phone;
mod photos;
mod proc_stats;
mod report;
mod server;
mod text;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;

use crate::cli::{Cli, Scenario};
use crate::phone::Target;
use crate::proc_stats::{Process, Watch, Watched};
use crate::report::Report;
use crate::server::StartedServer;

/// Exit code of a run whose checks failed (lost notes, divergence).
const EXIT_CHECKS_FAILED: u8 = 1;
/// Exit code of a run that could not be carried out (bad arguments, unreachable server).
const EXIT_ERROR: u8 = 2;
/// Exit code of a run stopped by `--timeout`.
const EXIT_TIMED_OUT: u8 = 3;

/// What every scenario gets.
pub struct Env {
    pub target: Arc<Target>,
    /// The server process, when its pid is known.
    pub server: Option<Process>,
    pub settle: Duration,
    /// The server the bench started (`--start-labboard`), for scenarios that restart it.
    pub started: Option<Arc<tokio::sync::Mutex<StartedServer>>>,
    /// What is measured besides the server: the other nodes, the database, the proxy.
    pub also: Vec<Watched>,
    /// The other nodes and the proxy the bench started (`--nodes`, `--proxy`).
    pub cluster: Option<Arc<tokio::sync::Mutex<Cluster>>>,
}

/// The nodes after the first (which is `Env::started`) and the proxy, killed when dropped.
pub struct Cluster {
    /// Nodes 2, 3, ...
    pub others: Vec<StartedServer>,
    pub nginx: Option<nginx::StartedNginx>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Scenario::Compare(args) = &cli.scenario {
        return compare(&cli, args).await;
    }
    let timeout = cli.timeout;
    let mut started = None;
    let outcome = tokio::time::timeout(timeout, run(&cli, &mut started)).await;
    if let Some(server) = started.take() {
        // The run is over (or was dropped by the timeout), and its handle with it; were one
        // left somewhere, the server would still be killed when that is dropped.
        if let Ok(server) = Arc::try_unwrap(server).map(tokio::sync::Mutex::into_inner) {
            if let Err(err) = server.stop().await {
                eprintln!("labboard-bench: stopping the server: {err:#}");
            }
        }
    }
    match outcome {
        Err(_) => {
            eprintln!(
                "\n!!! labboard-bench: TIMED OUT after {timeout:?} (--timeout): the run did not \
                 finish; no figures. A server that stalls under this load looks like this.\n"
            );
            ExitCode::from(EXIT_TIMED_OUT)
        }
        Ok(Err(err)) => {
            eprintln!("labboard-bench: error: {err:#}");
            ExitCode::from(EXIT_ERROR)
        }
        Ok(Ok((report, target))) => {
            if cli.json {
                eprint!("{}", report.table());
                println!("{}", report.json(target.kind(), &target.url()));
            } else {
                print!("{}", report.table());
            }
            if report.ok() {
                ExitCode::SUCCESS
            } else {
                eprintln!(
                    "\n!!! labboard-bench: {} FAILED:",
                    cli_scenario_name(&cli.scenario)
                );
                for failure in report.failures() {
                    eprintln!("!!!   {failure}");
                }
                eprintln!();
                ExitCode::from(EXIT_CHECKS_FAILED)
            }
        }
    }
}

/// `compare`: no target of its own; each run is a child process with its own `--timeout`.
async fn compare(cli: &Cli, args: &cli::Compare) -> ExitCode {
    if cli.labboard.is_some() || cli.sync_url.is_some() || cli.start_labboard.is_some() {
        eprintln!("labboard-bench: compare starts both servers itself; it takes no target");
        return ExitCode::from(EXIT_ERROR);
    }
    let unknown: Vec<&String> = args
        .scenarios
        .iter()
        .filter(|s| !["steady", "burst", "coldload", "idle", "labs"].contains(&s.trim()))
        .collect();
    if !unknown.is_empty() {
        eprintln!("labboard-bench: unknown scenarios for compare: {unknown:?}");
        return ExitCode::from(EXIT_ERROR);
    }
    match compare::run(args, cli.settle, cli.json).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(EXIT_CHECKS_FAILED),
        Err(err) => {
            eprintln!("labboard-bench: error: {err:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// Sets up the target (starting the server if asked, into `started` so the caller stops it
/// whatever happens) and runs the scenario.
async fn run(
    cli: &Cli,
    started: &mut Option<Arc<tokio::sync::Mutex<StartedServer>>>,
) -> anyhow::Result<(Report, Arc<Target>)> {
    let mut also = Vec::new();
    let mut cluster = None;
    let (target, pid) = if let Some(bin) = &cli.start_labboard {
        let (target, pid, started_cluster) = start_nodes(cli, bin, started, &mut also).await?;
        cluster = started_cluster;
        (target, Some(pid))
    } else if let Some(base) = &cli.labboard {
        let target = Target::Labboard {
            authority: http::authority(base)?,
            organizer_token: cli
                .organizer_token
                .clone()
                .context("--labboard needs --organizer-token")?,
            sync: Vec::new(),
            setup: None,
        };
        (target, cli.server_pid)
    } else {
        let url = cli
            .sync_url
            .clone()
            .context("one of --labboard, --sync-url or --start-labboard is required")?;
        (Target::SyncUrl { url }, cli.server_pid)
    };
    let server = pid.map(|pid| Process(Some(pid)));
    if let Some(server) = server {
        server
            .cpu_time()
            .with_context(|| format!("reading /proc of the server (pid {pid:?})"))?;
    }
    let env = Env {
        target: Arc::new(target),
        server,
        settle: cli.settle,
        started: started.clone(),
        also,
        cluster,
    };
    let load_before = proc_stats::load_average();
    let mut report = match &cli.scenario {
        Scenario::Steady(args) => {
            let plan = lab_run::Plan {
                labs: 1,
                observers: args.observers,
                notes_per_observer: args.notes,
                interval: args.interval,
                min_chars: args.size.min_chars,
                max_chars: args.size.max_chars,
            };
            lab_run::run("steady", &plan, &env).await?
        }
        Scenario::Burst(args) => {
            let plan = lab_run::Plan {
                labs: 1,
                observers: args.observers,
                notes_per_observer: args.notes,
                interval: Duration::ZERO,
                min_chars: args.size.min_chars,
                max_chars: args.size.max_chars,
            };
            lab_run::run("burst", &plan, &env).await?
        }
        Scenario::Labs(args) => {
            let notes = if args.interval.is_zero() {
                1
            } else {
                usize::try_from(args.duration.as_nanos() / args.interval.as_nanos())
                    .unwrap_or(usize::MAX)
            };
            let plan = lab_run::Plan {
                labs: args.count,
                observers: args.observers,
                notes_per_observer: notes.max(1),
                interval: args.interval,
                min_chars: args.size.min_chars,
                max_chars: args.size.max_chars,
            };
            lab_run::run("labs", &plan, &env).await?
        }
        Scenario::Coldload(args) => coldload::run(args, &env).await?,
        Scenario::Idle(args) => idle::run(args, &env).await?,
        Scenario::Boards(args) => boards::run(args, &env).await?,
        Scenario::Photos(args) => photos::run(args, &env).await?,
        Scenario::Failover(args) => failover::run(args, &env).await?,
        Scenario::Compare(_) => anyhow::bail!("compare is not a scenario of one target"),
    };
    let load_after = proc_stats::load_average();
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZeroUsize::get);
    // Other work on the machine shows as posting lag and latency tails: say how busy it was.
    report.row(
        "machine",
        format!(
            "{cores} cores; 1-minute load average {} before, {} after",
            load_before.map_or_else(|| "n/a".into(), |l| format!("{l:.2}")),
            load_after.map_or_else(|| "n/a".into(), |l| format!("{l:.2}")),
        ),
    );
    report.field(
        "machine",
        serde_json::json!({
            "cores": cores,
            "loadAverageBefore": load_before,
            "loadAverageAfter": load_after,
        }),
    );
    Ok((report, env.target))
}

fn cli_scenario_name(scenario: &Scenario) -> &'static str {
    match scenario {
        Scenario::Steady(_) => "steady",
        Scenario::Burst(_) => "burst",
        Scenario::Labs(_) => "labs",
        Scenario::Coldload(_) => "coldload",
        Scenario::Idle(_) => "idle",
        Scenario::Boards(_) => "boards",
        Scenario::Photos(_) => "photos",
        Scenario::Failover(_) => "failover",
        Scenario::Compare(_) => "compare",
    }
}

/// Starts the node (`--start-labboard`), or the nodes on one database and the proxy in front
/// (`--nodes`, `--proxy`, `--spread`): the first node goes into `started`, what is measured
/// besides it into `also`. Returns the target, the first node's pid and the rest.
async fn start_nodes(
    cli: &Cli,
    bin: &std::path::Path,
    started: &mut Option<Arc<tokio::sync::Mutex<StartedServer>>>,
    also: &mut Vec<Watched>,
) -> anyhow::Result<(Target, u32, Option<Arc<tokio::sync::Mutex<Cluster>>>)> {
    let database = cli.database_url.as_deref();
    anyhow::ensure!(cli.nodes >= 1, "--nodes must be at least 1");
    if cli.nodes > 1 {
        anyhow::ensure!(
            database.is_some(),
            "--nodes {} needs --database-url: nodes share one PostgreSQL database",
            cli.nodes
        );
        anyhow::ensure!(
            cli.proxy.is_some() || cli.spread,
            "--nodes {} needs --proxy nginx (phones routed by lab) or --spread (phones to every \
             node in turn)",
            cli.nodes
        );
    }
    if let Some(data_dir) = &cli.postgres_data_dir {
        let postmaster = proc_stats::postmaster_pid(data_dir)?;
        let watched = Watched {
            name: "PostgreSQL".into(),
            what: Watch::Tree(postmaster),
        };
        watched.cpu_time()?;
        also.push(watched);
    }
    let first = StartedServer::start(bin, &cli.server_log, database, None).await?;
    let organizer_token = first.organizer_token.clone();
    let first_addr = first.addr;
    let pid = first.pid;
    *started = Some(Arc::new(tokio::sync::Mutex::new(first)));
    let mut others = Vec::new();
    for index in 1..cli.nodes {
        let node =
            StartedServer::start(bin, &cli.server_log, database, Some(&organizer_token)).await?;
        also.push(Watched {
            name: format!("node {}", index + 1),
            what: Watch::Process(Process(Some(node.pid))),
        });
        others.push(node);
    }
    let addrs: Vec<std::net::SocketAddr> = std::iter::once(first_addr)
        .chain(others.iter().map(|node| node.addr))
        .collect();
    let store = if database.is_some() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    let nodes = if cli.nodes == 1 {
        format!("1 node on {store}")
    } else {
        format!("{} nodes on {store}", cli.nodes)
    };
    let mut nginx = None;
    let (authority, sync, setup) = if cli.proxy.as_deref() == Some("nginx") {
        let bin = match &cli.nginx_bin {
            Some(bin) => bin.clone(),
            None => nginx::find_bin()?,
        };
        let proxy = nginx::StartedNginx::start(&bin, &cli.nginx_config, &addrs).await?;
        also.push(Watched {
            name: "nginx".into(),
            what: Watch::Process(Process(Some(proxy.pid))),
        });
        let authority = proxy.addr.to_string();
        nginx = Some(proxy);
        (
            authority,
            Vec::new(),
            format!("{nodes} behind nginx, each lab's phones on one node"),
        )
    } else if cli.spread {
        (
            first_addr.to_string(),
            addrs.iter().map(ToString::to_string).collect(),
            format!("{nodes}, each lab's phones spread over them in turn"),
        )
    } else {
        (first_addr.to_string(), Vec::new(), nodes)
    };
    let target = Target::Labboard {
        authority,
        organizer_token,
        sync,
        setup: Some(setup),
    };
    let cluster = (!others.is_empty() || nginx.is_some())
        .then(|| Arc::new(tokio::sync::Mutex::new(Cluster { others, nginx })));
    Ok((target, pid, cluster))
}
