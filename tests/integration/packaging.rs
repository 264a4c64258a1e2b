//! The container build: what the compiler embeds must be in the image's build context.

use std::path::Path;

/// Top-level folders that `include_str!`/`include_bytes!` read from, found in the sources.
fn embedded_dirs(dir: &Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            embedded_dirs(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") && !is_test_only(&path) {
            let text = std::fs::read_to_string(&path).unwrap();
            let calls = text
                .split("include_str!(\"")
                .skip(1)
                .chain(text.split("include_bytes!(\"").skip(1));
            for part in calls {
                let Some(arg) = part.split('"').next() else {
                    continue;
                };
                if let Some(top) = arg.trim_start_matches("../").split('/').next() {
                    if arg.contains('/') && !out.iter().any(|d| d == top) {
                        out.push(top.to_string());
                    }
                }
            }
        }
    }
}

/// Unit-test files (`*tests.rs`, compiled only under `cfg(test)`) may embed test fixtures; the
/// image never builds them.
fn is_test_only(path: &Path) -> bool {
    path.file_stem()
        .and_then(|s| s.to_str())
        .is_some_and(|s| s.ends_with("tests"))
}

#[test]
fn the_dockerfile_copies_every_embedded_folder() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut dirs = Vec::new();
    embedded_dirs(&root.join("src"), &mut dirs);
    assert!(dirs.contains(&"assets".to_string()), "{dirs:?}");
    let dockerfile = std::fs::read_to_string(root.join("Dockerfile")).unwrap();
    for d in dirs {
        assert!(
            dockerfile
                .lines()
                .any(|l| l.starts_with("COPY") && l.split_whitespace().nth(1) == Some(d.as_str())),
            "the Dockerfile must COPY {d}/ (embedded at compile time)"
        );
    }
}
