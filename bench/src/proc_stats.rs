//! CPU time and memory of a process, from `/proc/<pid>/stat` and `/proc/<pid>/status`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::task::JoinHandle;

/// `/proc` reports CPU time in USER_HZ ticks, which the kernel fixes at 100 per second on every
/// architecture as part of its user-space ABI (whatever the internal `HZ`).
const CLOCK_TICKS_PER_SECOND: u64 = 100;

/// How often [`PeakRss`] samples: often enough to catch a burst's peak, cheap enough (one small
/// file read) not to show in the generator's own CPU time.
const RSS_SAMPLE_EVERY: Duration = Duration::from_millis(50);

/// Which process to read: a pid, or `None` for this one.
#[derive(Debug, Clone, Copy)]
pub struct Process(pub Option<u32>);

impl Process {
    pub const SELF: Process = Process(None);

    fn path(self, file: &str) -> String {
        match self.0 {
            Some(pid) => format!("/proc/{pid}/{file}"),
            None => format!("/proc/self/{file}"),
        }
    }

    /// User plus system CPU time of all threads so far.
    pub fn cpu_time(self) -> anyhow::Result<Duration> {
        Ok(self.stat()?.cpu)
    }

    /// What `/proc/<pid>/stat` says of the process's CPU time and parent.
    fn stat(self) -> anyhow::Result<Stat> {
        let path = self.path("stat");
        let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
        // The command name (field 2) may contain spaces and parentheses; fields after its
        // closing parenthesis start at field 3 (state). utime and stime are fields 14 and 15.
        let after_name = stat
            .rsplit_once(')')
            .with_context(|| format!("no `)` in {path}"))?
            .1;
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        let ticks = |index: usize| -> anyhow::Result<u64> {
            fields
                .get(index)
                .and_then(|f| f.parse().ok())
                .with_context(|| format!("no field {} in {path}", index + 3))
        };
        let time = |ticks: u64| Duration::from_millis(ticks * 1000 / CLOCK_TICKS_PER_SECOND);
        Ok(Stat {
            // Field 4 is the parent; 14 and 15 this process's time, 16 and 17 that of the
            // children it has waited for.
            parent: u32::try_from(ticks(1)?).with_context(|| format!("bad parent in {path}"))?,
            cpu: time(ticks(11)? + ticks(12)?),
            children_cpu: time(ticks(13)? + ticks(14)?),
        })
    }

    /// A `VmXxx:  1234 kB` line of `/proc/<pid>/status`, in KiB.
    fn status_kib(self, key: &str) -> anyhow::Result<u64> {
        let path = self.path("status");
        let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
        status
            .lines()
            .find_map(|line| line.strip_prefix(key)?.strip_prefix(':'))
            .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
            .with_context(|| format!("no {key} in {path}"))
    }

    /// Resident set size now.
    pub fn rss_kib(self) -> anyhow::Result<u64> {
        self.status_kib("VmRSS")
    }

    /// The highest resident set size since the process started.
    pub fn hwm_kib(self) -> anyhow::Result<u64> {
        self.status_kib("VmHWM")
    }
}

struct Stat {
    parent: u32,
    cpu: Duration,
    children_cpu: Duration,
}

/// CPU time so far of a server made of a parent process and the processes it starts, as
/// PostgreSQL is (the postmaster and one backend per connection, plus its helpers): the parent's
/// own time, that of the children it has reaped (backends that ended), and that of every living
/// child. A child that ends between two readings moves from one sum to the other, so the
/// difference of two readings counts it once.
pub fn tree_cpu_time(parent: u32) -> anyhow::Result<Duration> {
    let root = Process(Some(parent)).stat()?;
    let mut total = root.cpu + root.children_cpu;
    for entry in std::fs::read_dir("/proc").context("reading /proc")? {
        let Some(pid) = entry
            .ok()
            .and_then(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        else {
            continue;
        };
        // A process may end while the directory is read: then it is the parent's already.
        if let Ok(stat) = Process(Some(pid)).stat() {
            if stat.parent == parent {
                total += stat.cpu + stat.children_cpu;
            }
        }
    }
    Ok(total)
}

/// The PostgreSQL server of a data directory: its postmaster's pid, the first line of
/// `postmaster.pid`.
pub fn postmaster_pid(data_dir: &std::path::Path) -> anyhow::Result<u32> {
    let path = data_dir.join("postmaster.pid");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .next()
        .and_then(|line| line.trim().parse().ok())
        .with_context(|| format!("no pid on the first line of {}", path.display()))
}

/// A process measured besides the server: another node, the database, the proxy.
#[derive(Debug, Clone)]
pub struct Watched {
    pub name: String,
    pub what: Watch,
}

#[derive(Debug, Clone, Copy)]
pub enum Watch {
    /// One process: its CPU time and RSS.
    Process(Process),
    /// A server of several processes under one parent: their CPU time together.
    Tree(u32),
}

impl Watched {
    pub fn cpu_time(&self) -> anyhow::Result<Duration> {
        match self.what {
            Watch::Process(process) => process.cpu_time(),
            Watch::Tree(parent) => tree_cpu_time(parent),
        }
        .with_context(|| format!("reading the CPU time of {}", self.name))
    }

    /// The process whose memory is sampled, if it is one process.
    pub fn process(&self) -> Option<Process> {
        match self.what {
            Watch::Process(process) => Some(process),
            Watch::Tree(_) => None,
        }
    }
}

/// The machine's 1-minute load average, from `/proc/loadavg`.
/// The machine's memory, from /proc/meminfo.
pub fn memory_total_kib() -> Option<u64> {
    std::fs::read_to_string("/proc/meminfo")
        .ok()?
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

pub fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The highest RSS seen while it runs, sampled every [`RSS_SAMPLE_EVERY`].
pub struct PeakRss {
    peak: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl PeakRss {
    pub fn start(process: Process) -> Self {
        let peak = Arc::new(AtomicU64::new(0));
        let seen = Arc::clone(&peak);
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(RSS_SAMPLE_EVERY);
            loop {
                tick.tick().await;
                match process.rss_kib() {
                    Ok(rss) => {
                        seen.fetch_max(rss, Ordering::Relaxed);
                    }
                    Err(_) => return, // the process is gone; the report says so elsewhere
                }
            }
        });
        Self { peak, task }
    }

    /// Stops sampling; the peak in KiB, with one last sample.
    pub fn stop(self, process: Process) -> u64 {
        self.task.abort();
        let last = process.rss_kib().unwrap_or(0);
        self.peak.load(Ordering::Relaxed).max(last)
    }
}

/// Wall-clock and CPU time of the server and of this generator over one phase of a run.
pub struct Meter {
    started: Instant,
    server: Option<(Process, Duration)>,
    own: Duration,
}

/// What a [`Meter`] measured.
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    pub wall: Duration,
    pub server_cpu: Option<Duration>,
    pub own_cpu: Duration,
}

impl Meter {
    pub fn start(server: Option<Process>) -> anyhow::Result<Self> {
        let server = match server {
            Some(process) => Some((process, process.cpu_time()?)),
            None => None,
        };
        Ok(Self {
            started: Instant::now(),
            server,
            own: Process::SELF.cpu_time()?,
        })
    }

    pub fn finish(&self) -> anyhow::Result<Usage> {
        let server_cpu = match self.server {
            Some((process, before)) => Some(process.cpu_time()?.saturating_sub(before)),
            None => None,
        };
        Ok(Usage {
            wall: self.started.elapsed(),
            server_cpu,
            own_cpu: Process::SELF.cpu_time()?.saturating_sub(self.own),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tree_counts_at_least_its_parent() {
        let own = std::process::id();
        let parent = Process(Some(own)).cpu_time().unwrap();
        assert!(tree_cpu_time(own).unwrap() >= parent);
        assert_eq!(
            Process(Some(own)).stat().unwrap().parent,
            std::os::unix::process::parent_id()
        );
    }

    #[test]
    fn reads_this_process() {
        let me = Process(Some(std::process::id()));
        assert!(me.rss_kib().unwrap() > 0);
        assert!(me.hwm_kib().unwrap() >= me.rss_kib().unwrap() / 2);
        // Burn CPU until the counter (in clock ticks) moves from zero; on a busy machine the
        // thread may get little CPU, so bound the wait by wall time rather than assume.
        let started = Instant::now();
        let mut x = 0u64;
        while Process::SELF.cpu_time().unwrap() == Duration::ZERO
            && started.elapsed() < Duration::from_secs(10)
        {
            for _ in 0..100_000 {
                x = x.wrapping_add(std::hint::black_box(1));
            }
        }
        assert!(x > 0);
        assert!(Process::SELF.cpu_time().unwrap() > Duration::ZERO);
        assert!(load_average().unwrap() >= 0.0);
    }
}
