//! Inputs the `ingest` fuzz target found (`fuzz/regressions/ingest/`, minimized from its corpus,
//! plus the crashes it saved), replayed through the server's ingest path: each message must be
//! refused or applied without harm, and the document must reload to the same heads. Also a few
//! hand-written cases of issue #11, named for what they send.
//!
//! Run the fuzzer itself with `scripts/fuzz`; it is too slow for the normal test command.

use std::collections::BTreeMap;
use std::num::NonZeroU64;
use std::path::{Path, PathBuf};
use std::process::Command;

use automerge::legacy::{Key, ObjectId, Op, OpId, OpType, SortedVec};
use automerge::sync::{self, BloomFilter, Have};
use automerge::{ActorId, ExpandedChange, ObjType, ScalarValue};
use labboard_tests::crafted::{check, run_case, Base, Delivery, PHONE_ACTORS};

fn regressions_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions/ingest")
}

/// Set to one input's path for [`replay_one_input`], in a child process of this test binary.
const REPLAY_INPUT: &str = "LABBOARD_FUZZ_REPLAY_INPUT";

/// Replays the input named by [`REPLAY_INPUT`]; does nothing when it is unset (a normal run).
#[test]
fn replay_one_input() {
    if let Some(path) = std::env::var_os(REPLAY_INPUT) {
        run_case(&std::fs::read(path).expect("reading a found input"));
    }
}

/// Replays one input in a child process, since some inputs abort the process (a panic while
/// unwinding another): `Err` has the first panic's site and message.
fn replay(path: &Path) -> Result<(), String> {
    let output = Command::new(std::env::current_exe().expect("the test binary"))
        .args([
            "--exact",
            "replay_one_input",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(REPLAY_INPUT, path)
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("running the test binary");
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let mut lines = stderr
        .lines()
        .skip_while(|line| !line.contains("panicked at "));
    let site = lines
        .next()
        .and_then(|line| line.split("panicked at ").nth(1))
        .map(short_site)
        .unwrap_or_default();
    let message = lines.next().unwrap_or_default();
    let aborted = if stderr.contains("panic in a destructor during cleanup") {
        " (then a panic while unwinding: the process aborted)"
    } else {
        ""
    };
    Err(format!("{site} {}{aborted}", failure_kind(message)))
}

/// `automerge-0.12.0/src/types.rs:464` rather than the whole path into the cargo registry, and
/// without the column.
fn short_site(site: &str) -> String {
    let site = site.trim_end_matches(':');
    let site = site.rsplit_once(':').map_or(site, |(rest, _column)| rest);
    match site.rsplit_once("/src/") {
        Some((crate_dir, path)) => {
            let krate = crate_dir.rsplit('/').next().unwrap_or(crate_dir);
            format!("{krate}/src/{path}:")
        }
        None => format!("{site}:"),
    }
}

/// A failure message without what differs between inputs (numbers, hashes, actor ids), so one
/// bug's failures group together.
fn failure_kind(text: &str) -> String {
    let mut kind = String::with_capacity(text.len());
    for token in text.split_inclusive(|ch: char| !ch.is_ascii_alphanumeric()) {
        let word = token.trim_end_matches(|ch: char| !ch.is_ascii_alphanumeric());
        let varies = !word.is_empty()
            && (word.chars().all(|ch| ch.is_ascii_digit())
                || (word.len() >= 8 && word.chars().all(|ch| ch.is_ascii_hexdigit())));
        if varies {
            kind.push('#');
            kind.push_str(&token[word.len()..]);
        } else {
            kind.push_str(token);
        }
    }
    kind
}

#[test]
fn every_found_input_is_refused_or_applied_without_harm() {
    let dir = regressions_dir();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|err| panic!("reading {}: {err}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no inputs in {}", dir.display());

    // Every input runs, so one report shows all that fail, grouped by what went wrong.
    let mut failures: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for path in &files {
        if let Err(failure) = replay(path) {
            let name = path
                .file_name()
                .expect("a file has a name")
                .to_string_lossy()
                .into_owned();
            failures.entry(failure).or_default().push(name);
        }
    }
    let failed: usize = failures.values().map(Vec::len).sum();
    let report: String = failures
        .iter()
        .map(|(kind, names)| {
            format!(
                "\n  {} x {kind}\n      e.g. {}",
                names.len(),
                names[..names.len().min(3)].join(", ")
            )
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{failed} of {} found inputs failed:{report}",
        files.len()
    );
}

/// A change by `actor` at `seq` and `start_op`, on the board's heads, holding `operations`.
fn change(actor: ActorId, seq: u64, start_op: u64, operations: Vec<Op>) -> ExpandedChange {
    ExpandedChange {
        operations,
        actor_id: actor,
        hash: None,
        seq,
        start_op: NonZeroU64::new(start_op).expect("start_op is at least 1"),
        time: 0,
        message: None,
        deps: Base::get().doc.get_heads(),
        extra_bytes: Vec::new(),
        author: None,
    }
}

fn put_root(key: &str, value: &str) -> Op {
    Op {
        action: OpType::Put(ScalarValue::Str(value.into())),
        obj: ObjectId::Root,
        key: Key::Map(key.into()),
        pred: SortedVec::new(),
        insert: false,
    }
}

fn from_observer(changes: &[ExpandedChange]) -> Delivery {
    Delivery {
        as_facilitator: false,
        data: Base::get().message_with(changes),
    }
}

#[test]
fn start_op_equal_to_the_max_op() {
    let base = Base::get();
    let crafted = change(
        ActorId::from([0xc0; 16]),
        1,
        base.max_op(),
        vec![put_root("crafted", "start_op too low")],
    );
    check(&[from_observer(&[crafted])]);
}

#[test]
fn duplicate_seq_of_a_phone() {
    let base = Base::get();
    let phone = ActorId::from(PHONE_ACTORS[0]);
    assert!(base.last_seq(&phone) >= 1, "the phone has written a change");
    let crafted = change(
        phone,
        1,
        base.max_op() + 1,
        vec![put_root("crafted", "seq 1 again")],
    );
    check(&[from_observer(&[crafted])]);
}

#[test]
fn duplicate_seq_of_a_new_actor_in_one_message() {
    let base = Base::get();
    let actor = ActorId::from([0xc1; 16]);
    let first = change(
        actor.clone(),
        1,
        base.max_op() + 1,
        vec![put_root("crafted", "first")],
    );
    let second = change(
        actor,
        1,
        base.max_op() + 2,
        vec![put_root("crafted", "second")],
    );
    check(&[from_observer(&[first, second])]);
}

#[test]
fn pred_counter_past_u32() {
    let base = Base::get();
    let actor = ActorId::from([0xc2; 16]);
    let make_text = Op {
        action: OpType::Make(ObjType::Text),
        obj: ObjectId::Root,
        key: Key::Map("lab".into()),
        pred: SortedVec::from(vec![OpId(u64::from(u32::MAX) + 1, actor.clone())]),
        insert: false,
    };
    let crafted = change(actor, 1, base.max_op() + 1, vec![make_text]);
    check(&[from_observer(&[crafted])]);
}

#[test]
fn an_honest_note_is_applied() {
    // The checks themselves must let an honest change through, or every case above passes
    // by refusing everything.
    let base = Base::get();
    let phone = ActorId::from(PHONE_ACTORS[1]);
    let honest = change(
        phone.clone(),
        base.last_seq(&phone) + 1,
        base.max_op() + 1,
        vec![put_root("honest", "a note")],
    );
    // A key of its own at the root: the facilitator's to write.
    let heads = check(&[Delivery {
        as_facilitator: true,
        data: base.message_with(std::slice::from_ref(&honest)),
    }]);
    let hash = automerge::Change::from(honest).hash();
    assert_eq!(heads, vec![hash], "the honest change was not applied");
}

#[test]
fn seq_gap_of_a_new_actor() {
    let base = Base::get();
    let crafted = change(
        ActorId::from([0xc3; 16]),
        2,
        base.max_op() + 1,
        vec![put_root("crafted", "seq 2 without a seq 1")],
    );
    check(&[from_observer(&[crafted])]);
}

#[test]
fn a_peer_claiming_our_heads_with_an_empty_have_twice() {
    // Found by the fuzzer: DocState's shortcut takes "their heads are ours" as "nothing to
    // send", while automerge, trusting the empty bloom filter, would send every change; the
    // debug assertion that checks the shortcut then fails in the document actor.
    let claim = || Delivery {
        as_facilitator: false,
        data: sync::Message {
            heads: Base::get().doc.get_heads(),
            need: Vec::new(),
            have: vec![Have {
                last_sync: Vec::new(),
                bloom: BloomFilter::default(),
            }],
            changes: sync::ChunkList::from(Vec::<Vec<u8>>::new()),
            flags: None,
            version: sync::MessageVersion::V1,
        }
        .encode(),
    };
    check(&[claim(), claim()]);
}
