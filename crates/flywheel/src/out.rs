//! The one writer for standard output. Every command prints through
//! [`emit`] (or the `out!` / `outln!` macros), never `print!`: a closed pipe
//! (`| head -1`) quietly ends the output, a write error (`> /dev/full`) is
//! reported once on stderr, and neither panics. The command's outcome then
//! decides the exit code ([`settle`]).

use std::io::{ErrorKind, Write};
use std::sync::atomic::{AtomicU8, Ordering};

use crate::exit;

const WRITING: u8 = 0;
/// The reader went away: nothing more is written, and that is not an error.
const CLOSED: u8 = 1;
/// Writing failed for another reason (full disk, I/O error): reported.
const FAILED: u8 = 2;

static STATE: AtomicU8 = AtomicU8::new(WRITING);

/// Writes `text` to standard output and flushes it.
pub fn emit(text: &str) {
    if STATE.load(Ordering::Relaxed) != WRITING {
        return;
    }
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        if e.kind() == ErrorKind::BrokenPipe {
            STATE.store(CLOSED, Ordering::Relaxed);
        } else {
            STATE.store(FAILED, Ordering::Relaxed);
            eprintln!("flywheel: cannot write to standard output: {e}");
        }
    }
}

/// The exit code once the command is done. When the output is the product
/// (a report), a report that could not be written is exit 2 (whatever it
/// found: nobody saw it);
/// when the outcome is the product (the guard's verdict, an apply), the
/// command's own code stands whatever happened to stdout.
pub fn settle(code: u8, output_is_the_product: bool) -> u8 {
    if output_is_the_product && STATE.load(Ordering::Relaxed) == FAILED {
        exit::USAGE
    } else {
        code
    }
}
