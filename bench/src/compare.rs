//! `labboard-bench compare`: the same workloads against labboard and the reference JavaScript
//! sync server, alternately, in one run, and one table with both servers' figures and ratios.
//!
//! Every run is a child `labboard-bench --json …` against a freshly started server, so no run
//! inherits another's memory, connections or warm caches, and a child that stalls is bounded by
//! its own `--timeout`. Rounds alternate which server goes first; the table shows medians over
//! the rounds. `labs N` is scaled up step by step, for each server until a run fails its checks
//! or its p99 passes `--labs-stop-ms`; the table reports the largest N each server held under
//! the latency limit (`--labs-limit-ms`, 100 ms) and under the stop limit.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use serde_json::{json, Value};
use tokio::process::Command;

use crate::cli::Compare;
use crate::proc_stats;
use crate::server::StartedReference;

/// Extra time a child run gets on top of what its workload takes: set-up of thousands of
/// phones, and start-up of the server.
const CHILD_SLACK: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Server {
    Labboard,
    Reference,
}

impl Server {
    fn name(self) -> &'static str {
        match self {
            Server::Labboard => "labboard",
            Server::Reference => "reference",
        }
    }
}

/// One child run: its report, or why there is none.
struct Run {
    scenario: String,
    server: Server,
    report: Option<Value>,
    /// `ok`, `FAILED: …`, `TIMED OUT`, `ERROR: …`.
    outcome: String,
}

impl Run {
    fn ok(&self) -> bool {
        self.outcome == "ok"
    }

    fn number(&self, path: &[&str]) -> Option<f64> {
        let mut value = self.report.as_ref()?;
        for key in path {
            value = value.get(key)?;
        }
        value.as_f64()
    }
}

struct Comparer<'a> {
    args: &'a Compare,
    settle: Duration,
    runs: Vec<Run>,
}

pub async fn run(args: &Compare, settle: Duration, json_out: bool) -> anyhow::Result<bool> {
    let exe = std::env::current_exe().context("finding the labboard-bench binary")?;
    anyhow::ensure!(
        args.labboard_bin.is_file(),
        "{} is missing: build it with `cargo build --release -p labboard`",
        args.labboard_bin.display()
    );
    let reference_version = reference_version(&args.reference_dir)?;
    let mut comparer = Comparer {
        args,
        settle,
        runs: Vec::new(),
    };
    let load_before = proc_stats::load_average();
    let scenarios = args.scenario_list();
    for round in 0..args.rounds {
        // Alternate who goes first, so neither always meets a machine the other just warmed.
        let order = if round % 2 == 0 {
            [Server::Labboard, Server::Reference]
        } else {
            [Server::Reference, Server::Labboard]
        };
        for scenario in &scenarios {
            let Some(scenario_args) = comparer.fixed_scenario(scenario) else {
                continue;
            };
            for server in order {
                let when = format!("round {}/{}", round + 1, args.rounds);
                comparer
                    .one(&exe, scenario, server, &scenario_args, &when)
                    .await?;
            }
        }
    }
    let mut labs = LabsScale::default();
    if scenarios.iter().any(|s| s == "labs") {
        comparer.scale_labs(&exe, &mut labs).await?;
    }
    let load_after = proc_stats::load_average();

    let table = comparer.table(&labs, &reference_version, load_before, load_after);
    let all_ok = comparer.runs.iter().all(Run::ok);
    if json_out {
        eprint!("{table}");
        let runs: Vec<Value> = comparer
            .runs
            .iter()
            .map(|run| {
                json!({
                    "scenario": run.scenario,
                    "server": run.server.name(),
                    "outcome": run.outcome,
                    "report": run.report,
                })
            })
            .collect();
        println!(
            "{}",
            json!({
                "referenceServer": format!("@automerge/automerge-repo-sync-server {reference_version}"),
                "rounds": args.rounds,
                "machine": machine_json(load_before, load_after),
                "labsLimitMs": args.labs_limit_ms,
                "labsStopMs": args.labs_stop_ms,
                "labsHeld": {
                    "labboard": labs.held(Server::Labboard, args.labs_limit_ms),
                    "reference": labs.held(Server::Reference, args.labs_limit_ms),
                },
                "labsHeldBeforeStop": {
                    "labboard": labs.held(Server::Labboard, args.labs_stop_ms),
                    "reference": labs.held(Server::Reference, args.labs_stop_ms),
                },
                "runs": runs,
            })
        );
    } else {
        print!("{table}");
    }
    Ok(all_ok)
}

impl Comparer<'_> {
    /// The arguments of a scenario that runs once per round; `None` for `labs`, which scales.
    fn fixed_scenario(&self, scenario: &str) -> Option<Vec<String>> {
        match scenario {
            "steady" | "burst" | "coldload" => Some(vec![scenario.to_owned()]),
            "idle" => Some(vec!["idle".to_owned(), self.args.idle_phones.to_string()]),
            _ => None,
        }
    }

    /// Runs one scenario against one freshly started server, as a child process.
    async fn one(
        &mut self,
        exe: &Path,
        scenario: &str,
        server: Server,
        scenario_args: &[String],
        when: &str,
    ) -> anyhow::Result<&Run> {
        eprintln!(
            "-- {when}: {} against {} …",
            scenario_args.join(" "),
            server.name()
        );
        let timeout = self.child_timeout(scenario);
        let mut command = Command::new(exe);
        command
            .arg("--json")
            .arg("--timeout")
            .arg(format!("{}s", timeout.as_secs()))
            .arg("--settle")
            .arg(format!("{}ms", self.settle.as_millis()));
        let mut reference = None;
        match server {
            Server::Labboard => {
                command.arg("--start-labboard").arg(&self.args.labboard_bin);
            }
            Server::Reference => {
                let started =
                    StartedReference::start(&self.args.node, &self.args.reference_dir).await?;
                command
                    .arg("--sync-url")
                    .arg(format!("ws://{}", started.addr))
                    .arg("--server-pid")
                    .arg(started.pid.to_string());
                reference = Some(started);
            }
        }
        command.args(scenario_args);
        let output = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .output()
            .await
            .context("running labboard-bench")?;
        if let Some(started) = reference {
            if let Err(err) = started.stop().await {
                eprintln!("   the reference server: {err:#}");
            }
        }
        let report: Option<Value> = serde_json::from_slice(&output.stdout).ok();
        let stderr = String::from_utf8_lossy(&output.stderr);
        let outcome = match output.status.code() {
            Some(0) => "ok".to_owned(),
            Some(1) => {
                let why = report
                    .as_ref()
                    .and_then(|r| r.get("failures"))
                    .and_then(Value::as_array)
                    .map(|f| {
                        f.iter()
                            .filter_map(Value::as_str)
                            .collect::<Vec<_>>()
                            .join("; ")
                    })
                    .unwrap_or_default();
                format!("FAILED: {why}")
            }
            Some(3) => "TIMED OUT".to_owned(),
            _ => format!(
                "ERROR: {}",
                stderr.lines().last().unwrap_or("no output").trim()
            ),
        };
        let run = Run {
            scenario: scenario.to_owned(),
            server,
            report,
            outcome,
        };
        eprintln!("   {}", summary_line(&run));
        if !run.ok() && !stderr.is_empty() {
            for line in stderr
                .lines()
                .rev()
                .take(12)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
            {
                eprintln!("   | {line}");
            }
        }
        self.runs.push(run);
        Ok(self.runs.last().expect("pushed above"))
    }

    fn child_timeout(&self, scenario: &str) -> Duration {
        let workload = match scenario {
            "labs" => self.args.labs_duration,
            "idle" => Duration::from_secs(20),
            _ => Duration::from_secs(30),
        };
        workload + self.settle + CHILD_SLACK
    }

    /// `labs N` for growing N, alternating servers at each step. Each server goes on until a
    /// run fails its checks or its p99 passes `--labs-stop-ms`, so the table shows both where
    /// it passes the latency limit and where it falls apart.
    async fn scale_labs(&mut self, exe: &Path, labs: &mut LabsScale) -> anyhow::Result<()> {
        let stop_ms = self.args.labs_stop_ms.max(self.args.labs_limit_ms);
        for (step, &count) in self.args.labs_steps.iter().enumerate() {
            let order = if step % 2 == 0 {
                [Server::Labboard, Server::Reference]
            } else {
                [Server::Reference, Server::Labboard]
            };
            for server in order {
                if labs.stopped(server, stop_ms) {
                    continue;
                }
                let scenario_args = vec![
                    "labs".to_owned(),
                    count.to_string(),
                    "--interval".to_owned(),
                    format!("{}ms", self.args.labs_interval.as_millis()),
                    "--duration".to_owned(),
                    format!("{}ms", self.args.labs_duration.as_millis()),
                ];
                let when = format!("labs step {}/{}", step + 1, self.args.labs_steps.len());
                let run = self.one(exe, "labs", server, &scenario_args, &when).await?;
                labs.steps.push(LabsStep {
                    count,
                    server,
                    p50: run.number(&["latencyMs", "p50"]),
                    p99: run.number(&["latencyMs", "p99"]),
                    server_cpu_percent: run.number(&["server", "cpuPercentOfOneCore"]),
                    generator_cpu_percent: run.number(&["generator", "cpuPercentOfOneCore"]),
                    peak_rss_kib: run.number(&["server", "peakRssKiB"]),
                    ok: run.ok(),
                    outcome: run.outcome.clone(),
                });
            }
            if labs.stopped(Server::Labboard, stop_ms) && labs.stopped(Server::Reference, stop_ms) {
                break;
            }
        }
        Ok(())
    }

    fn runs_of<'a>(
        &'a self,
        scenario: &'a str,
        server: Server,
    ) -> impl Iterator<Item = &'a Run> + 'a {
        self.runs
            .iter()
            .filter(move |run| run.scenario == scenario && run.server == server)
    }

    /// The median over the rounds of one figure, and how many rounds failed.
    fn median(&self, scenario: &str, server: Server, path: &[&str]) -> Cell {
        let runs: Vec<&Run> = self.runs_of(scenario, server).collect();
        let failed = runs.iter().filter(|run| !run.ok()).count();
        let mut values: Vec<f64> = runs.iter().filter_map(|run| run.number(path)).collect();
        values.sort_by(f64::total_cmp);
        Cell {
            value: values.get(values.len() / 2).copied(),
            failed,
            rounds: runs.len(),
        }
    }

    fn table(
        &self,
        labs: &LabsScale,
        reference_version: &str,
        load_before: Option<f64>,
        load_after: Option<f64>,
    ) -> String {
        let mut rows: Vec<[String; 5]> = Vec::new();
        let figures: &[(&str, &str, &[&str], f64)] = &[
            ("steady", "latency p50 (ms)", &["latencyMs", "p50"], 1.0),
            ("steady", "latency p99 (ms)", &["latencyMs", "p99"], 1.0),
            ("steady", "latency max (ms)", &["latencyMs", "max"], 1.0),
            ("steady", "server CPU (s)", &["server", "cpuS"], 1.0),
            (
                "steady",
                "server peak RSS (MiB)",
                &["server", "peakRssKiB"],
                1024.0,
            ),
            ("burst", "latency p50 (ms)", &["latencyMs", "p50"], 1.0),
            ("burst", "latency p99 (ms)", &["latencyMs", "p99"], 1.0),
            (
                "burst",
                "throughput (notes/s)",
                &["throughputNotesPerS"],
                1.0,
            ),
            ("burst", "server CPU (s)", &["server", "cpuS"], 1.0),
            (
                "burst",
                "server peak RSS (MiB)",
                &["server", "peakRssKiB"],
                1024.0,
            ),
            ("coldload", "load p50 (ms)", &["loadMs", "p50"], 1.0),
            ("coldload", "load max (ms)", &["loadMs", "max"], 1.0),
            (
                "coldload",
                "server peak RSS (MiB)",
                &["server", "peakRssKiB"],
                1024.0,
            ),
            (
                "idle",
                "RSS per connection (KiB)",
                &["rssPerConnectionKiB"],
                1.0,
            ),
            (
                "idle",
                "server CPU while idle (s)",
                &["server", "cpuS"],
                1.0,
            ),
        ];
        for &(scenario, figure, path, divisor) in figures {
            if self.runs_of(scenario, Server::Labboard).next().is_none() {
                continue;
            }
            let ours = self
                .median(scenario, Server::Labboard, path)
                .scaled(divisor);
            let theirs = self
                .median(scenario, Server::Reference, path)
                .scaled(divisor);
            let ratio = match (ours.value, theirs.value) {
                (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
                _ => "n/a".to_owned(),
            };
            let name = if scenario == "idle" {
                format!("idle {}", self.args.idle_phones)
            } else {
                scenario.to_owned()
            };
            rows.push([name, figure.to_owned(), ours.text(), theirs.text(), ratio]);
        }
        if !labs.steps.is_empty() {
            for limit in [self.args.labs_limit_ms, self.args.labs_stop_ms] {
                let ours = labs.held(Server::Labboard, limit);
                let theirs = labs.held(Server::Reference, limit);
                let ratio = match (ours, theirs) {
                    (Some(a), Some(b)) if b > 0 => format!("{:.1}", a as f64 / b as f64),
                    _ => "n/a".to_owned(),
                };
                rows.push([
                    "labs N".to_owned(),
                    format!("most labs at p99 < {limit} ms"),
                    labs.held_text(Server::Labboard, limit, &self.args.labs_steps),
                    labs.held_text(Server::Reference, limit, &self.args.labs_steps),
                    ratio,
                ]);
            }
        }
        let mut out = String::new();
        let _ = writeln!(
            out,
            "\n== labboard vs the reference sync server (@automerge/automerge-repo-sync-server \
             {reference_version}): {} round(s), medians ==",
            self.args.rounds
        );
        let _ = writeln!(out, "{}", machine_line(load_before, load_after));
        let header = [
            "scenario".to_owned(),
            "figure".to_owned(),
            "labboard".to_owned(),
            "reference".to_owned(),
            "labboard / reference".to_owned(),
        ];
        write_table(&mut out, &header, &rows);

        if !labs.steps.is_empty() {
            let _ = writeln!(
                out,
                "\nlabs N ({} observers + 1 projector each, one note per observer every {:?} for \
                 {:?}), step by step:",
                11, self.args.labs_interval, self.args.labs_duration
            );
            let mut counts: Vec<usize> = labs.steps.iter().map(|s| s.count).collect();
            counts.dedup();
            let mut rows: Vec<[String; 5]> = Vec::new();
            for &count in &counts {
                for server in [Server::Labboard, Server::Reference] {
                    if let Some(step) = labs
                        .steps
                        .iter()
                        .find(|s| s.count == count && s.server == server)
                    {
                        rows.push([
                            count.to_string(),
                            (count * 12).to_string(),
                            server.name().to_owned(),
                            step.latency_text(),
                            step.usage_text(),
                        ]);
                    }
                }
            }
            let header = [
                "labs".to_owned(),
                "sockets".to_owned(),
                "server".to_owned(),
                "latency p50 / p99 (ms)".to_owned(),
                "server CPU, peak RSS; generator CPU".to_owned(),
            ];
            write_table(&mut out, &header, &rows);
        }

        let failed: Vec<&Run> = self.runs.iter().filter(|run| !run.ok()).collect();
        if !failed.is_empty() {
            let _ = writeln!(out, "\nruns that did not pass their checks:");
            for run in failed {
                let _ = writeln!(
                    out,
                    "  {} on {}: {}",
                    run.scenario,
                    run.server.name(),
                    run.outcome
                );
            }
        }
        out
    }
}

/// A median over rounds, with how many of them failed their checks.
struct Cell {
    value: Option<f64>,
    failed: usize,
    rounds: usize,
}

impl Cell {
    fn scaled(self, divisor: f64) -> Self {
        Self {
            value: self.value.map(|v| v / divisor),
            ..self
        }
    }

    fn text(&self) -> String {
        let value = match self.value {
            None => "n/a".to_owned(),
            Some(v) if v >= 100.0 => format!("{v:.0}"),
            Some(v) if v >= 10.0 => format!("{v:.1}"),
            Some(v) => format!("{v:.2}"),
        };
        if self.failed > 0 {
            format!("{value} ({} of {} FAILED)", self.failed, self.rounds)
        } else {
            value
        }
    }
}

#[derive(Default)]
struct LabsScale {
    steps: Vec<LabsStep>,
}

struct LabsStep {
    count: usize,
    server: Server,
    p50: Option<f64>,
    p99: Option<f64>,
    server_cpu_percent: Option<f64>,
    generator_cpu_percent: Option<f64>,
    peak_rss_kib: Option<f64>,
    ok: bool,
    outcome: String,
}

impl LabsStep {
    fn held(&self, limit_ms: f64) -> bool {
        self.ok && self.p99.is_some_and(|p99| p99 < limit_ms)
    }

    fn latency_text(&self) -> String {
        let ms = |v: Option<f64>| v.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.1}"));
        let figures = format!("{} / {}", ms(self.p50), ms(self.p99));
        if self.ok {
            figures
        } else {
            // The first failure, in short: the full text is under the tables.
            let short: String = self.outcome.split(';').next().unwrap_or_default().into();
            let short = match short.char_indices().nth(72) {
                Some((cut, _)) => format!("{}…", &short[..cut]),
                None => short,
            };
            format!("{figures} ({short})")
        }
    }

    fn usage_text(&self) -> String {
        let percent = |v: Option<f64>| v.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.0}%"));
        let rss = self.peak_rss_kib.map_or_else(
            || "n/a".to_owned(),
            |kib| format!("{:.0} MiB", kib / 1024.0),
        );
        format!(
            "{}, {rss}; {}",
            percent(self.server_cpu_percent),
            percent(self.generator_cpu_percent)
        )
    }
}

impl LabsScale {
    /// Whether a server is done stepping: a run failed or passed `stop_ms`.
    fn stopped(&self, server: Server, stop_ms: f64) -> bool {
        self.steps
            .iter()
            .any(|s| s.server == server && !s.held(stop_ms))
    }

    /// The largest N whose run passed its checks at p99 under `limit_ms`, below the first that
    /// did not.
    fn held(&self, server: Server, limit_ms: f64) -> Option<usize> {
        self.steps
            .iter()
            .filter(|s| s.server == server)
            .take_while(|s| s.held(limit_ms))
            .map(|s| s.count)
            .max()
    }

    fn held_text(&self, server: Server, limit_ms: f64, steps: &[usize]) -> String {
        let held = self.held(server, limit_ms);
        let failed_at = self
            .steps
            .iter()
            .find(|s| s.server == server && !s.held(limit_ms))
            .map(|s| s.count);
        match (held, failed_at) {
            (Some(n), Some(f)) => format!("{n} (not {f})"),
            (Some(n), None) if Some(&n) == steps.last() => format!("{n} (largest step tried)"),
            (Some(n), None) => n.to_string(),
            (None, Some(f)) => format!("none (not {f})"),
            (None, None) => "n/a".to_owned(),
        }
    }
}

fn summary_line(run: &Run) -> String {
    let figure = match run.scenario.as_str() {
        "coldload" => run
            .number(&["loadMs", "p50"])
            .map(|v| format!("load p50 {v:.1} ms")),
        "idle" => run
            .number(&["rssPerConnectionKiB"])
            .map(|v| format!("{v:.1} KiB per connection")),
        _ => match (
            run.number(&["latencyMs", "p50"]),
            run.number(&["latencyMs", "p99"]),
        ) {
            (Some(p50), Some(p99)) => Some(format!("p50 {p50:.1} ms, p99 {p99:.1} ms")),
            _ => None,
        },
    };
    format!(
        "{}: {}",
        figure.unwrap_or_else(|| "no figures".to_owned()),
        run.outcome
    )
}

fn write_table(out: &mut String, header: &[String; 5], rows: &[[String; 5]]) {
    let columns = if header[4].is_empty() { 4 } else { 5 };
    let mut widths = [0usize; 5];
    for row in std::iter::once(header).chain(rows) {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |out: &mut String, row: &[String; 5]| {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .take(columns)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    };
    line(out, header);
    let rule: Vec<String> = widths
        .iter()
        .take(columns)
        .map(|w| "-".repeat(*w))
        .collect();
    let _ = writeln!(out, "|-{}-|", rule.join("-|-"));
    for row in rows {
        line(out, row);
    }
}

fn machine_line(load_before: Option<f64>, load_after: Option<f64>) -> String {
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZeroUsize::get);
    let memory = proc_stats::memory_total_kib().map_or_else(
        || "n/a".to_owned(),
        |kib| format!("{:.1} GiB", kib as f64 / 1048576.0),
    );
    let load = |l: Option<f64>| l.map_or_else(|| "n/a".to_owned(), |l| format!("{l:.2}"));
    format!(
        "machine: {cores} cores, {memory} of memory; 1-minute load average {} before, {} after",
        load(load_before),
        load(load_after)
    )
}

fn machine_json(load_before: Option<f64>, load_after: Option<f64>) -> Value {
    json!({
        "cores": std::thread::available_parallelism().map_or(0, std::num::NonZeroUsize::get),
        "memoryKiB": proc_stats::memory_total_kib(),
        "loadAverageBefore": load_before,
        "loadAverageAfter": load_after,
    })
}

/// The installed reference server's version, which also checks that it is installed.
fn reference_version(dir: &Path) -> anyhow::Result<String> {
    let manifest: PathBuf =
        dir.join("node_modules/@automerge/automerge-repo-sync-server/package.json");
    let text = std::fs::read_to_string(&manifest).with_context(|| {
        format!(
            "reading {}: install the reference server first with `npm ci --prefix {}`",
            manifest.display(),
            dir.display()
        )
    })?;
    let manifest: Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not JSON", manifest.display()))?;
    Ok(manifest
        .get("version")
        .and_then(Value::as_str)
        .unwrap_or("(unknown version)")
        .to_owned())
}
