//! Golden tests: the fixture's result renders to exactly these CSV texts, and the texts follow
//! Locust's rules (headers, row order, CRLF, number formats, `N/A`).

use super::*;
use crate::report::fixture;
use crate::report::history::HistoryBuilder;

/// Locust 2.x `StatsCSV.requests_csv_columns` with the default `PERCENTILES_TO_REPORT`.
const LOCUST_STATS_HEADER: &str = "Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,Min Response Time,Max Response Time,Average Content Size,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%";

/// Locust 2.x `StatsCSVFileWriter.stats_history_csv_columns`.
const LOCUST_HISTORY_HEADER: &str = "Timestamp,User Count,Type,Name,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%,Total Request Count,Total Failure Count,Total Median Response Time,Total Average Response Time,Total Min Response Time,Total Max Response Time,Total Average Content Size";

fn crlf(lines: &[&str]) -> String {
    lines.iter().map(|l| format!("{l}\r\n")).collect()
}

#[test]
fn stats_csv_golden() {
    let r = fixture::result();
    assert_eq!(
        stats_csv(&r.kinds, &r.stats),
        crlf(&[
            LOCUST_STATS_HEADER,
            "POST,/api/chat/completions,20,1,326,333.0,200.0,466.0,1019.0,1.9563728846718182,0.09781864423359092,326,382,396,410,438,452,466,466,466,466,466",
            "GET,/api/models,20,4,333,340.0,207.0,473.0,1020.0,1.9563728846718182,0.3912745769343637,333,389,403,417,445,459,473,473,473,473,473",
            ",Aggregated,40,5,333,336.5,200.0,473.0,1019.5,3.9127457693436365,0.48909322116795456,333,382,403,417,445,459,473,473,473,473,473",
        ])
    );
}

#[test]
fn empty_stats_follow_locusts_zero_and_na_cells() {
    // Locust: median 0, average 0.0, min `None or 0`, max 0, content 0, rates 0.0, N/A percentiles.
    let kinds = fixture::sample().0;
    assert_eq!(
        stats_csv(&kinds, &StatsSet::new(2)),
        crlf(&[
            LOCUST_STATS_HEADER,
            ",Aggregated,0,0,0,0.0,0,0,0,0.0,0.0,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A",
        ]),
        "rows without requests are left out, as Locust has no entry for them"
    );
}

#[test]
fn failures_csv_golden_with_quoting() {
    let r = fixture::result();
    assert_eq!(
        failures_csv(&r.kinds, &r.stats),
        crlf(&[
            "Method,Name,Error,Occurrences,First Seen,Last Seen",
            "GET,/api/models,Received status code: 500,4,2023-11-14T22:13:20Z,2023-11-14T22:13:28Z",
            "POST,/api/chat/completions,\"Received status code: 429 (detail: \"\"slow down, please\"\")\",1,2023-11-14T22:13:22Z,2023-11-14T22:13:22Z",
        ])
    );
}

#[test]
fn exceptions_csv_is_locusts_header() {
    assert_eq!(exceptions_csv(), "Count,Message,Traceback,Nodes\r\n");
}

fn two_ticks() -> Vec<HistoryTick> {
    let r = fixture::result();
    let (_, full) = fixture::sample();
    let mut half = StatsSet::new(2);
    half.rows[0].merge(&full.rows[0]);
    let mut b = HistoryBuilder::new(r.started_unix_s);
    vec![
        b.push(r.started_unix_s + 1.0, 2, &r.kinds, &half),
        b.push(r.started_unix_s + 2.0, 4, &r.kinds, &full),
    ]
}

#[test]
fn history_csv_golden_aggregated_with_cumulative_percentiles() {
    assert_eq!(
        history_csv(&two_ticks(), false),
        crlf(&[
            LOCUST_HISTORY_HEADER,
            "1700000001,2,,Aggregated,20.000000,1.000000,326,382,396,410,438,452,466,466,466,466,466,20,1,326,333.0,200.0,466.0,1019.0",
            "1700000002,4,,Aggregated,20.000000,2.500000,333,382,403,417,445,459,473,473,473,473,473,40,5,333,336.5,200.0,473.0,1019.5",
        ])
    );
}

#[test]
fn history_csv_golden_full_history_rows_sorted_then_aggregated() {
    assert_eq!(
        history_csv(&two_ticks(), true),
        crlf(&[
            LOCUST_HISTORY_HEADER,
            "1700000001,2,POST,/api/chat/completions,20.000000,1.000000,326,382,396,410,438,452,466,466,466,466,466,20,1,326,333.0,200.0,466.0,1019.0",
            "1700000001,2,,Aggregated,20.000000,1.000000,326,382,396,410,438,452,466,466,466,466,466,20,1,326,333.0,200.0,466.0,1019.0",
            "1700000002,4,POST,/api/chat/completions,10.000000,0.500000,326,382,396,410,438,452,466,466,466,466,466,20,1,326,333.0,200.0,466.0,1019.0",
            "1700000002,4,GET,/api/models,10.000000,2.000000,333,389,403,417,445,459,473,473,473,473,473,20,4,333,340.0,207.0,473.0,1020.0",
            "1700000002,4,,Aggregated,20.000000,2.500000,333,382,403,417,445,459,473,473,473,473,473,40,5,333,336.5,200.0,473.0,1019.5",
        ])
    );
}

#[test]
fn history_of_an_empty_tick_has_na_percentiles() {
    let kinds = fixture::sample().0;
    let tick = HistoryBuilder::new(0.0).push(1.0, 0, &kinds, &StatsSet::new(2));
    assert_eq!(
        history_rows(&tick, false),
        "1,0,,Aggregated,0.000000,0.000000,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,0,0,0,0.0,0,0,0\r\n"
    );
}

#[test]
fn llm_stats_csv_golden() {
    let r = fixture::result();
    let text = llm_stats_csv(&r.kinds, &r.stats);
    let lines: Vec<&str> = text.split("\r\n").collect();
    assert_eq!(
        lines.len(),
        5,
        "header, 2 kinds, Aggregated, and the final CRLF"
    );
    assert_eq!(
        lines[0],
        "Type,Name,Request Count,Failure Count,Success Count,Good Count,Good Fraction,Goodput/s,Total Output Tokens,Output Tokens/s (total),\
TTFB Count,TTFB Mean,TTFB 50%,TTFB 90%,TTFB 95%,TTFB 99%,TTFB Max,\
TTFT Count,TTFT Mean,TTFT 50%,TTFT 90%,TTFT 95%,TTFT 99%,TTFT Max,\
TPOT Count,TPOT Mean,TPOT 50%,TPOT 90%,TPOT 95%,TPOT 99%,TPOT Max,\
ITL Count,ITL Mean,ITL 50%,ITL 90%,ITL 95%,ITL 99%,ITL Max,\
E2E Count,E2E Mean,E2E 50%,E2E 90%,E2E 95%,E2E 99%,E2E Max,\
Output Tokens Count,Output Tokens Mean,Output Tokens 50%,Output Tokens 90%,Output Tokens 95%,Output Tokens 99%,Output Tokens Max,\
Output Tokens/s Count,Output Tokens/s Mean,Output Tokens/s 50%,Output Tokens/s 90%,Output Tokens/s 95%,Output Tokens/s 99%,Output Tokens/s Max,\
Response Time Count,Response Time Mean,Response Time 50%,Response Time 90%,Response Time 95%,Response Time 99%,Response Time Max,\
Connect Count,Connect Mean,Connect 50%,Connect 90%,Connect 95%,Connect 99%,Connect Max,\
TTFE Count,TTFE Mean,TTFE 50%,TTFE 90%,TTFE 95%,TTFE 99%,TTFE Max,\
Schedule Lag Count,Schedule Lag Mean,Schedule Lag 50%,Schedule Lag 90%,Schedule Lag 95%,Schedule Lag 99%,Schedule Lag Max,\
TTFT From Intended Count,TTFT From Intended Mean,TTFT From Intended 50%,TTFT From Intended 90%,TTFT From Intended 95%,TTFT From Intended 99%,TTFT From Intended Max,\
E2E From Intended Count,E2E From Intended Mean,E2E From Intended 50%,E2E From Intended 90%,E2E From Intended 95%,E2E From Intended 99%,E2E From Intended Max,\
TTFT Answer Count,TTFT Answer Mean,TTFT Answer 50%,TTFT Answer 90%,TTFT Answer 95%,TTFT Answer 99%,TTFT Answer Max,\
Reasoning Tokens Count,Reasoning Tokens Mean,Reasoning Tokens 50%,Reasoning Tokens 90%,Reasoning Tokens 95%,Reasoning Tokens 99%,Reasoning Tokens Max,\
Answer Tokens Count,Answer Tokens Mean,Answer Tokens 50%,Answer Tokens 90%,Answer Tokens 95%,Answer Tokens 99%,Answer Tokens Max,\
Request Bytes Count,Request Bytes Mean,Request Bytes 50%,Request Bytes 90%,Request Bytes 95%,Request Bytes 99%,Request Bytes Max,\
Tokens From Usage,Tokens From Tokenizer,Tokens From Events"
    );
    assert_eq!(
        lines[3],
        ",Aggregated,40,5,35,23,0.575,2.249828817372591,1050,102.70957644527046,\
35,40.0,40.031,56.031,58.015,59.0,59.0,\
35,110.0,110.015,158.079,164.095,167.0,167.0,\
35,8.879771428571429,7.931,12.775,15.407,16.666,16.666,\
315,10.42,10.423,10.807,10.823,10.839,10.839,\
35,340.0,340.223,452.095,466.175,473.0,473.0,\
35,30.0,30.0,46.0,48.0,49.0,49.0,\
35,84.71291428571429,88.255,101.823,103.039,103.594,103.594,\
40,336.5,333.055,445.183,459.007,473.0,473.0,\
0,N/A,N/A,N/A,N/A,N/A,N/A,\
0,N/A,N/A,N/A,N/A,N/A,N/A,\
10,0.0,0.0,0.0,0.0,0.0,0.0,\
9,107.33333333333333,110.015,158.0,158.0,158.0,158.0,\
9,333.77777777777777,340.223,452.0,452.0,452.0,452.0,\
0,N/A,N/A,N/A,N/A,N/A,N/A,\
0,N/A,N/A,N/A,N/A,N/A,N/A,\
35,30.0,30.0,46.0,48.0,49.0,49.0,\
0,N/A,N/A,N/A,N/A,N/A,N/A,\
12,12,11"
    );
    assert!(lines[1].starts_with("POST,/api/chat/completions,20,1,19,12,0.6,"));
    assert!(lines[2].starts_with("GET,/api/models,20,4,16,11,0.55,"));
    let empty = llm_stats_csv(&r.kinds, &StatsSet::new(2));
    assert!(
        empty.contains(",Aggregated,0,0,0,0,N/A,0.0,0,0.0,0,N/A,N/A,N/A,N/A,N/A,N/A,0,N/A"),
        "{empty}"
    );
}

#[test]
fn every_file_has_a_constant_column_count_and_crlf_ends() {
    let r = fixture::result();
    for text in [
        stats_csv(&r.kinds, &r.stats),
        llm_stats_csv(&r.kinds, &r.stats),
        history_csv(&two_ticks(), true),
    ] {
        assert!(text.ends_with("\r\n"));
        assert!(!text.replace("\r\n", "").contains('\n'));
        let counts: Vec<usize> = text.lines().map(|l| l.split(',').count()).collect();
        assert!(counts.iter().all(|c| *c == counts[0]), "{counts:?}");
    }
}

#[test]
fn python_float_repr() {
    for (v, s) in [
        (0.0, "0.0"),
        (3413.0, "3413.0"),
        (141.367, "141.367"),
        (0.1 + 0.2, "0.30000000000000004"),
        (1.9563728846718182, "1.9563728846718182"),
        (0.0001, "0.0001"),
        (0.00005, "5e-05"),
        (1.5e-7, "1.5e-07"),
        (123456789.0, "123456789.0"),
        (1e16, "1e+16"),
        (2.5e20, "2.5e+20"),
        (-2.0, "-2.0"),
    ] {
        assert_eq!(py_float(v), s, "{v}");
    }
}

#[test]
fn csv_quoting_is_pythons_minimal_quoting() {
    let mut out = String::new();
    line(&mut out, ["plain", "a,b", "say \"hi\"", "two\nlines", ""]);
    assert_eq!(out, "plain,\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\",\r\n");
}

#[test]
fn utc_timestamps() {
    assert_eq!(utc_iso(0.0), "1970-01-01T00:00:00Z");
    assert_eq!(utc_iso(1_700_000_000.9), "2023-11-14T22:13:20Z");
    assert_eq!(utc_iso(951_782_400.0), "2000-02-29T00:00:00Z");
    assert_eq!(utc_iso(4_107_542_399.0), "2100-02-28T23:59:59Z");
}
