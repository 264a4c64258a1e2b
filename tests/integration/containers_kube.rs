//! `deploy/k8s/` checked two ways: every manifest validated offline against Kubernetes' schemas
//! (`kubernetes-validate --strict`, from PyPI), and the master and worker Deployments run by
//! `podman kube play` with the local scratch image: no pull, uid 10001 without `runAsUser`,
//! the ConfigMap and the Secret in the environment, the web UI up.
//!
//! Podman 4.3 stores a Secret given in YAML in a form its own `envFrom` cannot read ("secret ...
//! is not valid JSON"), so the test creates that podman secret itself, in the form podman reads
//! (a JSON map of base64 values), from `config.yaml`'s values. Pods, secret and names are
//! podman-global: the test removes `gsai-load-master-pod-0`, `gsai-load-worker-pod-0` to `-3`
//! and the secret `gsai-load-token` before and after it runs.

use crate::containers::{ok, root, Tools, PODMAN};
use crate::harness::*;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// The pods `podman kube play` makes: one per replica (1 master, 4 workers).
fn pods() -> Vec<String> {
    let workers = (0..4).map(|i| format!("gsai-load-worker-pod-{i}"));
    std::iter::once("gsai-load-master-pod-0".to_string())
        .chain(workers)
        .collect()
}

fn manifest(name: &str) -> String {
    let path = root().join("deploy/k8s").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `kubernetes-validate`: `GSAI_KUBERNETES_VALIDATE`, else PATH. Missing: skip loudly, or fail
/// under CI.
fn validator(test: &str) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("GSAI_KUBERNETES_VALIDATE") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    let found = std::env::split_paths(&path)
        .map(|d| d.join("kubernetes-validate"))
        .find(|p| p.is_file());
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must provide kubernetes-validate for {test} (pip install kubernetes-validate in a venv; see .ci/run)"
        );
        eprintln!("SKIPPED {test}: no kubernetes-validate (pip install kubernetes-validate, or set GSAI_KUBERNETES_VALIDATE)");
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kubernetes_manifests_validate_against_the_kubernetes_schemas() {
    let Some(validate) =
        validator("the_kubernetes_manifests_validate_against_the_kubernetes_schemas")
    else {
        return;
    };
    let mut c = Command::new(validate);
    c.arg("--strict");
    let dir = root().join("deploy/k8s");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 4, "{files:?}");
    c.args(&files);
    let out = ok(c).await;
    let report = text(&out);
    for kind in [
        "configmap/",
        "secret/",
        "deployment/gsai-load-master",
        "service/",
        "networkpolicy/",
        "deployment/gsai-load-worker",
    ] {
        assert!(
            report.contains(&format!("passed for resource {kind}")),
            "{kind}: {report}"
        );
    }
}

/// The `stringData` values of the Secret in `config.yaml`, as podman 4.3 reads a secret.
fn secret_json(config: &str) -> String {
    let secret = config
        .split("\n---\n")
        .find(|doc| doc.contains("kind: Secret"))
        .expect("config.yaml has a Secret");
    let values: Vec<String> = secret
        .split("stringData:")
        .nth(1)
        .expect("the Secret has stringData")
        .lines()
        .filter(|l| l.starts_with("  ") && l.contains(':'))
        .map(|l| {
            let (k, v) = l.trim().split_once(':').unwrap();
            let v = v.trim().trim_matches('"');
            let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, v);
            format!("\"{}\":\"{b64}\"", k.trim())
        })
        .collect();
    format!("{{{}}}", values.join(","))
}

/// Removes the pods, the secret and (when set) the image: before the test, and on drop.
struct Cleanup<'a> {
    tools: &'a Tools,
    image: Option<String>,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        for pod in pods() {
            let _ = self
                .tools
                .podman(&["pod", "rm", "-f", "-t", "0", &pod])
                .output();
        }
        let _ = self
            .tools
            .podman(&["secret", "rm", "gsai-load-token"])
            .output();
        if let Some(image) = &self.image {
            let _ = self.tools.podman(&["rmi", image]).output();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kubernetes_deployments_run_under_podman_kube_play() {
    let Some(tools) = Tools::find("the_kubernetes_deployments_run_under_podman_kube_play") else {
        return;
    };
    let _one_at_a_time = PODMAN.lock().await;
    let image = format!("localhost/gsai-load:test-kube-{}", std::process::id());
    tools.build_image(&image).await;
    drop(Cleanup {
        tools: &tools,
        image: None,
    });
    let _cleanup = Cleanup {
        tools: &tools,
        image: Some(image.clone()),
    };

    let dir = tempfile::tempdir().unwrap();
    let config = manifest("config.yaml");
    let configmap = config.split("\n---\n").next().unwrap();
    assert!(configmap.contains("kind: ConfigMap"), "{configmap}");
    let cm_path = dir.path().join("configmap.yaml");
    std::fs::write(&cm_path, configmap).unwrap();
    let mut secret = tools.podman(&["secret", "create", "gsai-load-token", "-"]);
    secret.stdin(std::process::Stdio::piped());
    let json = secret_json(&config);
    let status = tokio::task::spawn_blocking(move || {
        let mut child = secret
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("podman");
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), json.as_bytes()).unwrap();
        child.wait().unwrap()
    })
    .await
    .unwrap();
    assert!(status.success(), "podman secret create");

    for (file, container) in [
        ("master.yaml", "gsai-load-master-pod-0-master"),
        ("worker.yaml", "gsai-load-worker-pod-0-worker"),
    ] {
        let text = manifest(file);
        assert!(text.contains("image: gsai-load:latest"), "{file}");
        let path = dir.path().join(file);
        std::fs::write(
            &path,
            text.replace("image: gsai-load:latest", &format!("image: {image}")),
        )
        .unwrap();
        ok(tools.podman(&[
            "kube",
            "play",
            "--configmap",
            cm_path.to_str().unwrap(),
            path.to_str().unwrap(),
        ]))
        .await;
        let out = ok(tools.podman(&[
            "inspect",
            "--format",
            "{{.Config.User}} {{.ImageName}} {{range .Config.Env}}{{.}} {{end}}",
            container,
        ]))
        .await;
        let inspect = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            inspect.starts_with(&format!("10001:10001 {image} ")),
            "{file}: {inspect}"
        );
        assert!(
            inspect.contains("GSAI_HOST=https://openwebui.example.internal"),
            "{file}: the ConfigMap: {inspect}"
        );
        let token = inspect.contains("GSA_AUTH_TOKEN=replace-me");
        assert_eq!(
            token,
            file == "worker.yaml",
            "{file}: only the workers mount the Secret: {inspect}"
        );
    }
    // One pod per replica, as a cluster would.
    let out = ok(tools.podman(&["pod", "ps", "--format", "{{.Name}}"])).await;
    let names = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut ours: Vec<String> = pods()
        .into_iter()
        .filter(|p| names.lines().any(|l| l == p))
        .collect();
    ours.sort();
    assert_eq!(ours.len(), 5, "1 master and 4 worker pods: {names}");
    // The master serves the web UI; the worker looks for it through the Service's name (which
    // podman does not create: it stays in its reconnect loop).
    for (container, line) in [
        (
            "gsai-load-master-pod-0-master",
            "web UI at http://0.0.0.0:8089",
        ),
        (
            "gsai-load-worker-pod-0-worker",
            "connecting to the master at gsai-load-master:5557",
        ),
    ] {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let logs = text(&ok(tools.podman(&["logs", container])).await);
            if logs.contains(line) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{container}: no {line:?} in {logs}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
