//! Crafted sync messages through the server's ingest path, against a real lab board; see
//! `labboard_tests::crafted`. Found inputs are replayed by `tests/tests/fuzz_regressions.rs`.
//!
//! `FUZZ_IGNORE_PANICS` (comma-separated parts of `file:line: message`) makes matching panics
//! end a case as uninteresting instead of as a crash, so a run can look past bugs already known
//! (`automerge-0.12.0/src/types.rs:464,max_op is lower than start_op`). Replays ignore nothing.

#![no_main]

use std::panic::{self, AssertUnwindSafe, PanicHookInfo};
use std::sync::{Once, OnceLock};

use labboard_tests::crafted::run_case;

fn ignored() -> &'static [String] {
    static IGNORED: OnceLock<Vec<String>> = OnceLock::new();
    IGNORED.get_or_init(|| {
        std::env::var("FUZZ_IGNORE_PANICS")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .map(str::to_owned)
            .collect()
    })
}

fn is_ignored(info: &PanicHookInfo<'_>) -> bool {
    let site = info
        .location()
        .map(|at| format!("{}:{}", at.file(), at.line()))
        .unwrap_or_default();
    let text = format!("{site}: {}", info.payload_as_str().unwrap_or_default());
    ignored().iter().any(|part| text.contains(part.as_str()))
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if ignored().is_empty() {
        run_case(data);
        return;
    }
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        // libFuzzer's hook prints the panic and aborts: a crash. It still gets every panic
        // not ignored.
        let report = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if !is_ignored(info) {
                report(info);
            }
        }));
    });
    // Only an ignored panic unwinds to here; the case then simply ends.
    let _passed_over = panic::catch_unwind(AssertUnwindSafe(|| run_case(data)));
});
