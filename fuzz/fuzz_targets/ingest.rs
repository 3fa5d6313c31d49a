//! Crafted sync messages through the server's ingest path, against a real lab board; see
//! `labboard_tests::crafted`. Found inputs are replayed by `tests/tests/fuzz_regressions.rs`.
//!
//! The server contains panics of automerge's decoders itself (`catch_unwind`) and refuses the
//! message; libFuzzer's own panic hook would abort on those before they are caught. So this
//! target's hook only remembers the panic, and a case counts as a crash when a panic escapes
//! `run_case`: an uncontained panic, or a broken invariant (`run_case` asserts them, a checked
//! message that could not be applied included).
//!
//! `FUZZ_IGNORE_PANICS` (comma-separated parts of `file:line: message`) makes matching escaped
//! panics end a case as uninteresting instead of as a crash, so a run can look past bugs already
//! known. Replays ignore nothing.

#![no_main]

use std::cell::RefCell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Once, OnceLock};

use labboard_tests::crafted::run_case;

thread_local! {
    /// `file:line: message` of this thread's last panic.
    static LAST_PANIC: RefCell<String> = const { RefCell::new(String::new()) };
}

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

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        panic::set_hook(Box::new(|info| {
            let site = info
                .location()
                .map(|at| format!("{}:{}", at.file(), at.line()))
                .unwrap_or_default();
            let text = format!("{site}: {}", info.payload_as_str().unwrap_or_default());
            LAST_PANIC.with(|last| *last.borrow_mut() = text);
        }));
    });
    if panic::catch_unwind(AssertUnwindSafe(|| run_case(data))).is_err() {
        let text = LAST_PANIC.with(|last| last.borrow().clone());
        if ignored().iter().any(|part| text.contains(part.as_str())) {
            return;
        }
        eprintln!("panicked at {text}");
        std::process::abort();
    }
});
