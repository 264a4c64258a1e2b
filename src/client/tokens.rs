//! Output-token counting when the server sends no usage: tiktoken `cl100k_base`, loaded once
//! on first need, run on counting threads of its own (never on an I/O thread), in time linear in
//! the text's length, and never panicking.
//!
//! tiktoken's byte-pair merge is quadratic in the length of one regex "word", and recursion in
//! its regex engine overflows the stack on a word of about a megabyte; a server that sends one
//! long run of letters would otherwise freeze a runtime thread for minutes or kill the task. So
//! the text is counted in pieces: cut where tiktoken's own pre-tokenizer always cuts (before a
//! space that follows a non-space, which leaves the count exact), and, inside a run longer than
//! [`MAX_WORD_BYTES`] with no such place, at a character boundary (the count is then an estimate
//! for that run only).

use std::panic::AssertUnwindSafe;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use tiktoken_rs::CoreBPE;
use tokio::sync::oneshot;

/// Longest run of text given to tiktoken without an exact cut point; longer runs are cut here.
/// The merge is quadratic in this, so it bounds the cost per byte (a few hundred bytes keeps a
/// megabyte-long word to milliseconds).
pub const MAX_WORD_BYTES: usize = 256;

/// Preferred size of one piece handed to tiktoken (cut at an exact point): large enough that
/// per-call overhead does not matter, small enough that no call holds the thread long.
const PIECE_BYTES: usize = 8 * 1024;

/// Most text kept per request for counting. Beyond it the client keeps no more and the request
/// falls back to the event count (token source `events`), so a server that streams without end
/// cannot grow a user's memory or its counting time.
pub const MAX_COUNTED_TEXT_BYTES: usize = 1024 * 1024;

/// One text to count, and where its count (and the text, a reused buffer) goes back.
type Job = (String, oneshot::Sender<(Option<u64>, String)>);

/// A lazily loaded cl100k_base tokenizer, shared by all users of a run, with counting threads of
/// its own.
///
/// Why threads of its own rather than tokio's blocking pool: a count is a few microseconds of
/// work per request, and `spawn_blocking` per request (a pool queue, a condvar wake, a join
/// handle) cost more than the count itself, a quarter of the throughput on streams without
/// usage. Long-lived threads fed by a channel stay busy under load and are woken only when idle.
/// They end when the last handle of the tokenizer is dropped (the run is over).
#[derive(Clone, Default)]
pub struct Tokenizer {
    bpe: Arc<OnceLock<Option<CoreBPE>>>,
    /// Started on the first count; `None` inside when no thread could be started.
    jobs: Arc<OnceLock<Option<mpsc::Sender<Job>>>>,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("loaded", &self.bpe.get().is_some())
            .finish()
    }
}

impl Tokenizer {
    /// A tokenizer that loads on first use.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of cl100k_base tokens in `text`, or None if the tokenizer could not be loaded or
    /// failed. Blocks the calling thread: from async code use [`Tokenizer::count_off_thread`].
    pub fn count(&self, text: &str) -> Option<u64> {
        count_with(&self.bpe, text)
    }

    /// Counts `text` on the tokenizer's own threads (never an I/O thread) and hands the text
    /// back (it is the caller's reused buffer). None if the tokenizer could not be loaded or
    /// failed; the caller falls back to the event count.
    pub async fn count_off_thread(&self, text: String) -> (Option<u64>, String) {
        let Some(jobs) = self.jobs.get_or_init(|| self.start_threads()) else {
            return (None, text);
        };
        let (tx, rx) = oneshot::channel();
        if let Err(mpsc::SendError((text, _))) = jobs.send((text, tx)) {
            return (None, text);
        }
        // A counting thread that died loses the text: start afresh.
        rx.await.unwrap_or_default()
    }

    /// Starts the counting threads: one per two cores (the I/O threads keep the rest), at least
    /// one. They share one queue and end when every sender is gone.
    fn start_threads(&self) -> Option<mpsc::Sender<Job>> {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut started = 0;
        for i in 0..(cores / 2).max(1) {
            let (rx, bpe) = (rx.clone(), self.bpe.clone());
            let thread = std::thread::Builder::new()
                .name(format!("gsai-tokens-{i}"))
                .spawn(move || loop {
                    let job = rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
                    let Ok((text, reply)) = job else { return };
                    let n = count_with(&bpe, &text);
                    let _ = reply.send((n, text));
                });
            started += usize::from(thread.is_ok());
        }
        (started > 0).then_some(tx)
    }
}

/// The count of [`Tokenizer::count`], loading the tokenizer into `bpe` on first use.
fn count_with(bpe: &OnceLock<Option<CoreBPE>>, text: &str) -> Option<u64> {
    let bpe = bpe
        .get_or_init(|| {
            std::panic::catch_unwind(tiktoken_rs::cl100k_base)
                .ok()
                .and_then(Result::ok)
        })
        .as_ref()?;
    let mut total = 0u64;
    for piece in pieces(text) {
        // A tokenizer defect must cost one request its count, never the counting thread.
        let n =
            std::panic::catch_unwind(AssertUnwindSafe(|| bpe.encode_ordinary(piece).len())).ok()?;
        total += n as u64;
    }
    Some(total)
}

/// `text` in pieces whose token counts add up to the whole text's (exactly, unless a run of more
/// than [`MAX_WORD_BYTES`] has no space to cut at), none with a run longer than that.
pub(crate) fn pieces(text: &str) -> impl Iterator<Item = &str> {
    let b = text.as_bytes();
    let mut start = 0;
    let mut last_cut = 0;
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < b.len() {
            i += 1;
            if i >= b.len() {
                break;
            }
            // tiktoken's pre-tokenizer never lets a piece run from a non-space over a space, so
            // a cut before such a space changes no count.
            if b[i] == b' ' && !b[i - 1].is_ascii_whitespace() {
                last_cut = i;
                if i - start >= PIECE_BYTES {
                    let piece = &text[start..i];
                    start = i;
                    return Some(piece);
                }
            } else if i - last_cut >= MAX_WORD_BYTES && text.is_char_boundary(i) {
                let piece = &text[start..i];
                start = i;
                last_cut = i;
                return Some(piece);
            }
        }
        (start < b.len()).then(|| {
            let piece = &text[start..];
            start = b.len();
            piece
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn counts_cl100k_tokens() {
        let t = Tokenizer::new();
        assert_eq!(t.count("hello world"), Some(2));
        assert_eq!(t.count(""), Some(0));
    }

    #[test]
    fn pieces_cover_the_text_and_bound_runs() {
        let text = format!("{} {} end", "a".repeat(1000), "é".repeat(700));
        let joined: String = pieces(&text).collect();
        assert_eq!(joined, text);
        for p in pieces(&text) {
            let longest_run = p.split(' ').map(str::len).max().unwrap_or(0);
            assert!(longest_run <= MAX_WORD_BYTES + 4, "{longest_run}");
        }
        assert_eq!(pieces("").count(), 0);
        assert_eq!(pieces("x").collect::<Vec<_>>(), ["x"]);
    }

    #[test]
    fn ordinary_text_counts_exactly_as_one_call() {
        let t = Tokenizer::new();
        let text = "The quick brown fox, 1234567 times; don't stop!\n\n  Indented   line.\t\u{4f60}\u{597d} ".repeat(400);
        assert!(pieces(&text).count() > 2);
        let whole = tiktoken_rs::cl100k_base()
            .unwrap()
            .encode_ordinary(&text)
            .len() as u64;
        assert_eq!(t.count(&text), Some(whole));
    }

    #[test]
    fn one_huge_word_counts_in_linear_time_without_overflow() {
        let t = Tokenizer::new();
        t.count("warm up").unwrap();
        // Unpieced, 400,000 letters took ~54 s and 1,000,000 overflowed the stack.
        let began = Instant::now();
        let n = t.count(&"a".repeat(1_000_000)).unwrap();
        assert!(n > 1000, "{n}");
        // Tolerance for a loaded 2-core debug build; the quadratic path takes minutes.
        assert!(
            began.elapsed() < Duration::from_secs(20),
            "{:?}",
            began.elapsed()
        );
    }
}
