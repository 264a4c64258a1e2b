//! The well-known series of LLM servers, in one table ([`ENGINES`]): running and waiting
//! requests, KV-cache usage and the server's TTFT histogram for vLLM, SGLang, TGI and llama.cpp
//! (names from `research/llm-apis.md`). [`overviews`] reads them out of scraped series for the
//! reports' and the web UI's charts; [`server_ttft`] turns the TTFT histogram into the server's
//! own p50/p99 over the test, to set beside the client's.

use super::series::Series;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The well-known series of one server family.
#[derive(Debug)]
pub struct Engine {
    /// Display name.
    pub name: &'static str,
    /// Gauges of requests being processed (summed over label sets).
    pub running: &'static [&'static str],
    /// Gauges of requests queued (summed over label sets).
    pub waiting: &'static [&'static str],
    /// Gauges of KV-cache use as a fraction 0..1 (the highest label set is shown, in %).
    pub kv_usage: &'static [&'static str],
    /// Histograms (family names, in seconds) of the server's time to first token.
    pub ttft: &'static [&'static str],
}

/// Every server family whose series are charted. The first name of a list that is present
/// wins (newer names first).
pub const ENGINES: &[Engine] = &[
    Engine {
        name: "vLLM",
        running: &["vllm:num_requests_running"],
        waiting: &["vllm:num_requests_waiting"],
        kv_usage: &["vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"],
        ttft: &["vllm:time_to_first_token_seconds"],
    },
    Engine {
        name: "SGLang",
        running: &["sglang:num_running_reqs"],
        waiting: &["sglang:num_queue_reqs"],
        kv_usage: &["sglang:token_usage"],
        ttft: &["sglang:time_to_first_token_seconds"],
    },
    Engine {
        name: "TGI",
        running: &["tgi_batch_current_size"],
        waiting: &["tgi_queue_size"],
        kv_usage: &[],
        ttft: &[],
    },
    Engine {
        name: "llama.cpp",
        running: &["llamacpp:requests_processing"],
        waiting: &["llamacpp:requests_deferred"],
        kv_usage: &["llamacpp:kv_cache_usage_ratio"],
        ttft: &[],
    },
];

/// The well-known series of one endpoint, ready to chart (`[unix_s, value]` points).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Overview {
    /// The metrics URL.
    pub url: String,
    /// Which server family's names were found.
    pub engine: String,
    /// Requests running on the server.
    pub running: Vec<[f64; 2]>,
    /// Requests waiting in the server's queue.
    pub waiting: Vec<[f64; 2]>,
    /// KV-cache usage, percent.
    pub kv_cache_pct: Vec<[f64; 2]>,
    /// The server's TTFT p50 between consecutive scrapes, ms (null: no first token then).
    pub ttft_p50_ms: Vec<[Option<f64>; 2]>,
    /// The server's TTFT p99 between consecutive scrapes, ms.
    pub ttft_p99_ms: Vec<[Option<f64>; 2]>,
    /// The name of the TTFT histogram used, if any.
    pub ttft_source: Option<String>,
}

/// The server's TTFT over the whole test, from its histogram.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServerTtft {
    /// The metrics URL.
    pub url: String,
    /// The histogram used.
    pub source: String,
    /// First tokens the server counted during the test.
    pub count: f64,
    /// Median, ms (interpolated within histogram buckets, as Prometheus' histogram_quantile).
    pub p50_ms: Option<f64>,
    /// 99th percentile, ms.
    pub p99_ms: Option<f64>,
    /// The bucket the median falls in, `[lower, upper]` ms (upper null: no bound): the
    /// histogram cannot place it more precisely.
    pub p50_bucket_ms: Option<[f64; 2]>,
    /// The bucket the 99th percentile falls in, ms.
    pub p99_bucket_ms: Option<[f64; 2]>,
}

fn url_series<'a>(all: &'a [Series], url: &'a str) -> impl Iterator<Item = &'a Series> + 'a {
    all.iter().filter(move |s| s.url == url)
}

/// The first name of `names` present at `url`, with its series.
fn first_present<'a>(
    all: &'a [Series],
    url: &'a str,
    names: &[&'static str],
) -> Option<(&'static str, Vec<&'a Series>)> {
    names.iter().find_map(|n| {
        let found: Vec<&Series> = url_series(all, url).filter(|s| s.name == *n).collect();
        (!found.is_empty()).then_some((*n, found))
    })
}

/// Combines the points of several series at equal timestamps.
fn combine(series: &[&Series], f: fn(f64, f64) -> f64, scale: f64) -> Vec<[f64; 2]> {
    let mut at: BTreeMap<u64, f64> = BTreeMap::new();
    for s in series {
        for [t, v] in &s.points {
            if v.is_finite() {
                at.entry(t.to_bits())
                    .and_modify(|x| *x = f(*x, *v))
                    .or_insert(*v);
            }
        }
    }
    let mut out: Vec<[f64; 2]> = at
        .into_iter()
        .map(|(t, v)| [f64::from_bits(t), v * scale])
        .collect();
    out.sort_by(|a, b| a[0].total_cmp(&b[0]));
    out
}

/// Cumulative bucket counts of histogram `family` at `url`, summed over label sets: for each
/// scrape time, `(le, count)` sorted by `le`.
fn buckets_over_time(all: &[Series], url: &str, family: &str) -> Vec<(f64, Vec<(f64, f64)>)> {
    let name = format!("{family}_bucket");
    let mut at: BTreeMap<u64, BTreeMap<u64, f64>> = BTreeMap::new();
    for s in url_series(all, url).filter(|s| s.name == name) {
        let Some(le) = s
            .labels
            .get("le")
            .and_then(|v| v.trim().parse::<f64>().ok())
        else {
            continue;
        };
        for [t, v] in &s.points {
            if v.is_finite() {
                *at.entry(t.to_bits())
                    .or_default()
                    .entry(ordered(le))
                    .or_default() += v;
            }
        }
    }
    let mut out: Vec<(f64, Vec<(f64, f64)>)> = at
        .into_iter()
        .map(|(t, b)| {
            let mut b: Vec<(f64, f64)> = b.into_iter().map(|(k, v)| (unordered(k), v)).collect();
            b.sort_by(|x, y| x.0.total_cmp(&y.0));
            (f64::from_bits(t), b)
        })
        .collect();
    out.sort_by(|a, b| a.0.total_cmp(&b.0));
    out
}

/// A key that sorts like the float (finite and infinite alike).
fn ordered(x: f64) -> u64 {
    let b = x.to_bits();
    if x.is_sign_negative() {
        !b
    } else {
        b | (1 << 63)
    }
}

fn unordered(k: u64) -> f64 {
    if k & (1 << 63) != 0 {
        f64::from_bits(k & !(1 << 63))
    } else {
        f64::from_bits(!k)
    }
}

/// The increase of each bucket from `a` to `b` (a restarted server: `b` itself).
fn delta(a: &[(f64, f64)], b: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let restarted = b
        .iter()
        .any(|(le, v)| a.iter().any(|(l, u)| l == le && v < u));
    b.iter()
        .map(|(le, v)| {
            let before = a.iter().find(|(l, _)| l == le).map_or(0.0, |x| x.1);
            (*le, if restarted { *v } else { v - before })
        })
        .collect()
}

/// The `q` quantile of cumulative buckets `(le, count)` sorted by `le`, interpolated linearly
/// within the bucket as Prometheus' histogram_quantile does; `None` when empty.
pub fn quantile(buckets: &[(f64, f64)], q: f64) -> Option<f64> {
    // A peer may send counts that decrease with le: read them as non-decreasing.
    let mut running = 0.0f64;
    let cum: Vec<(f64, f64)> = buckets
        .iter()
        .map(|(le, c)| {
            running = running.max(*c);
            (*le, running)
        })
        .collect();
    let total = cum.last()?.1;
    // Also refuses NaN.
    if total.is_nan() || total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let i = cum.iter().position(|(_, c)| *c >= rank)?;
    let (le, c) = cum[i];
    if le.is_infinite() {
        // Past the last finite bound: that bound is the best estimate (as Prometheus).
        return cum[..i].last().map(|x| x.0).or(Some(0.0));
    }
    let (lower, c_lower) = if i == 0 { (0.0, 0.0) } else { cum[i - 1] };
    let lower = if lower.is_finite() { lower } else { 0.0 };
    if c <= c_lower {
        return Some(le);
    }
    Some(lower + (le - lower) * (rank - c_lower) / (c - c_lower))
}

/// The bucket `(lower, upper]` that holds the `q` quantile of cumulative buckets sorted by `le`.
pub fn quantile_bucket(buckets: &[(f64, f64)], q: f64) -> Option<(f64, f64)> {
    let mut running = 0.0f64;
    let mut lower = 0.0;
    let total = buckets.iter().map(|b| b.1).fold(0.0, f64::max);
    // Also refuses NaN.
    if total.is_nan() || total <= 0.0 {
        return None;
    }
    for (le, c) in buckets {
        running = running.max(*c);
        if running >= q * total {
            return Some((lower, *le));
        }
        lower = *le;
    }
    None
}

fn urls(all: &[Series]) -> Vec<String> {
    let mut u: Vec<String> = Vec::new();
    for s in all {
        if !u.contains(&s.url) {
            u.push(s.url.clone());
        }
    }
    u
}

/// The well-known series of each endpoint that has any.
pub fn overviews(all: &[Series]) -> Vec<Overview> {
    let mut out = Vec::new();
    for url in urls(all) {
        for engine in ENGINES {
            let running = first_present(all, &url, engine.running);
            let waiting = first_present(all, &url, engine.waiting);
            let kv = first_present(all, &url, engine.kv_usage);
            let ttft = engine
                .ttft
                .iter()
                .find(|f| !buckets_over_time(all, &url, f).is_empty());
            if running.is_none() && waiting.is_none() && kv.is_none() && ttft.is_none() {
                continue;
            }
            let mut o = Overview {
                url: url.clone(),
                engine: engine.name.to_string(),
                running: running.map_or_else(Vec::new, |(_, s)| combine(&s, |a, b| a + b, 1.0)),
                waiting: waiting.map_or_else(Vec::new, |(_, s)| combine(&s, |a, b| a + b, 1.0)),
                kv_cache_pct: kv.map_or_else(Vec::new, |(_, s)| combine(&s, f64::max, 100.0)),
                ..Overview::default()
            };
            if let Some(family) = ttft {
                let over = buckets_over_time(all, &url, family);
                for w in over.windows(2) {
                    let d = delta(&w[0].1, &w[1].1);
                    let ms = |q| quantile(&d, q).map(|s| s * 1000.0);
                    o.ttft_p50_ms.push([Some(w[1].0), ms(0.5)]);
                    o.ttft_p99_ms.push([Some(w[1].0), ms(0.99)]);
                }
                o.ttft_source = Some(family.to_string());
            }
            out.push(o);
            break;
        }
    }
    out
}

/// The server's TTFT over the test (last scrape minus first), per endpoint with a known TTFT
/// histogram that counted at least one first token.
pub fn server_ttft(all: &[Series]) -> Vec<ServerTtft> {
    let mut out = Vec::new();
    for url in urls(all) {
        for family in ENGINES.iter().flat_map(|e| e.ttft.iter()) {
            let over = buckets_over_time(all, &url, family);
            let (Some(first), Some(last)) = (over.first(), over.last()) else {
                continue;
            };
            let d = if over.len() > 1 {
                delta(&first.1, &last.1)
            } else {
                last.1.clone()
            };
            let count = d.iter().map(|x| x.1).fold(0.0, f64::max);
            if count > 0.0 {
                out.push(ServerTtft {
                    url: url.clone(),
                    source: family.to_string(),
                    count,
                    p50_ms: quantile(&d, 0.5).map(|s| s * 1000.0),
                    p99_ms: quantile(&d, 0.99).map(|s| s * 1000.0),
                    p50_bucket_ms: quantile_bucket(&d, 0.5).map(|(a, b)| [a * 1000.0, b * 1000.0]),
                    p99_bucket_ms: quantile_bucket(&d, 0.99).map(|(a, b)| [a * 1000.0, b * 1000.0]),
                });
            }
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::parse::SeriesKind;

    fn series(name: &str, labels: &[(&str, &str)], points: &[[f64; 2]]) -> Series {
        Series {
            url: "http://m/metrics".into(),
            name: name.into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            kind: SeriesKind::Gauge,
            points: points.to_vec(),
            rate_per_s: Vec::new(),
        }
    }

    #[test]
    fn quantiles_interpolate_like_prometheus() {
        let b = [(0.1, 50.0), (0.2, 100.0), (f64::INFINITY, 100.0)];
        assert!((quantile(&b, 0.5).unwrap() - 0.1).abs() < 1e-12);
        assert!((quantile(&b, 0.75).unwrap() - 0.15).abs() < 1e-12);
        assert_eq!(quantile(&[(0.1, 0.0), (f64::INFINITY, 0.0)], 0.5), None);
        // Past the last finite bound: that bound.
        assert_eq!(
            quantile(&[(0.1, 1.0), (f64::INFINITY, 10.0)], 0.99),
            Some(0.1)
        );
        assert_eq!(quantile(&[], 0.5), None);
        // Decreasing counts from a hostile peer do not break it.
        assert!(quantile(&[(0.1, 9.0), (0.2, 3.0), (f64::INFINITY, 9.0)], 0.5).is_some());
    }

    #[test]
    fn vllm_overview_and_server_ttft() {
        let t = [[10.0, 0.0], [11.0, 0.0], [12.0, 0.0]];
        let with = |vals: [f64; 3]| -> Vec<[f64; 2]> {
            t.iter().zip(vals).map(|(p, v)| [p[0], v]).collect()
        };
        let all = vec![
            series(
                "vllm:num_requests_running",
                &[("model_name", "a")],
                &with([1.0, 2.0, 3.0]),
            ),
            series(
                "vllm:num_requests_running",
                &[("model_name", "b")],
                &with([1.0, 1.0, 1.0]),
            ),
            series("vllm:num_requests_waiting", &[], &with([0.0, 5.0, 0.0])),
            series("vllm:gpu_cache_usage_perc", &[], &with([0.1, 0.5, 0.25])),
            // 10 first tokens before the test, then 20 under 0.1 s and 20 under 0.2 s.
            series(
                "vllm:time_to_first_token_seconds_bucket",
                &[("le", "0.1")],
                &with([10.0, 30.0, 30.0]),
            ),
            series(
                "vllm:time_to_first_token_seconds_bucket",
                &[("le", "0.2")],
                &with([10.0, 30.0, 50.0]),
            ),
            series(
                "vllm:time_to_first_token_seconds_bucket",
                &[("le", "+Inf")],
                &with([10.0, 30.0, 50.0]),
            ),
        ];
        let o = overviews(&all);
        assert_eq!(o.len(), 1);
        let o = &o[0];
        assert_eq!(o.engine, "vLLM");
        assert_eq!(o.running, with([2.0, 3.0, 4.0]));
        assert_eq!(o.waiting, with([0.0, 5.0, 0.0]));
        assert_eq!(o.kv_cache_pct, with([10.0, 50.0, 25.0]));
        assert_eq!(o.ttft_p50_ms.len(), 2);
        assert!((o.ttft_p50_ms[0][1].unwrap() - 50.0).abs() < 1e-9);
        assert!((o.ttft_p50_ms[1][1].unwrap() - 150.0).abs() < 1e-9);
        let s = server_ttft(&all);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].count, 40.0);
        assert!((s[0].p50_ms.unwrap() - 100.0).abs() < 1e-9);
        assert!((s[0].p99_ms.unwrap() - 198.0).abs() < 1e-9);
        assert_eq!(s[0].source, "vllm:time_to_first_token_seconds");
        assert_eq!(s[0].p50_bucket_ms, Some([0.0, 100.0]));
        assert_eq!(s[0].p99_bucket_ms, Some([100.0, 200.0]));
    }

    #[test]
    fn nothing_known_gives_nothing() {
        let all = vec![series("process_cpu_seconds_total", &[], &[[1.0, 1.0]])];
        assert!(overviews(&all).is_empty());
        assert!(server_ttft(&all).is_empty());
    }

    #[test]
    fn float_keys_sort_like_floats() {
        let mut v = [f64::INFINITY, 0.5, -1.0, 0.0, 10.0];
        v.sort_by_key(|x| ordered(*x));
        assert_eq!(v, [-1.0, 0.0, 0.5, 10.0, f64::INFINITY]);
        assert!(v.iter().all(|x| unordered(ordered(*x)) == *x));
    }
}
