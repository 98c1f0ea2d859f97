//! `deploy/` as shipped starts an agent that gathers: the container's args from the
//! Deployment and the config from the ConfigMap, run by this binary against the simulator
//! (only the pod's paths are moved into a temp dir). A placeholder `publicKey` in the shipped
//! config used to make the pod crash-loop; with no index configured, the embedded default
//! gatherers run.

use testkit as common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;

fn base() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/base"))
}

fn read<T: serde::de::DeserializeOwned>(file: &str) -> T {
    serde_saphyr::from_str(&std::fs::read_to_string(base().join(file)).unwrap()).unwrap()
}

fn archives(out: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(out) else { return Vec::new() };
    entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("insights-") && p.extension().is_some_and(|e| e == "gz"))
        .collect()
}

#[test]
fn the_shipped_deployment_and_config_gather_with_the_embedded_defaults() {
    let deployment: Deployment = read("deployment.yaml");
    let pod = deployment.spec.template.spec.expect("a pod template");
    let container = &pod.containers[0];
    let args = container.args.clone().unwrap();
    let cm: ConfigMap = read("configmap.yaml");
    let mut config: serde_json::Value = serde_json::from_str(&cm.data.unwrap()["config.json"]).unwrap();

    let rt = tokio::runtime::Runtime::new().unwrap();
    let sim = rt.block_on(common::start_sample());
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&kc).unwrap();
    // The pod's paths, moved into the temp dir; everything else as shipped.
    let out = dir.path().join("archives");
    config["run"]["outDir"] = out.display().to_string().into();
    config["run"]["stateDir"] = dir.path().join("state").display().to_string().into();
    config["run"]["listen"] = "127.0.0.1:0".into();
    let config_path = dir.path().join("config.json");
    std::fs::write(&config_path, serde_json::to_vec(&config).unwrap()).unwrap();
    let at = args.iter().position(|a| a == "--config").expect("the Deployment passes --config");
    assert!(Path::new(&args[at + 1]).starts_with(container.volume_mounts.as_ref().unwrap().iter().find(|m| m.name == "config").unwrap().mount_path.as_str()));
    let mut args = args.clone();
    args[at + 1] = config_path.display().to_string();

    let mut child = Command::new(env!("CARGO_BIN_EXE_gather-agent"))
        .env_remove("KUBECONFIG")
        .env_remove("KUBERNETES_SERVICE_HOST")
        // In the pod this is the service account; here the simulator.
        .env("GATHER_AGENT_KUBECONFIG", &kc)
        .args(&args)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A hang guard, not a speed check.
    let mut found = Vec::new();
    for _ in 0..2400 {
        found = archives(&out);
        if !found.is_empty() || child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    let still_running = child.try_wait().unwrap().is_none();
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let o = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&o.stderr);
    assert!(still_running, "the agent exited: {log}");
    let archive = found.first().unwrap_or_else(|| panic!("no archive: {log}"));
    let meta: agent::archive::GathersMetadata = serde_json::from_slice(&common::records(archive)["insights-operator/gathers.json"]).unwrap();
    let mut names: Vec<String> = meta.status_reports.iter().map(|r| r.name.clone()).collect();
    names.sort();
    let sandbox = agent::sandbox::Sandbox::new();
    let mut defaults: Vec<String> = common::built_gatherers().iter().map(|(_, b)| sandbox.load(b).unwrap().manifest.name.clone()).collect();
    defaults.sort();
    assert_eq!(names, defaults);
    assert!(meta.status_reports.iter().all(|r| r.errors.is_none()), "{:?}", meta.status_reports);
    // The shipped logs are JSON, one object a line.
    let first = log.lines().next().unwrap_or_default();
    assert!(serde_json::from_str::<serde_json::Value>(first).is_ok(), "{first}");
}
