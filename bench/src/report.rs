//! What a scenario found: a table for people and one JSON object for the comparison command.

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::{json, Map, Value};

use crate::proc_stats::Usage;

/// What [`Report::also`] shows of one measured process.
pub struct AlsoUsed {
    pub name: String,
    pub cpu: Duration,
    pub peak_rss_kib: Option<u64>,
}

/// One scenario's results. `ok` is false once anything was lost, diverged or failed.
pub struct Report {
    scenario: &'static str,
    heading: String,
    rows: Vec<(String, String)>,
    fields: Map<String, Value>,
    failures: Vec<String>,
}

impl Report {
    pub fn new(scenario: &'static str, heading: String) -> Self {
        Self {
            scenario,
            heading,
            rows: Vec::new(),
            fields: Map::new(),
            failures: Vec::new(),
        }
    }

    /// A line of the table.
    pub fn row(&mut self, label: &str, value: impl Into<String>) {
        self.rows.push((label.to_owned(), value.into()));
    }

    /// A field of the JSON object.
    pub fn field(&mut self, key: &str, value: Value) {
        self.fields.insert(key.to_owned(), value);
    }

    /// Marks the run failed, with what went wrong.
    pub fn fail(&mut self, what: impl Into<String>) {
        self.failures.push(what.into());
    }

    pub fn ok(&self) -> bool {
        self.failures.is_empty()
    }

    pub fn failures(&self) -> &[String] {
        &self.failures
    }

    /// The server's and the generator's CPU time over the measured phase, and memory.
    pub fn usage(
        &mut self,
        usage: &Usage,
        setup: &Usage,
        peak_rss_kib: Option<u64>,
        hwm_kib: Option<u64>,
    ) {
        let wall = usage.wall.as_secs_f64();
        match usage.server_cpu {
            Some(cpu) => self.row(
                "server CPU",
                format!(
                    "{:.2} s over {:.1} s ({:.0}% of one core); set-up {:.2} s",
                    cpu.as_secs_f64(),
                    wall,
                    percent(cpu, usage.wall),
                    setup.server_cpu.unwrap_or_default().as_secs_f64()
                ),
            ),
            None => self.row("server CPU", "n/a (no --server-pid)"),
        }
        match (peak_rss_kib, hwm_kib) {
            (Some(peak), Some(hwm)) => self.row(
                "server RSS",
                format!("peak {} while measuring; VmHWM {}", mib(peak), mib(hwm)),
            ),
            _ => self.row("server RSS", "n/a (no --server-pid)"),
        }
        self.row(
            "generator CPU",
            format!(
                "{:.2} s ({:.0}% of one core); set-up {:.2} s",
                usage.own_cpu.as_secs_f64(),
                percent(usage.own_cpu, usage.wall),
                setup.own_cpu.as_secs_f64()
            ),
        );
        let server = usage.server_cpu.map(|cpu| {
            json!({
                "cpuS": secs(cpu),
                "cpuPercentOfOneCore": round(percent(cpu, usage.wall)),
                "setupCpuS": setup.server_cpu.map(secs),
                "peakRssKiB": peak_rss_kib,
                "vmHwmKiB": hwm_kib,
            })
        });
        self.field("measuredS", json!(secs(usage.wall)));
        self.field("server", server.unwrap_or(Value::Null));
        self.field(
            "generator",
            json!({
                "cpuS": secs(usage.own_cpu),
                "cpuPercentOfOneCore": round(percent(usage.own_cpu, usage.wall)),
                "setupCpuS": secs(setup.own_cpu),
            }),
        );
    }

    /// The CPU time (and peak RSS, where one process) of what was measured besides the server,
    /// over `wall`: other nodes, the database, the proxy.
    pub fn also(&mut self, wall: Duration, measured: &[AlsoUsed]) {
        let mut list = Vec::new();
        for used in measured {
            let rss = used
                .peak_rss_kib
                .map_or_else(String::new, |kib| format!("; RSS peak {}", mib(kib)));
            self.row(
                &format!("{} CPU", used.name),
                format!(
                    "{:.2} s ({:.0}% of one core){rss}",
                    used.cpu.as_secs_f64(),
                    percent(used.cpu, wall)
                ),
            );
            list.push(json!({
                "name": used.name,
                "cpuS": secs(used.cpu),
                "cpuPercentOfOneCore": round(percent(used.cpu, wall)),
                "peakRssKiB": used.peak_rss_kib,
            }));
        }
        self.field("also", Value::Array(list));
    }

    pub fn table(&self) -> String {
        let mut out = format!("== {}: {} ==\n", self.scenario, self.heading);
        let width = self
            .rows
            .iter()
            .map(|(l, _)| l.len())
            .max()
            .unwrap_or(0)
            .max(6);
        for (label, value) in &self.rows {
            writeln!(out, "  {label:<width$}  {value}").expect("writing to a String");
        }
        let result = if self.ok() {
            "OK".to_owned()
        } else {
            format!("FAILED: {}", self.failures.join("; "))
        };
        writeln!(out, "  {:<width$}  {result}", "result").expect("writing to a String");
        out
    }

    pub fn json(&self, target_kind: &str, target: &str) -> Value {
        let mut object = Map::new();
        object.insert("scenario".into(), json!(self.scenario));
        object.insert("ok".into(), json!(self.ok()));
        object.insert("failures".into(), json!(self.failures));
        object.insert(
            "target".into(),
            json!({ "kind": target_kind, "url": target }),
        );
        object.extend(self.fields.clone());
        Value::Object(object)
    }
}

/// Latency figures of a sample, in milliseconds.
pub struct Percentiles {
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
}

impl Percentiles {
    /// Nearest-rank percentiles; `None` for an empty sample.
    pub fn of(samples: &[Duration]) -> Option<Self> {
        if samples.is_empty() {
            return None;
        }
        let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
        ms.sort_by(f64::total_cmp);
        let rank = |p: f64| {
            // Nearest rank: the smallest value with at least p% of the sample at or below it.
            let n = ms.len() as f64;
            let index = ((p / 100.0 * n).ceil() as usize).clamp(1, ms.len()) - 1;
            ms[index]
        };
        Some(Self {
            p50: rank(50.0),
            p95: rank(95.0),
            p99: rank(99.0),
            max: ms[ms.len() - 1],
            mean: ms.iter().sum::<f64>() / ms.len() as f64,
        })
    }

    pub fn line(&self) -> String {
        format!(
            "{:.1} / {:.1} / {:.1} / {:.1} ms (mean {:.1})",
            self.p50, self.p95, self.p99, self.max, self.mean
        )
    }

    pub fn json(&self) -> Value {
        json!({
            "p50": round(self.p50),
            "p95": round(self.p95),
            "p99": round(self.p99),
            "max": round(self.max),
            "mean": round(self.mean),
        })
    }
}

pub fn percent(part: Duration, whole: Duration) -> f64 {
    if whole.is_zero() {
        0.0
    } else {
        part.as_secs_f64() / whole.as_secs_f64() * 100.0
    }
}

pub fn secs(duration: Duration) -> f64 {
    round(duration.as_secs_f64())
}

/// Three decimals: enough for milliseconds, short enough to read.
pub fn round(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

pub fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let samples: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let p = Percentiles::of(&samples).unwrap();
        assert_eq!((p.p50, p.p95, p.p99, p.max), (50.0, 95.0, 99.0, 100.0));
        let one = Percentiles::of(&[Duration::from_millis(7)]).unwrap();
        assert_eq!((one.p50, one.p99), (7.0, 7.0));
        assert!(Percentiles::of(&[]).is_none());
    }
}
