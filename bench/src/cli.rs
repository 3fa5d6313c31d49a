//! The command line: where to send load (`--labboard`, `--sync-url` or `--start-labboard`),
//! global bounds, and one scenario with its sizes.

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgGroup, Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "labboard-bench",
    about = "Load generator for labboard and other automerge-repo sync servers: simulated phones, \
             each its own WebSocket and Automerge replica, posting notes to lab boards",
    group(ArgGroup::new("target").args(["labboard", "sync_url", "start_labboard"]))
)]
pub struct Cli {
    /// A running labboard, e.g. http://127.0.0.1:8080: labs are created through its API and
    /// every phone joins with its own name and token.
    #[arg(long, env = "LABBOARD_BENCH_LABBOARD", requires = "organizer_token")]
    pub labboard: Option<String>,

    /// The organizer token of the `--labboard` server.
    #[arg(long, env = "LABBOARD_BENCH_ORGANIZER_TOKEN", hide_env_values = true)]
    pub organizer_token: Option<String>,

    /// Any automerge-repo sync server, e.g. ws://127.0.0.1:3030 : the bench creates the boards
    /// itself and every phone connects to this URL.
    #[arg(long, env = "LABBOARD_BENCH_SYNC_URL")]
    pub sync_url: Option<String>,

    /// Start this labboard binary on 127.0.0.1:0 with a temporary data directory, bench it,
    /// and kill it at the end.
    #[arg(long, env = "LABBOARD_BENCH_START_LABBOARD")]
    pub start_labboard: Option<PathBuf>,

    /// Nodes started with `--start-labboard` keep everything in this PostgreSQL database
    /// instead of SQLite; needed for `--nodes` above 1. Each run wants an empty database.
    #[arg(
        long,
        env = "LABBOARD_BENCH_DATABASE_URL",
        requires = "start_labboard",
        hide_env_values = true
    )]
    pub database_url: Option<String>,

    /// The data directory of the PostgreSQL server behind `--database-url`: the bench reads its
    /// postmaster's pid from `postmaster.pid` there and reports the CPU time of the postmaster
    /// and all its processes (backends, writers) as the database's.
    #[arg(
        long,
        env = "LABBOARD_BENCH_POSTGRES_DATA_DIR",
        requires = "database_url"
    )]
    pub postgres_data_dir: Option<PathBuf>,

    /// Nodes to start with `--start-labboard`, all on `--database-url`; with more than one,
    /// phones reach them through `--proxy nginx` or, with `--spread`, directly.
    #[arg(long, default_value_t = 1, requires = "start_labboard")]
    pub nodes: usize,

    /// Put this proxy in front of the nodes: `nginx`, on the shipped configuration
    /// (`--nginx-config`), which sends every phone of a lab to one node. Labs are created and
    /// phones connect through it.
    #[arg(long, value_parser = ["nginx"], requires = "start_labboard")]
    pub proxy: Option<String>,

    /// No proxy: the phones of each lab connect to the nodes directly, in turn (phone 1 to node
    /// 1, phone 2 to node 2, ...), so most notes cross from one node to the other.
    #[arg(long, conflicts_with = "proxy", requires = "start_labboard")]
    pub spread: bool,

    /// The nginx binary for `--proxy nginx` (default: Debian's, /usr/sbin/nginx).
    #[arg(long)]
    pub nginx_bin: Option<PathBuf>,

    /// The nginx site for `--proxy nginx`: its upstream servers are replaced by the nodes and
    /// its `listen 80;` by a free loopback port.
    #[arg(long, default_value = "deploy/nginx/labboard.conf")]
    pub nginx_config: PathBuf,

    /// Log filter for a server started with `--start-labboard` (its log goes to stderr).
    #[arg(long, env = "LABBOARD_BENCH_SERVER_LOG", default_value = "warn")]
    pub server_log: String,

    /// The server's process id, for its CPU time and memory from /proc (implied with
    /// `--start-labboard`).
    #[arg(long, env = "LABBOARD_BENCH_SERVER_PID")]
    pub server_pid: Option<u32>,

    /// Give up, loudly and with a non-zero exit, when the whole run takes longer than this.
    #[arg(long, env = "LABBOARD_BENCH_TIMEOUT", default_value = "10m", value_parser = parse_duration)]
    pub timeout: Duration,

    /// After the last note is sent, how long every note may take to arrive and every replica to
    /// converge before the run counts as failed.
    #[arg(long, env = "LABBOARD_BENCH_SETTLE", default_value = "30s", value_parser = parse_duration)]
    pub settle: Duration,

    /// Also print one JSON object per scenario on stdout (the table then goes to stderr).
    #[arg(long)]
    pub json: bool,

    #[command(subcommand)]
    pub scenario: Scenario,
}

#[derive(Debug, Clone, Subcommand)]
pub enum Scenario {
    /// One lab: observers post notes at a steady interval while a projector watches.
    Steady(Steady),
    /// One lab: observers post all their notes at once.
    Burst(Burst),
    /// Many labs at once, each with its observers and projector, posting at an interval.
    Labs(Labs),
    /// A board with many notes, then fresh projectors fetch it one after another.
    Coldload(Coldload),
    /// Many connected phones doing nothing: server memory per connection and idle CPU.
    Idle(Idle),
    /// Boards of many notes, the server restarted, then every board opened by a fresh
    /// projector: server memory per board loaded from storage (needs `--start-labboard`).
    Boards(Boards),
    /// Photos of student work: in each lab, phones post notes at an interval; halfway through,
    /// every phone starts uploading its photos at once, one after another, while the notes go
    /// on. Note latency without and with uploads, and upload throughput (needs a labboard).
    Photos(Photos),
    /// Two nodes behind nginx, labs of phones writing through it; one node is killed
    /// (SIGKILL) and every phone it held reconnects through nginx to the other: the time from
    /// the kill until each of them is synced again (needs `--nodes 2 --proxy nginx`).
    Failover(Failover),
    /// Every scenario against labboard and the reference JavaScript sync server, alternately,
    /// each run on a freshly started server; one table with both servers' figures and ratios.
    /// Takes no target: it starts both servers itself.
    Compare(Compare),
}

/// Note sizes, shared by the scenarios that post notes.
#[derive(Debug, Clone, Args)]
pub struct NoteSize {
    /// Shortest note, in characters.
    #[arg(long, default_value_t = 80)]
    pub min_chars: usize,
    /// Longest note, in characters.
    #[arg(long, default_value_t = 200)]
    pub max_chars: usize,
}

#[derive(Debug, Clone, Args)]
pub struct Steady {
    /// Observers posting notes (the projector comes on top).
    #[arg(long, default_value_t = 11)]
    pub observers: usize,
    /// Notes each observer posts.
    #[arg(long, default_value_t = 20)]
    pub notes: usize,
    /// Time between two notes of one observer; observers are spread evenly over it.
    #[arg(long, default_value = "500ms", value_parser = parse_duration)]
    pub interval: Duration,
    #[command(flatten)]
    pub size: NoteSize,
}

#[derive(Debug, Clone, Args)]
pub struct Burst {
    #[arg(long, default_value_t = 11)]
    pub observers: usize,
    #[arg(long, default_value_t = 20)]
    pub notes: usize,
    #[command(flatten)]
    pub size: NoteSize,
}

#[derive(Debug, Clone, Args)]
pub struct Labs {
    /// Number of labs running at once.
    pub count: usize,
    /// Observers per lab (each lab also has one projector).
    #[arg(long, default_value_t = 11)]
    pub observers: usize,
    /// Time between two notes of one observer; all observers are spread evenly over it.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub interval: Duration,
    /// How long observers keep posting: each posts duration / interval notes.
    #[arg(long, default_value = "2m", value_parser = parse_duration)]
    pub duration: Duration,
    #[command(flatten)]
    pub size: NoteSize,
}

#[derive(Debug, Clone, Args)]
pub struct Coldload {
    /// Notes on the board before it is fetched.
    #[arg(long, default_value_t = 500)]
    pub notes: usize,
    /// Observers writing those notes, concurrently, one change per note.
    #[arg(long, default_value_t = 11)]
    pub writers: usize,
    /// Fresh projectors fetching the board, one after another.
    #[arg(long, default_value_t = 5)]
    pub fetches: usize,
    #[command(flatten)]
    pub size: NoteSize,
}

#[derive(Debug, Clone, Args)]
pub struct Idle {
    /// Connected phones.
    pub count: usize,
    /// Phones per lab; the phones are spread over count / per-lab labs.
    #[arg(long, default_value_t = 12)]
    pub per_lab: usize,
    /// How long the phones stay connected and idle while the server is measured; the default
    /// covers one round of the server's 15 s pings.
    #[arg(long, default_value = "20s", value_parser = parse_duration)]
    pub hold: Duration,
}

#[derive(Debug, Clone, Args)]
pub struct Boards {
    /// Boards loaded at once.
    #[arg(default_value_t = 20)]
    pub count: usize,
    /// Notes on each board.
    #[arg(long, default_value_t = 500)]
    pub notes: usize,
    /// Observers writing each board, concurrently, one change per note.
    #[arg(long, default_value_t = 11)]
    pub writers: usize,
    /// After the projectors leave, how long to wait for the server to unload every board
    /// (its `--idle-unload`, 60 s by default, and a little more); 0 skips that check.
    #[arg(long, default_value = "90s", value_parser = parse_duration)]
    pub unload_wait: Duration,
    #[command(flatten)]
    pub size: NoteSize,
}

#[derive(Debug, Clone, Args)]
pub struct Photos {
    /// Labs at once, each with its phones and one projector.
    #[arg(long, default_value_t = 1)]
    pub labs: usize,
    /// Phones per lab; each posts notes and uploads its photos.
    #[arg(long, default_value_t = 11)]
    pub phones: usize,
    /// Photos each phone uploads, one after another.
    #[arg(long, default_value_t = 10)]
    pub photos_per_phone: usize,
    /// Size of each photo, in kB (1000 bytes).
    #[arg(long, default_value_t = 300)]
    pub photo_kb: usize,
    /// Time between two notes of one phone; all phones are spread evenly over it.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub interval: Duration,
    /// How long phones post notes: the first half without uploads (phase A), the second with
    /// them (phase B, which lasts until the last upload is answered if that is later).
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub duration: Duration,
    #[command(flatten)]
    pub size: NoteSize,
}

#[derive(Debug, Clone, Args)]
pub struct Failover {
    /// Labs at once, each with its observers and one projector; nginx spreads the labs over
    /// the nodes, so about half of them are on the node that is killed.
    #[arg(long, default_value_t = 20)]
    pub labs: usize,
    /// Observers per lab.
    #[arg(long, default_value_t = 11)]
    pub observers: usize,
    /// Time between two notes of one observer; all observers are spread evenly over it.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub interval: Duration,
    /// How long the phones write before the kill.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub before: Duration,
    /// How long the phones go on writing once every phone is synced again.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub after: Duration,
    /// Every phone of the killed node must be synced again within this, or the run fails.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub recover_within: Duration,
    #[command(flatten)]
    pub size: NoteSize,
}

#[derive(Debug, Clone, Args)]
pub struct Compare {
    /// The labboard binary to start for every labboard run.
    #[arg(long, default_value = "target/release/labboard")]
    pub labboard_bin: PathBuf,
    /// Where the reference server is installed (`npm ci --prefix bench/reference`); holds the
    /// preload that binds it to 127.0.0.1.
    #[arg(long, default_value = "bench/reference")]
    pub reference_dir: PathBuf,
    /// The Node.js that runs the reference server.
    #[arg(long, default_value = "node")]
    pub node: String,
    /// Rounds of the fixed-size scenarios (steady, burst, coldload, idle); the table shows
    /// medians. `labs N` runs once per step.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Scenarios to run, comma-separated, from steady, burst, coldload, idle, labs.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "steady,burst,coldload,idle,labs"
    )]
    pub scenarios: Vec<String>,
    /// Phones of the idle scenario.
    #[arg(long, default_value_t = 1000)]
    pub idle_phones: usize,
    /// The lab counts `labs N` steps through, each server until its p99 passes the limit.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "10,50,100,200,300,500,1000"
    )]
    pub labs_steps: Vec<usize>,
    /// `labs N`: time between two notes of one observer.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub labs_interval: Duration,
    /// `labs N`: how long observers keep posting.
    #[arg(long, default_value = "2m", value_parser = parse_duration)]
    pub labs_duration: Duration,
    /// `labs N`: the p99 latency a step must stay under to count as held.
    #[arg(long, default_value_t = 100.0)]
    pub labs_limit_ms: f64,
    /// `labs N`: a server stops stepping once its p99 passes this (or a run fails its
    /// checks), which shows where it falls apart beyond the limit.
    #[arg(long, default_value_t = 1000.0)]
    pub labs_stop_ms: f64,
}

impl Compare {
    /// The scenarios asked for, in the order they run.
    pub fn scenario_list(&self) -> Vec<String> {
        ["steady", "burst", "coldload", "idle", "labs"]
            .into_iter()
            .filter(|known| self.scenarios.iter().any(|s| s.trim() == *known))
            .map(str::to_owned)
            .collect()
    }
}

/// `500ms`, `30s`, `2m`, `1h`; a bare number means seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration like 500ms, 30s or 2m"))?;
    let seconds = match unit {
        "ms" => number / 1000.0,
        "" | "s" => number,
        "m" => number * 60.0,
        "h" => number * 3600.0,
        _ => return Err(format!("unknown unit `{unit}` in `{text}` (ms, s, m, h)")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|err| format!("`{text}`: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("5"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("ms").is_err());
    }

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
