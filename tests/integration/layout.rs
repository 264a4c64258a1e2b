//! The module graph (docs/architecture.md): no two top-level modules import each other,
//! directly or in a circle, and the rules of who may import whom hold. Read from the sources,
//! as `use crate::x` and `crate::x::` paths (comments and doc lines skipped).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Top-level module → the top-level modules it refers to (test code included).
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in files {
        let rel = f.strip_prefix(&src).unwrap();
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if top == "main" || top == "lib" {
            continue;
        }
        let text = std::fs::read_to_string(&f).unwrap();
        let deps = g.entry(top.clone()).or_default();
        for line in text.lines() {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            let mut rest = code;
            while let Some(i) = rest.find("crate::") {
                rest = &rest[i + "crate::".len()..];
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() && name != top {
                    deps.insert(name);
                }
            }
        }
    }
    let modules: BTreeSet<String> = g.keys().cloned().collect();
    for deps in g.values_mut() {
        deps.retain(|d| modules.contains(d));
    }
    g
}

/// A circle of imports, if any.
fn find_cycle(g: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        g: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == n) {
            let mut c = path[i..].to_vec();
            c.push(n.to_string());
            return Some(c);
        }
        if done.contains(n) {
            return None;
        }
        path.push(n.to_string());
        for d in g.get(n).into_iter().flatten() {
            if let Some(c) = visit(d, g, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(n.to_string());
        None
    }
    let mut done = BTreeSet::new();
    g.keys()
        .find_map(|n| visit(n, g, &mut Vec::new(), &mut done))
}

#[test]
fn no_two_top_level_modules_import_each_other() {
    let g = graph();
    assert!(g.len() >= 10, "read the modules: {g:?}");
    assert_eq!(find_cycle(&g), None, "the module graph: {g:#?}");
}

#[test]
fn dependencies_point_down_the_data_path() {
    let g = graph();
    let uses = |m: &str| g.get(m).cloned().unwrap_or_default();
    assert!(
        uses("metrics").is_empty(),
        "metrics imports nothing: {:?}",
        uses("metrics")
    );
    assert!(
        uses("sse").is_empty(),
        "sse imports nothing: {:?}",
        uses("sse")
    );
    for m in ["app", "cli", "web", "report", "driver"] {
        assert!(!uses("cluster").contains(m), "cluster must not import {m}");
        assert!(!uses("engine").contains(m), "engine must not import {m}");
    }
    assert!(!uses("engine").contains("cluster"));
    for m in ["workload", "client", "engine", "criteria", "report"] {
        assert!(!uses("config").contains(m), "config must not import {m}");
    }
    for m in ["client", "engine", "workload"] {
        assert!(
            !uses("mock").contains(m),
            "the mock shares nothing with the client side: {m}"
        );
    }
}

/// The checker itself finds a circle when there is one.
#[test]
fn the_cycle_check_can_fail() {
    let mut g = BTreeMap::new();
    g.insert("a".to_string(), BTreeSet::from(["b".to_string()]));
    g.insert("b".to_string(), BTreeSet::from(["c".to_string()]));
    g.insert("c".to_string(), BTreeSet::from(["a".to_string()]));
    assert_eq!(
        find_cycle(&g),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
}

/// The wall clock is read in one place on the client side (`metrics::clock`); the mock, which
/// shares nothing with the client side, keeps its own.
#[test]
fn the_wall_clock_is_read_in_one_place() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let readers: Vec<String> = files
        .iter()
        .filter(|f| !f.starts_with(src.join("mock")) && !f.ends_with("metrics/clock.rs"))
        .filter(|f| std::fs::read_to_string(f).unwrap().contains("UNIX_EPOCH"))
        .map(|f| f.display().to_string())
        .collect();
    assert!(
        readers.is_empty(),
        "use metrics::clock instead: {readers:?}"
    );
}
