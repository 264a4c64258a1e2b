//! Unit and property tests for the SSE parser.

use super::*;
use proptest::prelude::*;

/// Owned copy of an event, for comparisons.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Owned {
    event: Option<Vec<u8>>,
    data: Vec<u8>,
}

fn parse_chunks(chunks: &[&[u8]]) -> Vec<Owned> {
    let mut parser = SseParser::new();
    let mut out = Vec::new();
    for chunk in chunks {
        let _ = parser
            .feed(chunk, |ev| {
                out.push(Owned {
                    event: ev.event.map(<[u8]>::to_vec),
                    data: ev.data.to_vec(),
                });
                ControlFlow::Continue(())
            })
            .expect("within limit");
    }
    out
}

fn data(s: &str) -> Owned {
    Owned {
        event: None,
        data: s.as_bytes().to_vec(),
    }
}

#[test]
fn line_ending_styles_and_data_without_space() {
    let input = b"data: a\n\ndata:b\r\n\r\ndata: c\r\rdata:  d\n\n";
    assert_eq!(
        parse_chunks(&[input]),
        vec![data("a"), data("b"), data("c"), data(" d")]
    );
}

#[test]
fn multi_line_data_comments_and_fields() {
    let input = b": keep-alive\nevent: delta\nid: 7\nretry: 1500\ndata: one\ndata: two\n\n";
    let mut parser = SseParser::new();
    let mut seen = Vec::new();
    let _ = parser
        .feed(input, |ev| {
            seen.push((ev.event.map(<[u8]>::to_vec), ev.data.to_vec()));
            ControlFlow::Continue(())
        })
        .unwrap();
    assert_eq!(seen, vec![(Some(b"delta".to_vec()), b"one\ntwo".to_vec())]);
    assert_eq!(parser.last_event_id(), b"7");
    assert_eq!(parser.retry_ms(), Some(1500));
}

#[test]
fn event_without_data_is_not_dispatched_and_unterminated_event_is_partial() {
    let mut parser = SseParser::new();
    let mut n = 0;
    let _ = parser
        .feed(b"event: x\n\ndata: half", |_| {
            n += 1;
            ControlFlow::Continue(())
        })
        .unwrap();
    assert_eq!(n, 0);
    assert!(parser.has_partial());
}

#[test]
fn bom_is_dropped_even_when_split() {
    let bytes = b"\xEF\xBB\xBFdata: x\n\n";
    assert_eq!(
        parse_chunks(&[&bytes[..1], &bytes[1..2], &bytes[2..]]),
        vec![data("x")]
    );
    assert_eq!(parse_chunks(&[bytes]), vec![data("x")]);
}

#[test]
fn crlf_split_between_chunks_is_one_line_end() {
    assert_eq!(
        parse_chunks(&[b"data: a\r", b"\n\r", b"\ndata: b\n\n"]),
        vec![data("a"), data("b")]
    );
}

#[test]
fn break_stops_parsing() {
    let mut parser = SseParser::new();
    let mut n = 0;
    let flow = parser
        .feed(b"data: 1\n\ndata: 2\n\n", |_| {
            n += 1;
            ControlFlow::Break(())
        })
        .unwrap();
    assert!(flow.is_break());
    assert_eq!(n, 1);
}

#[test]
fn oversized_line_is_an_error_and_stays_one() {
    let mut parser = SseParser::with_limit(8);
    let err = parser.feed(b"data: 0123456789", |_| ControlFlow::Continue(()));
    assert_eq!(err, Err(SseError::TooLarge { limit: 8 }));
    assert!(parser.feed(b"\n\n", |_| ControlFlow::Continue(())).is_err());
}

#[test]
fn reset_clears_state() {
    let mut parser = SseParser::new();
    let _ = parser
        .feed(b"data: partial", |_| ControlFlow::Continue(()))
        .unwrap();
    parser.reset();
    assert!(!parser.has_partial());
    assert_eq!(parse_chunks(&[b"data: x\n\n"]), vec![data("x")]);
}

/// Serializes events with a chosen line ending, optional space after the colon and comments.
fn serialize(
    events: &[(Option<String>, Vec<String>)],
    eol: &str,
    space: bool,
    comments: bool,
) -> Vec<u8> {
    let mut out = String::new();
    let sep = if space { ": " } else { ":" };
    for (event, lines) in events {
        if comments {
            out.push_str(": ping");
            out.push_str(eol);
        }
        if let Some(e) = event {
            out.push_str(&format!("event{sep}{e}{eol}"));
        }
        for line in lines {
            out.push_str(&format!("data{sep}{line}{eol}"));
        }
        out.push_str(eol);
    }
    out.into_bytes()
}

fn split_at_points(bytes: &[u8], mut points: Vec<usize>) -> Vec<&[u8]> {
    points.retain(|&p| p <= bytes.len());
    points.sort_unstable();
    let mut chunks = Vec::new();
    let mut last = 0;
    for p in points {
        chunks.push(&bytes[last..p]);
        last = p;
    }
    chunks.push(&bytes[last..]);
    chunks
}

proptest! {
    #[test]
    fn any_split_gives_the_same_events(
        events in prop::collection::vec(
            (prop::option::of("[a-z]{1,8}"), prop::collection::vec("[^\r\n]{0,20}", 1..4)),
            0..12,
        ),
        eol in prop::sample::select(vec!["\n", "\r\n", "\r"]),
        space in any::<bool>(),
        comments in any::<bool>(),
        points in prop::collection::vec(0usize..2000, 0..40),
    ) {
        // Without a space separator a data value that starts with a space keeps it; with one, one is stripped.
        let bytes = serialize(&events, eol, space, comments);
        let expected: Vec<Owned> = events
            .iter()
            .map(|(event, lines)| Owned {
                event: event.as_ref().map(|e| e.as_bytes().to_vec()),
                data: lines
                    .iter()
                    .map(|l| if space { l.clone() } else { l.strip_prefix(' ').unwrap_or(l).to_string() })
                    .collect::<Vec<_>>()
                    .join("\n")
                    .into_bytes(),
            })
            .collect();
        let chunks = split_at_points(&bytes, points);
        prop_assert_eq!(parse_chunks(&chunks), expected);
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_splits_agree(
        bytes in prop::collection::vec(any::<u8>(), 0..600),
        points in prop::collection::vec(0usize..600, 0..20),
    ) {
        let whole = parse_chunks(&[&bytes]);
        let chunks = split_at_points(&bytes, points);
        prop_assert_eq!(parse_chunks(&chunks), whole);
    }
}
