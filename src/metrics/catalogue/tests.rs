//! The catalogue is complete and unambiguous, and docs/metrics.md lists it.

use super::*;
use std::collections::HashSet;

#[test]
fn definitions_sit_at_their_index_and_all_is_complete() {
    for (i, id) in MetricId::ALL.into_iter().enumerate() {
        assert_eq!(id.index(), i);
        assert_eq!(id.def().id, id, "DEFS[{i}] defines another metric");
    }
}

#[test]
fn keys_names_and_columns_are_unique() {
    type Field = fn(&MetricDef) -> &'static str;
    let fields: [(&str, Field); 5] = [
        ("key", |d| d.key),
        ("name", |d| d.name),
        ("summary_key", |d| d.summary_key),
        ("label", |d| d.label),
        ("csv", |d| d.csv),
    ];
    for (what, get) in fields {
        let set: HashSet<&str> = MetricId::ALL.iter().map(|m| get(m.def())).collect();
        assert_eq!(set.len(), MetricId::COUNT, "{what} repeats");
    }
    // A name is never another metric's key, so parse() is unambiguous.
    for m in MetricId::ALL {
        assert_eq!(MetricId::parse(m.name()), Some(m));
        assert_eq!(MetricId::parse(m.key()), Some(m));
        assert_eq!(MetricId::from_key(m.key()), Some(m));
        assert_eq!(MetricId::parse(&m.name().to_uppercase()), Some(m));
    }
    assert_eq!(MetricId::from_key("ttft"), None);
}

#[test]
fn keys_carry_their_unit() {
    for m in MetricId::ALL {
        let d = m.def();
        match d.unit {
            Unit::Micros => assert!(d.key.ends_with("_us") && d.summary_key.ends_with("_ms")),
            Unit::MilliTokensPerS => assert!(d.key.ends_with("_milli")),
            Unit::Tokens => assert!(d.key.contains("tokens")),
            Unit::Bytes => assert!(d.key.ends_with("_bytes")),
        }
    }
}

/// docs/metrics.md lists every metric with its key, name, summary key and CSV name.
#[test]
fn docs_list_every_metric() {
    let doc = include_str!("../../../docs/metrics.md");
    for m in MetricId::ALL {
        let d = m.def();
        let row = format!(
            "| `{}` | `{}` | `{}` | `{}` |",
            d.key, d.name, d.summary_key, d.csv
        );
        assert!(doc.contains(&row), "docs/metrics.md lacks {row}");
    }
}

#[test]
fn serializes_as_its_name_and_reads_name_or_key() {
    assert_eq!(
        serde_json::to_string(&MetricId::TtftIntended).unwrap(),
        "\"ttft_intended\""
    );
    let back: MetricId = serde_json::from_str("\"e2e_us\"").unwrap();
    assert_eq!(back, MetricId::E2e);
    assert!(serde_json::from_str::<MetricId>("\"speed\"").is_err());
}
