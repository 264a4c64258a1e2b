//! What the container files promise, read off the files: the compose file's stop grace period
//! and published ports, the Kubernetes manifests' pull policy and non-root user, the images'
//! numeric user. (The files are also run for real: `containers_compose.rs`, `containers_kube.rs`.)

use crate::containers::root;

fn read(file: &str) -> String {
    std::fs::read_to_string(root().join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

/// The lines of each service of a compose file (`services:` then two-space-indented names).
fn services(compose: &str) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    let mut inside = false;
    for line in compose.lines() {
        if !line.starts_with(' ') && !line.starts_with('#') && !line.is_empty() {
            inside = line.trim_end() == "services:";
            continue;
        }
        if !inside || line.trim_start().starts_with('#') {
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        if indent == 2 {
            if let Some(name) = line.trim().strip_suffix(':') {
                out.push((name.to_string(), Vec::new()));
                continue;
            }
        }
        if let Some((_, lines)) = out.last_mut() {
            lines.push(line.trim().to_string());
        }
    }
    out
}

fn seconds(value: &str) -> u64 {
    let v = value.trim().trim_matches('"');
    humantime::parse_duration(v)
        .map(|d| d.as_secs())
        .unwrap_or_else(|e| panic!("stop_grace_period {v:?}: {e}"))
}

/// The master waits up to --stop-timeout (10 s) for the workers' in-flight streams, then writes
/// its JSON and tells them to quit; compose's default 10 s would SIGKILL it first.
#[test]
fn compose_gives_master_and_workers_a_30s_stop_grace_period() {
    let compose = services(&read("docker-compose.yml"));
    let names: Vec<&str> = compose.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["master", "worker"]);
    for (name, lines) in &compose {
        let grace = lines
            .iter()
            .find_map(|l| l.strip_prefix("stop_grace_period:"))
            .unwrap_or_else(|| panic!("service {name}: no stop_grace_period"));
        assert!(seconds(grace) >= 30, "service {name}: {grace}");
    }
}

/// The web UI (no login by default) is published on the host's loopback only, and the master's
/// port (no authentication) not at all: the workers use the compose network.
#[test]
fn compose_publishes_only_the_web_ui_and_only_on_loopback() {
    for (name, lines) in services(&read("docker-compose.yml")) {
        let mut in_ports = false;
        let mut published = Vec::new();
        for l in &lines {
            if l.ends_with(':') && !l.starts_with('-') {
                in_ports = l == "ports:";
            } else if in_ports {
                if let Some(p) = l.strip_prefix("- ") {
                    published.push(p.trim_matches('"').to_string());
                }
            }
        }
        if name == "master" {
            assert_eq!(published.len(), 1, "master publishes {published:?}");
            let p = &published[0];
            assert!(p.starts_with("127.0.0.1:") && p.ends_with(":8089"), "{p}");
        } else {
            assert!(published.is_empty(), "{name} publishes {published:?}");
        }
        assert!(
            !lines.iter().any(|l| l.contains("5557:5557")),
            "{name} publishes 5557"
        );
    }
}

/// An image loaded into kind or minikube (no registry) starts: every container says
/// `imagePullPolicy: IfNotPresent` (without it, `:latest` means Always). And non-root is checked
/// by the image's numeric USER, not by a `runAsUser` the image might contradict.
#[test]
fn kubernetes_containers_pull_if_not_present_and_run_as_non_root() {
    for file in ["deploy/k8s/master.yaml", "deploy/k8s/worker.yaml"] {
        let text = read(file);
        let images = text.lines().filter(|l| l.trim().starts_with("image:"));
        let policies: Vec<&str> = text
            .lines()
            .filter_map(|l| l.trim().strip_prefix("imagePullPolicy:"))
            .map(str::trim)
            .collect();
        assert_eq!(
            images.count(),
            policies.len(),
            "{file}: one policy per image"
        );
        assert!(
            !policies.is_empty() && policies.iter().all(|p| *p == "IfNotPresent"),
            "{file}: {policies:?}"
        );
        assert!(text.contains("runAsNonRoot: true"), "{file}");
        assert!(
            !text.contains("runAsUser"),
            "{file}: the image's USER says it"
        );
    }
}

/// `USER 10001:10001` in both images: numeric (runAsNonRoot can check it) with its own group;
/// no `useradd --system` (uid 10001 is above SYS_UID_MAX and got another gid).
#[test]
fn both_images_run_as_uid_and_gid_10001() {
    for file in ["Dockerfile", "deploy/scratch/Dockerfile"] {
        let text = read(file);
        let users: Vec<&str> = text.lines().filter(|l| l.starts_with("USER ")).collect();
        assert_eq!(users, ["USER 10001:10001"], "{file}");
        assert!(!text.contains("--system"), "{file}: useradd --system");
    }
    let passwd = read("deploy/scratch/etc/passwd");
    assert!(
        passwd.lines().any(|l| l.starts_with("gsai:x:10001:10001:")),
        "{passwd}"
    );
    assert!(read("deploy/scratch/etc/group").contains("gsai:x:10001:"));
}
