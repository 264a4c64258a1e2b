//! Property tests of everything a peer's bytes go through (ZMTP framing, the msgpack envelope,
//! the typed messages, the stats reader with its HDR histograms), fed mutated real messages:
//! nothing panics, and a counting allocator shows that memory follows the bytes received, never
//! a length a peer claims.

use super::locust_stats::{read_report, report_data, KindIndex, WorkerFigures};
use super::protocol::{Message, ToMaster, ToWorker};
use super::zmtp::{self, MAX_MESSAGE_BYTES};
use crate::metrics::{MetricId, RequestKind, StatsSet};
use proptest::prelude::*;
use rmpv::Value;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// Counts the current thread's allocations while a measurement is on. Const-initialized
/// thread locals without destructors never allocate, so using them here cannot recurse.
struct Counting;

thread_local! {
    static ON: Cell<bool> = const { Cell::new(false) };
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn track(grow: isize, request: usize) {
    let _ = ON.try_with(|on| {
        if on.get() {
            let live = LIVE.get() + grow;
            LIVE.set(live);
            PEAK.set(PEAK.get().max(live));
            LARGEST.set(LARGEST.get().max(request));
        }
    });
}

// SAFETY: every call is forwarded to the system allocator unchanged; only counters change.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        track(l.size() as isize, l.size());
        System.alloc(l)
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        track(l.size() as isize, l.size());
        System.alloc_zeroed(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        track(-(l.size() as isize), 0);
        System.dealloc(p, l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new_size: usize) -> *mut u8 {
        track(new_size as isize - l.size() as isize, new_size);
        System.realloc(p, l, new_size)
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `f` and returns the peak of its live allocations and its largest single request, bytes.
fn measure(f: impl FnOnce()) -> (usize, usize) {
    LIVE.set(0);
    PEAK.set(0);
    LARGEST.set(0);
    ON.set(true);
    f();
    ON.set(false);
    (PEAK.get().max(0) as usize, LARGEST.get())
}

/// Polls a future that never waits (it reads from a slice) to completion.
fn ready<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

/// What a master and a worker do with a peer's bytes: frame, decode, parse, read stats.
fn digest(wire: &[u8]) {
    let mut r = wire;
    while let Ok(received) = ready(zmtp::read_message(&mut r, None)) {
        for frame in received.frames {
            let Ok(m) = Message::decode(&frame) else {
                continue;
            };
            let _ = ToWorker::parse(&m);
            if let Ok(ToMaster::Stats(data)) = ToMaster::parse(&m) {
                let mut kinds = KindIndex::default();
                let _ = read_report(&data, &mut kinds);
            }
        }
    }
}

/// Real messages: Locust's own (the fixtures its encoder made) and a gsai worker's stats
/// report with exact histograms.
fn corpus() -> Vec<Vec<u8>> {
    let mut set = StatsSet::new(2);
    for (i, row) in set.rows.iter_mut().enumerate() {
        row.requests = 40;
        row.failures = 1;
        for v in 0..40u64 {
            let us = 1_000 + v * 7_919 * (i as u64 + 1);
            for id in MetricId::ALL {
                row.metric_mut(id).record(us / (id.index() as u64 + 1));
            }
        }
    }
    let kinds = vec![
        RequestKind {
            method: "POST".into(),
            name: "/api/chat/completions".into(),
        },
        RequestKind {
            method: "GET".into(),
            name: "/api/models".into(),
        },
    ];
    let data = report_data(&kinds, &set, &[], &WorkerFigures::default(), 1.7e9, true);
    let ours = Message::new("stats", data, "host_0123").encode();
    let mut messages = vec![ours];
    for fixture in [
        &include_bytes!("../../tests/fixtures/locust/stats.bin")[..],
        include_bytes!("../../tests/fixtures/locust/spawn.bin"),
        include_bytes!("../../tests/fixtures/locust/heartbeat_worker.bin"),
        include_bytes!("../../tests/fixtures/locust/client_ready_version.bin"),
    ] {
        messages.push(fixture.to_vec());
    }
    messages
}

/// Values a length or count field is most dangerous at.
const EXTREMES: [u64; 6] = [0, 1, 0x7fff_ffff, u32::MAX as u64, 1 << 40, u64::MAX];

/// A mutation of a message's msgpack structure: an integer, or a window of a binary value (a
/// serialized histogram: its header holds the lengths), set to an extreme.
fn mutate_value(v: &mut Value, target: &mut usize, extreme: u64, offset: usize, width: usize) {
    match v {
        Value::Array(items) => items
            .iter_mut()
            .for_each(|i| mutate_value(i, target, extreme, offset, width)),
        Value::Map(entries) => entries.iter_mut().for_each(|(k, v)| {
            mutate_value(k, target, extreme, offset, width);
            mutate_value(v, target, extreme, offset, width);
        }),
        Value::Binary(b) if *target == 0 && !b.is_empty() => {
            let at = offset % b.len();
            let bytes = extreme.to_be_bytes();
            for (i, byte) in bytes[8 - width..].iter().enumerate() {
                if let Some(slot) = b.get_mut(at + i) {
                    *slot = *byte;
                }
            }
        }
        Value::Integer(_) if *target == 0 => *v = Value::from(extreme),
        _ => {}
    }
    *target = target.wrapping_sub(1);
}

#[derive(Clone, Debug)]
enum Mutation {
    /// Set byte `at` (modulo the length) to `value`.
    Byte { at: usize, value: u8 },
    /// Write an extreme value over `width` bytes at `at`.
    Window {
        at: usize,
        width: usize,
        extreme: u64,
    },
    /// Cut the message at `at`.
    Truncate { at: usize },
    /// Insert bytes at `at`.
    Insert { at: usize, bytes: Vec<u8> },
    /// Change the msgpack structure (see [`mutate_value`]).
    Structure {
        target: usize,
        offset: usize,
        width: usize,
        extreme: u64,
    },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let extreme = prop::sample::select(EXTREMES.to_vec());
    let width = prop::sample::select(vec![1usize, 2, 4, 8]);
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(at, value)| Mutation::Byte { at, value }),
        (any::<usize>(), width.clone(), extreme.clone())
            .prop_map(|(at, width, extreme)| Mutation::Window { at, width, extreme }),
        any::<usize>().prop_map(|at| Mutation::Truncate { at }),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
        (0usize..400, 0usize..48, width, extreme).prop_map(|(target, offset, width, extreme)| {
            Mutation::Structure {
                target,
                offset,
                width,
                extreme,
            }
        }),
    ]
}

fn apply(msg: &mut Vec<u8>, m: &Mutation) {
    let len = msg.len().max(1);
    match m {
        Mutation::Byte { at, value } => {
            if let Some(b) = msg.get_mut(at % len) {
                *b = *value;
            }
        }
        Mutation::Window { at, width, extreme } => {
            let at = at % len;
            for (i, byte) in extreme.to_be_bytes()[8 - width..].iter().enumerate() {
                if let Some(b) = msg.get_mut(at + i) {
                    *b = *byte;
                }
            }
        }
        Mutation::Truncate { at } => msg.truncate(at % len),
        Mutation::Insert { at, bytes } => {
            let at = at % len;
            msg.splice(at..at, bytes.iter().copied());
        }
        Mutation::Structure {
            target,
            offset,
            width,
            extreme,
        } => {
            if let Ok(mut v) = rmpv::decode::read_value(&mut msg.as_slice()) {
                let mut t = *target;
                mutate_value(&mut v, &mut t, *extreme, *offset, *width);
                msg.clear();
                let _ = rmpv::encode::write_value(msg, &v);
            }
        }
    }
}

/// Most a digest may hold at once: decoding msgpack turns each byte into at most one 32-byte
/// value (plus the vectors holding them), and the stats reader adds a few HDR histograms of at
/// most ~254 KB each (3 digits up to 2^40) for the rows it merges.
fn peak_limit(wire_bytes: usize) -> usize {
    64 * wire_bytes + (16 << 20)
}

/// Largest single allocation: a message's body grows by doubling up to twice its size, and a
/// histogram's counts stay far below.
const LARGEST_LIMIT: usize = 2 * MAX_MESSAGE_BYTES as usize;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn mutated_messages_never_panic_and_allocate_what_was_received(
        pick in any::<prop::sample::Index>(),
        mutations in prop::collection::vec(mutation(), 1..4),
        framed_wrongly in any::<bool>(),
    ) {
        let corpus = corpus();
        let mut msg = pick.get(&corpus).clone();
        for m in &mutations {
            apply(&mut msg, m);
        }
        // Mutate the ZMTP framing too: the header's length is then the mutated one.
        let mut wire = zmtp::encode_message(&[&msg]);
        if framed_wrongly {
            if let Some(m) = mutations.first() {
                apply(&mut wire, m);
            }
        }
        let (peak, largest) = measure(|| digest(&wire));
        prop_assert!(peak <= peak_limit(wire.len()), "peak {peak} bytes for {} received", wire.len());
        prop_assert!(largest <= LARGEST_LIMIT, "one allocation of {largest} bytes");
    }
}

/// The 4 GiB case itself, deterministic: a real report whose first histogram's header claims
/// a u32::MAX-byte payload is digested within the same bounds (hdrhistogram alone would
/// allocate the claim).
#[test]
fn a_histogram_claiming_4_gib_is_digested_within_bounds() {
    fn first_bin(v: &mut Value, hit: &mut bool) {
        match v {
            Value::Array(a) => a.iter_mut().for_each(|x| first_bin(x, hit)),
            Value::Map(m) => m.iter_mut().for_each(|(_, x)| first_bin(x, hit)),
            Value::Binary(b) if !*hit => {
                b[4..8].copy_from_slice(&u32::MAX.to_be_bytes());
                *hit = true;
            }
            _ => {}
        }
    }
    let mut v = rmpv::decode::read_value(&mut corpus()[0].as_slice()).unwrap();
    let mut hit = false;
    first_bin(&mut v, &mut hit);
    assert!(hit, "the report has a histogram");
    let mut msg = Vec::new();
    rmpv::encode::write_value(&mut msg, &v).unwrap();
    let wire = zmtp::encode_message(&[&msg]);
    let (peak, largest) = measure(|| digest(&wire));
    assert!(peak <= peak_limit(wire.len()), "peak {peak}");
    assert!(largest <= LARGEST_LIMIT, "largest {largest}");
}
