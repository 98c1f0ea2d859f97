//! `--scale N`: N synthetic nodes and 10·N pods with realistic sizes, rendered on demand from
//! templates so that a 50k-pod cluster costs the simulator almost no memory.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::json;

use super::cluster::{synthetic_uid, Body, Cluster, Render, StoredObject};

/// A JSON document with `@@SLOT@@` holes, split once so rendering is plain concatenation.
pub struct Template {
    literals: Vec<String>,
    slots: Vec<Slot>,
    kind: SynthKind,
    nodes: u32,
    namespaces: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SynthKind {
    Node,
    Pod,
}

#[derive(Clone, Copy, Debug)]
enum Slot {
    Name,
    Namespace,
    Uid,
    NodeName,
    Role,
    App,
    Index,
}

impl Template {
    fn new(doc: &serde_json::Value, kind: SynthKind, nodes: u32, namespaces: u32) -> Self {
        let text = serde_json::to_string(doc).expect("template serializes");
        let mut literals = Vec::new();
        let mut slots = Vec::new();
        let mut parts = text.split("@@");
        literals.push(parts.next().unwrap_or_default().to_owned());
        while let (Some(slot), Some(lit)) = (parts.next(), parts.next()) {
            slots.push(match slot {
                "NAME" => Slot::Name,
                "NS" => Slot::Namespace,
                "UID" => Slot::Uid,
                "NODE" => Slot::NodeName,
                "ROLE" => Slot::Role,
                "APP" => Slot::App,
                "I" => Slot::Index,
                other => panic!("unknown template slot {other}"),
            });
            literals.push(lit.to_owned());
        }
        Template { literals, slots, kind, nodes, namespaces }
    }

    fn value(&self, slot: Slot, i: u32) -> String {
        match (self.kind, slot) {
            (SynthKind::Node, Slot::Name) => node_name(i),
            (SynthKind::Pod, Slot::Name) => pod_name(i),
            (_, Slot::Namespace) => namespace_name(i % self.namespaces),
            (SynthKind::Node, Slot::Uid) => synthetic_uid(&format!("node/{i}")),
            (SynthKind::Pod, Slot::Uid) => synthetic_uid(&format!("pod/{i}")),
            (_, Slot::NodeName) => node_name(i % self.nodes),
            (_, Slot::Role) => if i < 3 { "master".into() } else { "worker".into() },
            (_, Slot::App) => app_name(i),
            (_, Slot::Index) => i.to_string(),
        }
    }

}

impl Render for Template {
    /// Renders object `i`.
    fn render(&self, i: u32) -> Vec<u8> {
        let mut out = String::with_capacity(self.literals.iter().map(String::len).sum::<usize>() + 256);
        for (lit, slot) in self.literals.iter().zip(self.slots.iter()) {
            out.push_str(lit);
            out.push_str(&self.value(*slot, i));
        }
        out.push_str(self.literals.last().expect("at least one literal"));
        out.into_bytes()
    }
}

fn node_name(i: u32) -> String {
    format!("sim-node-{i:05}.sim.example.com")
}

fn pod_name(i: u32) -> String {
    format!("{}-7d9f8b6c5-{:05x}", app_name(i), i)
}

fn app_name(i: u32) -> String {
    format!("sim-app-{}", i % 97)
}

fn namespace_name(k: u32) -> String {
    // Half the namespaces look like platform namespaces, as on an OpenShift cluster.
    if k.is_multiple_of(2) { format!("openshift-sim-{k}") } else { format!("sim-tenant-{k}") }
}

/// Whether synthetic pod `i` is unhealthy (about 2%): crash-looping with restarts.
pub fn pod_is_unhealthy(i: u32) -> bool {
    i % 50 == 7
}

fn managed_fields(manager: &str, api_version: &str) -> serde_json::Value {
    json!([
        {"manager": manager, "operation": "Update", "apiVersion": api_version, "time": "2021-07-07T11:30:00Z",
         "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:app": {}}},
            "f:spec": {"f:containers": {"k:{\"name\":\"main\"}": {".": {}, "f:image": {}, "f:name": {}, "f:resources": {}}}}}},
        {"manager": "kubelet", "operation": "Update", "apiVersion": api_version, "time": "2021-07-08T09:12:44Z",
         "fieldsType": "FieldsV1", "subresource": "status",
         "fieldsV1": {"f:status": {"f:conditions": {"k:{\"type\":\"Ready\"}": {".": {}, "f:lastProbeTime": {}, "f:lastTransitionTime": {}, "f:status": {}, "f:type": {}}},
            "f:containerStatuses": {}, "f:hostIP": {}, "f:phase": {}, "f:podIP": {}, "f:startTime": {}}}}
    ])
}

fn node_template() -> serde_json::Value {
    let images: Vec<_> = (0..24)
        .map(|k| json!({
            "names": [format!("quay.io/openshift-release-dev/ocp-v4.0-art-dev@sha256:{:064x}", k * 7919 + 13),
                      format!("quay.io/openshift-release-dev/component-{k}:4.7.19")],
            "sizeBytes": 300_000_000 + k * 1_234_567}))
        .collect();
    let cond = |t: &str, s: &str, r: &str, m: &str| json!({"type": t, "status": s, "lastHeartbeatTime": "2021-07-08T10:00:00Z",
        "lastTransitionTime": "2021-07-07T11:30:00Z", "reason": r, "message": m});
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {
            "name": "@@NAME@@", "uid": "@@UID@@", "resourceVersion": "5000", "creationTimestamp": "2021-07-07T11:23:18Z",
            "labels": {"beta.kubernetes.io/arch": "amd64", "beta.kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
                       "kubernetes.io/hostname": "@@NAME@@", "kubernetes.io/os": "linux", "node-role.kubernetes.io/@@ROLE@@": "",
                       "node.openshift.io/os_id": "rhcos", "topology.kubernetes.io/zone": "zone-@@I@@"},
            "annotations": {"machineconfiguration.openshift.io/currentConfig": "rendered-worker-39c9df4a2c026c3149a02abe6f88cfc8",
                            "machineconfiguration.openshift.io/desiredConfig": "rendered-worker-39c9df4a2c026c3149a02abe6f88cfc8",
                            "machineconfiguration.openshift.io/state": "Done", "volumes.kubernetes.io/controller-managed-attach-detach": "true"},
            "managedFields": managed_fields("machine-config-daemon", "v1")
        },
        "spec": {"providerID": "sim://@@NAME@@"},
        "status": {
            "capacity": {"cpu": "8", "ephemeral-storage": "125293548Ki", "hugepages-1Gi": "0", "hugepages-2Mi": "0", "memory": "32883896Ki", "pods": "250"},
            "allocatable": {"cpu": "7500m", "ephemeral-storage": "114396791822", "hugepages-1Gi": "0", "hugepages-2Mi": "0", "memory": "31732920Ki", "pods": "250"},
            "conditions": [
                cond("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                cond("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                cond("Ready", "True", "KubeletReady", "kubelet is posting ready status")],
            "addresses": [{"type": "InternalIP", "address": "10.0.@@I@@.1"}, {"type": "Hostname", "address": "@@NAME@@"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {"machineID": "@@UID@@", "systemUUID": "@@UID@@", "bootID": "@@UID@@", "kernelVersion": "4.18.0-305.3.1.el8_4.x86_64",
                         "osImage": "Red Hat Enterprise Linux CoreOS 47.83.202106252242-0 (Ootpa)", "containerRuntimeVersion": "cri-o://1.20.3-6.rhaos4.7.gitd7f3909.el8",
                         "kubeletVersion": "v1.20.0+87cc9a4", "kubeProxyVersion": "v1.20.0+87cc9a4", "operatingSystem": "linux", "architecture": "amd64"},
            "images": images
        }
    })
}

fn pod_template(unhealthy: bool) -> serde_json::Value {
    let (phase, ready, restarts, state) = if unhealthy {
        ("Running", false, 17, json!({"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 5m0s restarting failed container=main pod=@@NAME@@_@@NS@@(@@UID@@)"}}))
    } else {
        ("Running", true, 0, json!({"running": {"startedAt": "2021-07-07T11:40:02Z"}}))
    };
    let container = |name: &str| json!({
        "name": name, "image": format!("quay.io/sim/@@APP@@-{name}@sha256:{:064x}", name.len() * 31337),
        "command": ["/usr/bin/@@APP@@", "--config=/etc/@@APP@@/config.yaml", "--v=2"],
        "ports": [{"name": "metrics", "containerPort": 8443, "protocol": "TCP"}],
        "env": [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}},
                {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}},
                {"name": "RELEASE_VERSION", "value": "4.7.19"}],
        "resources": {"requests": {"cpu": "10m", "memory": "50Mi"}},
        "volumeMounts": [{"name": "config", "mountPath": "/etc/@@APP@@"}, {"name": "kube-api-access", "readOnly": true, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}],
        "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "FallbackToLogsOnError", "imagePullPolicy": "IfNotPresent"
    });
    let status = |name: &str| json!({
        "name": name, "state": state, "ready": ready, "restartCount": restarts, "started": ready,
        "image": format!("quay.io/sim/@@APP@@-{name}:4.7.19"), "imageID": format!("quay.io/sim/@@APP@@-{name}@sha256:{:064x}", name.len() * 31337),
        "containerID": "cri-o://@@UID@@"
    });
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": "@@NAME@@", "generateName": "@@APP@@-7d9f8b6c5-", "namespace": "@@NS@@", "uid": "@@UID@@",
            "resourceVersion": "6000", "creationTimestamp": "2021-07-07T11:39:50Z",
            "labels": {"app": "@@APP@@", "pod-template-hash": "7d9f8b6c5"},
            "annotations": {"k8s.v1.cni.cncf.io/network-status": "[{\"name\":\"\",\"interface\":\"eth0\",\"ips\":[\"10.128.0.@@I@@\"],\"default\":true,\"dns\":{}}]",
                            "openshift.io/scc": "restricted"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "@@APP@@-7d9f8b6c5", "uid": "@@UID@@", "controller": true, "blockOwnerDeletion": true}],
            "managedFields": managed_fields("kube-controller-manager", "v1")
        },
        "spec": {
            "volumes": [{"name": "config", "configMap": {"name": "@@APP@@-config", "defaultMode": 420}},
                        {"name": "kube-api-access", "projected": {"sources": [{"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}}], "defaultMode": 420}}],
            "containers": [container("main"), container("proxy")],
            "restartPolicy": "Always", "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst",
            "serviceAccountName": "@@APP@@", "serviceAccount": "@@APP@@", "nodeName": "@@NODE@@",
            "securityContext": {"seLinuxOptions": {"level": "s0:c12,c4"}, "fsGroup": 1000140000},
            "schedulerName": "default-scheduler", "priority": 0, "enableServiceLinks": true, "preemptionPolicy": "PreemptLowerPriority",
            "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}]
        },
        "status": {
            "phase": phase,
            "conditions": [{"type": "Initialized", "status": "True", "lastProbeTime": null, "lastTransitionTime": "2021-07-07T11:39:50Z"},
                           {"type": "Ready", "status": if ready {"True"} else {"False"}, "lastProbeTime": null, "lastTransitionTime": "2021-07-07T11:40:10Z"},
                           {"type": "ContainersReady", "status": if ready {"True"} else {"False"}, "lastProbeTime": null, "lastTransitionTime": "2021-07-07T11:40:10Z"},
                           {"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": "2021-07-07T11:39:50Z"}],
            "hostIP": "10.0.0.1", "podIP": "10.128.0.@@I@@", "podIPs": [{"ip": "10.128.0.@@I@@"}],
            "startTime": "2021-07-07T11:39:50Z",
            "containerStatuses": [status("main"), status("proxy")],
            "qosClass": "Burstable"
        }
    })
}

/// Adds `n` synthetic nodes and `10·n` pods spread over `max(4, n/5)` namespaces.
pub fn add_synthetic(cluster: &mut Cluster, n: u32) {
    if n == 0 {
        return;
    }
    let pods = n * 10;
    let namespaces = (n / 5).max(4);
    let node_t = Arc::new(Template::new(&node_template(), SynthKind::Node, n, namespaces));
    let healthy = Arc::new(Template::new(&pod_template(false), SynthKind::Pod, n, namespaces));
    let crashing = Arc::new(Template::new(&pod_template(true), SynthKind::Pod, n, namespaces));
    let rv = cluster.resource_version;
    let nodes_idx = cluster.type_index("", "v1", "nodes").expect("built in");
    for i in 0..n {
        let role = if i < 3 { "master" } else { "worker" };
        let labels = BTreeMap::from([
            ("kubernetes.io/hostname".to_owned(), node_name(i)),
            ("kubernetes.io/os".to_owned(), "linux".to_owned()),
            (format!("node-role.kubernetes.io/{role}"), String::new()),
        ]);
        cluster.push_object(nodes_idx, StoredObject {
            namespace: None,
            name: node_name(i),
            labels,
            resource_version: rv,
            body: Body::Synthetic(node_t.clone() as Arc<dyn Render>, i),
        });
    }
    let pods_idx = cluster.type_index("", "v1", "pods").expect("built in");
    let mut used = BTreeSet::new();
    for i in 0..pods {
        let ns = namespace_name(i % namespaces);
        used.insert(ns.clone());
        let labels = BTreeMap::from([
            ("app".to_owned(), app_name(i)),
            ("pod-template-hash".to_owned(), "7d9f8b6c5".to_owned()),
        ]);
        let t = if pod_is_unhealthy(i) { crashing.clone() } else { healthy.clone() };
        cluster.push_object(pods_idx, StoredObject {
            namespace: Some(ns),
            name: pod_name(i),
            labels,
            resource_version: rv,
            body: Body::Synthetic(t as Arc<dyn Render>, i),
        });
    }
    cluster.ensure_namespaces(used);
    cluster.sort();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_objects_are_valid_realistic_json() {
        let mut c = Cluster::empty();
        add_synthetic(&mut c, 20);
        let nodes = c.objects(c.type_index("", "v1", "nodes").unwrap());
        let pods = c.objects(c.type_index("", "v1", "pods").unwrap());
        assert_eq!(nodes.len(), 20);
        assert_eq!(pods.len(), 200);
        let node = nodes[0].value();
        assert_eq!(node["kind"], "Node");
        assert_eq!(node["metadata"]["name"], nodes[0].name.as_str());
        let node_size = nodes[0].bytes().len();
        assert!((4_000..20_000).contains(&node_size), "node is {node_size} bytes");
        for p in pods {
            let v = p.value();
            assert_eq!(v["metadata"]["namespace"], p.namespace.as_deref().unwrap());
            assert_eq!(v["metadata"]["name"], p.name.as_str());
            assert!(v["metadata"]["managedFields"].is_array());
        }
        let crashing = pods.iter().filter(|p| p.value()["status"]["containerStatuses"][0]["restartCount"] != 0).count();
        assert_eq!(crashing, 4);
        assert!(c.objects(c.type_index("", "v1", "namespaces").unwrap()).len() >= 4);
    }
}
