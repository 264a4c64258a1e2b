//! The container path for real: the static binary (no dynamic section, runs in an empty root
//! filesystem), and the tools the container tests need: podman, podman-compose and the scratch
//! image built from that binary with no pulls. The compose and Kubernetes runs are in
//! `containers_compose.rs` and `containers_kube.rs`; the container files' own properties in
//! `container_files.rs`.
//!
//! The static binary is built by `deploy/build-static.sh` (`.ci/run` does it before the tests;
//! building it here would wait on the lock `cargo test` holds). Without it, or without podman,
//! each test skips loudly; under CI it fails instead, as the Chromium tests do.

use crate::harness::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

/// The project root.
pub(crate) fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `None` (after saying so) skips `test`; under CI (`CI` set) the missing `what` fails it.
fn missing<T>(test: &str, what: &str, hint: &str) -> Option<T> {
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must provide {what} for {test}: {hint}"
    );
    eprintln!("SKIPPED {test}: no {what} ({hint})");
    None
}

/// The static binary: `GSAI_STATIC_BIN`, else `target/static/gsai-load` beside this test's
/// binary (what `deploy/build-static.sh` writes).
pub(crate) fn static_binary(test: &str) -> Option<PathBuf> {
    let path = std::env::var_os("GSAI_STATIC_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            // .../target/debug/gsai-load -> .../target
            let bin = Path::new(env!("CARGO_BIN_EXE_gsai-load"));
            let target = bin.parent().and_then(Path::parent).unwrap_or(bin);
            target.join("static").join("gsai-load")
        });
    if path.is_file() {
        Some(path)
    } else {
        missing(
            test,
            &format!("static binary at {}", path.display()),
            "run deploy/build-static.sh, or set GSAI_STATIC_BIN",
        )
    }
}

/// The first of `names` on PATH.
fn on_path(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .find_map(|dir| names.iter().map(|n| dir.join(n)).find(|p| p.is_file()))
}

/// One podman workload at a time: the compose and kube tests each start several containers and
/// networks (netavark rewrites the firewall for each), on a 2-core machine running the other
/// tests meanwhile. Hold it for the whole test.
pub(crate) static PODMAN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// podman and podman-compose (`GSAI_PODMAN_COMPOSE` or PATH), with the static binary.
pub(crate) struct Tools {
    pub podman: PathBuf,
    pub compose: PathBuf,
    pub binary: PathBuf,
}

impl Tools {
    pub(crate) fn find(test: &str) -> Option<Tools> {
        let binary = static_binary(test)?;
        let Some(podman) = on_path(&["podman"]) else {
            return missing(test, "podman", "apt-get install podman runc; see .ci/run");
        };
        let compose = std::env::var_os("GSAI_PODMAN_COMPOSE")
            .map(PathBuf::from)
            .or_else(|| on_path(&["podman-compose"]));
        let Some(compose) = compose else {
            return missing(
                test,
                "podman-compose",
                "pip install podman-compose (a venv), or set GSAI_PODMAN_COMPOSE",
            );
        };
        Some(Tools {
            podman,
            compose,
            binary,
        })
    }

    pub(crate) fn podman(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.podman);
        c.args(args);
        c
    }

    /// Builds the scratch image as `tag` with `deploy/build-image.sh` (no pulls); returns the
    /// time it took.
    pub(crate) async fn build_image(&self, tag: &str) -> Duration {
        let started = std::time::Instant::now();
        let mut c = Command::new(root().join("deploy/build-image.sh"));
        c.arg(tag)
            .arg(&self.binary)
            .env("CONTAINER_ENGINE", &self.podman);
        let out = output(c).await;
        assert!(out.status.success(), "image build: {}", text(&out));
        let took = started.elapsed();
        eprintln!("scratch image {tag} built in {took:?}");
        took
    }
}

/// Runs `c` (off the runtime) and asserts it succeeded.
pub(crate) async fn ok(c: Command) -> Output {
    let what = format!("{c:?}");
    let out = output(c).await;
    assert!(out.status.success(), "{what}: {}", text(&out));
    out
}

/// The ELF64 program-header types and section-header types of `bytes` (little endian).
fn elf_types(bytes: &[u8]) -> (u16, Vec<u32>, Vec<u32>) {
    let u16_at = |o: usize| u16::from_le_bytes([bytes[o], bytes[o + 1]]);
    let u32_at = |o: usize| u32::from_le_bytes(bytes[o..o + 4].try_into().unwrap());
    let u64_at = |o: usize| u64::from_le_bytes(bytes[o..o + 8].try_into().unwrap()) as usize;
    assert!(
        bytes.starts_with(b"\x7fELF\x02\x01"),
        "not a little-endian ELF64 file"
    );
    let e_type = u16_at(0x10);
    let (phoff, phentsize, phnum) = (u64_at(0x20), u16_at(0x36) as usize, u16_at(0x38) as usize);
    let (shoff, shentsize, shnum) = (u64_at(0x28), u16_at(0x3a) as usize, u16_at(0x3c) as usize);
    let programs = (0..phnum).map(|i| u32_at(phoff + i * phentsize)).collect();
    let sections = (0..shnum)
        .map(|i| u32_at(shoff + i * shentsize + 4))
        .collect();
    (e_type, programs, sections)
}

const ET_EXEC: u16 = 2;
const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const SHT_DYNAMIC: u32 = 6;

/// The release binary is fully static: no program interpreter, no dynamic section (so no
/// shared library at all), and it runs, a real load test included, in a root filesystem that
/// holds nothing but itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_static_binary_has_no_dynamic_section_and_runs_in_an_empty_root() {
    let test = "the_static_binary_has_no_dynamic_section_and_runs_in_an_empty_root";
    let Some(binary) = static_binary(test) else {
        return;
    };
    let bytes = std::fs::read(&binary).unwrap();
    let (e_type, programs, sections) = elf_types(&bytes);
    assert_eq!(
        e_type,
        ET_EXEC,
        "{}: not a static executable",
        binary.display()
    );
    assert!(
        !programs.contains(&PT_INTERP),
        "{}: has a program interpreter (dynamically linked)",
        binary.display()
    );
    assert!(
        !programs.contains(&PT_DYNAMIC) && !sections.contains(&SHT_DYNAMIC),
        "{}: has a dynamic section",
        binary.display()
    );
    let sha = std::fs::read_to_string(binary.with_file_name(format!(
        "gsai-load-{}-{}-linux-static.sha256",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::ARCH
    )));
    if std::env::var_os("GSAI_STATIC_BIN").is_none() {
        let sha = sha.expect("build-static.sh writes the release file's SHA-256");
        assert_eq!(sha.split_whitespace().count(), 2, "sha256sum format: {sha}");
    }

    // An empty root: the binary alone, in a fresh directory.
    let empty = tempfile::tempdir().unwrap();
    std::fs::copy(&binary, empty.path().join("gsai-load")).unwrap();
    let mock = start_mock(fast_config()).await;
    let jail = |args: &[&str]| {
        // SAFETY: geteuid has no preconditions.
        let mut c = if unsafe { libc::geteuid() } == 0 {
            let mut c = Command::new("chroot");
            c.arg(empty.path());
            c
        } else {
            let mut c = Command::new("unshare");
            c.args(["--user", "--map-root-user", "--root"])
                .arg(empty.path());
            c
        };
        c.arg("/gsai-load")
            .args(args)
            .env_remove("GSAI_HOST")
            .env_remove("GSA_AUTH_TOKEN")
            .env_remove("CHAT_MODEL");
        c
    };
    let version = output(jail(&["--version"])).await;
    assert!(
        version.status.success() && text(&version).contains(env!("CARGO_PKG_VERSION")),
        "--version in an empty root: {}",
        text(&version)
    );
    let host = mock.base_url();
    let mut run = jail(&[
        "--headless",
        "-H",
        &host,
        "--model",
        "test-model",
        "-u",
        "2",
        "-r",
        "100",
        "--wait",
        "constant(0.01)",
        "--max-requests",
        "10",
        "--json",
        "/result.json",
    ]);
    run.env("GSA_AUTH_TOKEN", TOKEN);
    let out = output(run).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(mock.counters().ok, 10, "{}", text(&out));
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(empty.path().join("result.json")).expect("--json written"),
    )
    .unwrap();
    assert_eq!(json["summary"]["requests"], 10, "{json}");
    mock.shutdown().await;
}
