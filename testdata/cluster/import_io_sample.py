#!/usr/bin/env python3
"""Build the fixture cluster testdata/cluster/sample/ from the Insights Operator
sample archive (openshift/insights-operator docs/insights-archive-sample,
Apache-2.0).

Usage (from anywhere, typically the repo root):

    python3 testdata/cluster/import_io_sample.py [SAMPLE_DIR]

SAMPLE_DIR defaults to ../shared/insights-archive-sample relative to the repo
root. The output directory testdata/cluster/sample/ is deleted and regenerated.
The script uses only the python3 standard library and is deterministic: all
generated uids and timestamps are derived from object identities, so running it
twice yields byte-identical files.

See testdata/README.md for the fixture format and what is restored/added here, and
FIXTURES-MAP.md for which Insights Operator rule turns which fixture objects into which
sample record. Besides the objects it writes the container logs behind the sample's log
records to logs/<namespace>/<pod>/<container>.log.
"""

import copy
import json
import os
import shutil
import sys
import urllib.parse
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(HERE))
OUT_DIR = os.path.join(HERE, "sample")
DEFAULT_SAMPLE = os.path.join(REPO_ROOT, "..", "shared", "insights-archive-sample")

# Namespace for the deterministic uuid5 of generated uids.
UID_NS = uuid.UUID("6f1c1a52-3c1e-4d8a-9a57-0b7f5b1c2e10")

# Annotation put on every object this script invents (not in the IO sample).
SYNTHETIC = "gather-agent.test/synthetic"

# Fallback creation time for objects without one: the creation time of the
# sample cluster's ClusterVersion (read from version.json, see main()).
CLUSTER_CREATED = None

# Creation time used for the synthetic pods (after the cluster came up, before
# the nodes' last heartbeats on 2021-07-13).
SYNTH_POD_CREATED = "2021-07-12T08:00:00Z"
SYNTH_POD_STARTED = "2021-07-12T08:00:07Z"

# ---------------------------------------------------------------------------
# Resource type table: (group, version, kind) -> (plural, scope, shortNames,
# extra CRD version fields). group "" is the core group. Built-in kinds need no
# CRD; every other kind gets one.
# ---------------------------------------------------------------------------

BUILTIN = {
    ("", "v1", "Node"): ("nodes", "Cluster"),
    ("", "v1", "Pod"): ("pods", "Namespaced"),
    ("", "v1", "Namespace"): ("namespaces", "Cluster"),
    ("apiextensions.k8s.io", "v1", "CustomResourceDefinition"): ("customresourcedefinitions", "Cluster"),
    ("policy", "v1", "PodDisruptionBudget"): ("poddisruptionbudgets", "Namespaced"),
    ("admissionregistration.k8s.io", "v1", "ValidatingWebhookConfiguration"): ("validatingwebhookconfigurations", "Cluster"),
    ("admissionregistration.k8s.io", "v1", "MutatingWebhookConfiguration"): ("mutatingwebhookconfigurations", "Cluster"),
    ("", "v1", "ConfigMap"): ("configmaps", "Namespaced"),
    ("", "v1", "Secret"): ("secrets", "Namespaced"),
    ("", "v1", "Event"): ("events", "Namespaced"),
    ("", "v1", "ServiceAccount"): ("serviceaccounts", "Namespaced"),
    ("", "v1", "PersistentVolume"): ("persistentvolumes", "Cluster"),
    ("", "v1", "PersistentVolumeClaim"): ("persistentvolumeclaims", "Namespaced"),
    ("rbac.authorization.k8s.io", "v1", "ClusterRole"): ("clusterroles", "Cluster"),
    ("storage.k8s.io", "v1", "StorageClass"): ("storageclasses", "Cluster"),
    ("certificates.k8s.io", "v1", "CertificateSigningRequest"): ("certificatesigningrequests", "Cluster"),
    ("batch", "v1", "Job"): ("jobs", "Namespaced"),
    ("", "v1", "Service"): ("services", "Namespaced"),
    ("apps", "v1", "Deployment"): ("deployments", "Namespaced"),
    ("apps", "v1", "ReplicaSet"): ("replicasets", "Namespaced"),
}


def col(name, json_path, typ="string", description=None):
    c = {"name": name, "type": typ}
    if description:
        c["description"] = description
    c["jsonPath"] = json_path
    return c


CO_COLUMNS = [
    col("Version", '.status.versions[?(@.name=="operator")].version', description="The version the operator is at."),
    col("Available", '.status.conditions[?(@.type=="Available")].status', description="Whether the operator is running and stable."),
    col("Progressing", '.status.conditions[?(@.type=="Progressing")].status', description="Whether the operator is processing changes."),
    col("Degraded", '.status.conditions[?(@.type=="Degraded")].status', description="Whether the operator is degraded."),
    col("Since", '.status.conditions[?(@.type=="Available")].lastTransitionTime', "date", "The time the operator's Available status last changed."),
]
CV_COLUMNS = [
    col("Version", '.status.history[?(@.state=="Completed")].version'),
    col("Available", '.status.conditions[?(@.type=="Available")].status'),
    col("Progressing", '.status.conditions[?(@.type=="Progressing")].status'),
    col("Since", '.status.conditions[?(@.type=="Progressing")].lastTransitionTime', "date"),
    col("Status", '.status.conditions[?(@.type=="Progressing")].message'),
]
MCP_COLUMNS = [
    col("Config", ".status.configuration.name"),
    col("Updated", '.status.conditions[?(@.type=="Updated")].status'),
    col("Updating", '.status.conditions[?(@.type=="Updating")].status'),
    col("Degraded", '.status.conditions[?(@.type=="Degraded")].status'),
    col("MachineCount", ".status.machineCount", "number", "Total number of machines in the machine config pool"),
    col("ReadyMachineCount", ".status.readyMachineCount", "number", "Total number of ready machines targeted by the pool"),
    col("UpdatedMachineCount", ".status.updatedMachineCount", "number", "Total number of machines targeted by the pool that have the CurrentMachineConfig as their config"),
    col("DegradedMachineCount", ".status.degradedMachineCount", "number", "Total number of machines marked degraded (or unreconcilable)"),
    col("Age", ".metadata.creationTimestamp", "date"),
]
MC_COLUMNS = [
    col("GeneratedByController", ".metadata.annotations.machineconfiguration\\.openshift\\.io/generated-by-controller-version",
        description="Version of the controller that generated the machineconfig. This will be empty if the machineconfig is not managed by a controller."),
    col("IgnitionVersion", ".spec.config.ignition.version", description="Version of the Ignition Config defined in the machineconfig."),
    col("Age", ".metadata.creationTimestamp", "date"),
]

# (group, version, kind) -> dict(plural, scope, shortNames, columns, status)
CUSTOM = {}


def custom(group, kind, plural, scope="Cluster", short=None, columns=None, status=True, version="v1"):
    CUSTOM[(group, version, kind)] = {
        "plural": plural,
        "scope": scope,
        "shortNames": short or [],
        "columns": columns or [],
        "status": status,
    }


CFG = "config.openshift.io"
custom(CFG, "ClusterOperator", "clusteroperators", short=["co"], columns=CO_COLUMNS)
custom(CFG, "ClusterVersion", "clusterversions", columns=CV_COLUMNS)
custom(CFG, "Infrastructure", "infrastructures")
custom(CFG, "Network", "networks")
custom(CFG, "Proxy", "proxies")
custom(CFG, "OAuth", "oauths")
custom(CFG, "Ingress", "ingresses")
custom(CFG, "Image", "images")
custom(CFG, "FeatureGate", "featuregates")
custom(CFG, "APIServer", "apiservers")
custom(CFG, "Authentication", "authentications")
MCO = "machineconfiguration.openshift.io"
custom(MCO, "MachineConfigPool", "machineconfigpools", short=["mcp"], columns=MCP_COLUMNS)
custom(MCO, "MachineConfig", "machineconfigs", short=["mc"], columns=MC_COLUMNS, status=False)
OP = "operator.openshift.io"
for kind, plural in [
    ("Authentication", "authentications"),
    ("CloudCredential", "cloudcredentials"),
    ("Config", "configs"),
    ("Console", "consoles"),
    ("CSISnapshotController", "csisnapshotcontrollers"),
    ("DNS", "dnses"),
    ("Etcd", "etcds"),
    ("InsightsOperator", "insightsoperators"),
    ("KubeAPIServer", "kubeapiservers"),
    ("KubeControllerManager", "kubecontrollermanagers"),
    ("KubeScheduler", "kubeschedulers"),
    ("KubeStorageVersionMigrator", "kubestorageversionmigrators"),
    ("Network", "networks"),
    ("OpenShiftAPIServer", "openshiftapiservers"),
    ("OpenShiftControllerManager", "openshiftcontrollermanagers"),
    ("ServiceCA", "servicecas"),
    ("Storage", "storages"),
]:
    custom(OP, kind, plural)
custom(OP, "IngressController", "ingresscontrollers", scope="Namespaced")
custom("imageregistry.operator.openshift.io", "Config", "configs")
custom("imageregistry.operator.openshift.io", "ImagePruner", "imagepruners")
custom("samples.operator.openshift.io", "Config", "configs")
# Kinds of the other sample records (import_more); real plurals, scopes and short names.
custom(CFG, "Scheduler", "schedulers")
custom(MCO, "ContainerRuntimeConfig", "containerruntimeconfigs", short=["ctrcfg"])
custom(MCO, "KubeletConfig", "kubeletconfigs")
MAPI = "machine.openshift.io"
custom(MAPI, "Machine", "machines", scope="Namespaced", version="v1beta1")
custom(MAPI, "MachineSet", "machinesets", scope="Namespaced", version="v1beta1")
custom(MAPI, "MachineHealthCheck", "machinehealthchecks", scope="Namespaced", short=["mhc", "mhcs"], version="v1beta1")
custom(MAPI, "ControlPlaneMachineSet", "controlplanemachinesets", scope="Namespaced")
custom("autoscaling.openshift.io", "MachineAutoscaler", "machineautoscalers", scope="Namespaced", short=["ma"], version="v1beta1")
custom("nmstate.io", "NodeNetworkConfigurationPolicy", "nodenetworkconfigurationpolicies", short=["nncp"])
custom("nmstate.io", "NodeNetworkState", "nodenetworkstates", short=["nns"], version="v1beta1")
custom("security.openshift.io", "SecurityContextConstraints", "securitycontextconstraints", short=["scc"], status=False)
# authorization.openshift.io is an aggregated API in OpenShift; here it is declared by a CRD.
custom("authorization.openshift.io", "ClusterRoleBinding", "clusterrolebindings", status=False)
custom("image.openshift.io", "ImageStream", "imagestreams", scope="Namespaced", short=["is"])
custom("costmanagement-metrics-cfg.openshift.io", "CostManagementMetricsConfig", "costmanagementmetricsconfigs",
       scope="Namespaced", version="v1beta1")
custom("jaegertracing.io", "Jaeger", "jaegers", scope="Namespaced")
custom("logging.openshift.io", "ClusterLogging", "clusterloggings", scope="Namespaced", short=["cl"])
custom("loki.grafana.com", "LokiStack", "lokistacks", scope="Namespaced")
custom("opentelemetry.io", "OpenTelemetryCollector", "opentelemetrycollectors", scope="Namespaced",
       short=["otelcol", "otelcols"], version="v1beta1")
custom("ceph.rook.io", "CephCluster", "cephclusters", scope="Namespaced")
custom("ocs.openshift.io", "StorageCluster", "storageclusters", scope="Namespaced")
OLM = "operators.coreos.com"
custom(OLM, "Subscription", "subscriptions", scope="Namespaced", short=["sub", "subs"], version="v1alpha1")
custom(OLM, "InstallPlan", "installplans", scope="Namespaced", short=["ip"], version="v1alpha1")
custom(OLM, "ClusterServiceVersion", "clusterserviceversions", scope="Namespaced", short=["csv", "csvs"], version="v1alpha1")
custom(OLM, "Operator", "operators")
custom("installers.datahub.sap.com", "DataHub", "datahubs", scope="Namespaced", version="v1alpha1")
custom("nfd.k8s-sigs.io", "NodeFeature", "nodefeatures", scope="Namespaced", status=False, version="v1alpha1")
custom("core.openstack.org", "OpenStackControlPlane", "openstackcontrolplanes", scope="Namespaced", short=["osctlplane"], version="v1beta1")
custom("core.openstack.org", "OpenStackVersion", "openstackversions", scope="Namespaced", short=["osv"], version="v1beta1")
custom("dataplane.openstack.org", "OpenStackDataPlaneDeployment", "openstackdataplanedeployments", scope="Namespaced",
       short=["osdpd"], version="v1beta1")
custom("dataplane.openstack.org", "OpenStackDataPlaneNodeSet", "openstackdataplanenodesets", scope="Namespaced",
       short=["osdpns"], version="v1beta1")
custom("monitoring.coreos.com", "Prometheus", "prometheuses", scope="Namespaced")
custom("monitoring.coreos.com", "Alertmanager", "alertmanagers", scope="Namespaced")
custom("network.openshift.io", "NetNamespace", "netnamespaces", short=["netns"], status=False)
custom("controlplane.operator.openshift.io", "PodNetworkConnectivityCheck", "podnetworkconnectivitychecks",
       scope="Namespaced", version="v1alpha1")

# IO's directory name under config/clusteroperator/operator.openshift.io/ -> kind
OPERATOR_DIRS = {
    "authentication": "Authentication",
    "cloudcredential": "CloudCredential",
    "config": "Config",
    "console": "Console",
    "csisnapshotcontroller": "CSISnapshotController",
    "dns": "DNS",
    "etcd": "Etcd",
    "ingresscontroller": "IngressController",
    "insightsoperator": "InsightsOperator",
    "kubeapiserver": "KubeAPIServer",
    "kubecontrollermanager": "KubeControllerManager",
    "kubescheduler": "KubeScheduler",
    "kubestorageversionmigrator": "KubeStorageVersionMigrator",
    "network": "Network",
    "openshiftapiserver": "OpenShiftAPIServer",
    "openshiftcontrollermanager": "OpenShiftControllerManager",
    "serviceca": "ServiceCA",
    "storage": "Storage",
}

# config/<file>.json -> kind (all config.openshift.io/v1, named "cluster")
CONFIG_SINGLETONS = [
    ("infrastructure", "Infrastructure"),
    ("network", "Network"),
    ("proxy", "Proxy"),
    ("oauth", "OAuth"),
    ("ingress", "Ingress"),
    ("image", "Image"),
    ("featuregate", "FeatureGate"),
    ("apiserver", "APIServer"),
    ("authentication", "Authentication"),
]

# Canonical ObjectMeta key order (as the API server serializes it).
META_ORDER = [
    "name", "generateName", "namespace", "selfLink", "uid", "resourceVersion",
    "generation", "creationTimestamp", "deletionTimestamp",
    "deletionGracePeriodSeconds", "labels", "annotations", "ownerReferences",
    "finalizers", "managedFields",
]

NOTES = []  # surprises found while importing, printed at the end


def note(msg):
    NOTES.append(msg)


def split_api_version(api_version):
    if "/" in api_version:
        g, v = api_version.split("/", 1)
        return g, v
    return "", api_version


def type_info(obj):
    g, v = split_api_version(obj["apiVersion"])
    key = (g, v, obj["kind"])
    if key in BUILTIN:
        plural, scope = BUILTIN[key]
        return g, v, plural, scope
    if key in CUSTOM:
        c = CUSTOM[key]
        return g, v, c["plural"], c["scope"]
    raise SystemExit("no type info for %r" % (key,))


def gen_uid(*parts):
    return str(uuid.uuid5(UID_NS, "/".join(parts)))


def read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def with_type_first(obj, api_version, kind):
    """Return obj with apiVersion/kind set; restored ones are put first."""
    if "apiVersion" in obj and "kind" in obj:
        if obj["apiVersion"] != api_version or obj["kind"] != kind:
            raise SystemExit("unexpected type %s/%s, want %s/%s" % (
                obj["apiVersion"], obj["kind"], api_version, kind))
        return obj
    out = {"apiVersion": api_version, "kind": kind}
    for k, v in obj.items():
        if k not in ("apiVersion", "kind"):
            out[k] = v
    return out


def meta_set(meta, key, value):
    """Insert key into metadata dict at its canonical position."""
    if key in meta:
        meta[key] = value
        return meta
    idx = META_ORDER.index(key)
    out = {}
    inserted = False
    for k, v in meta.items():
        if not inserted and k in META_ORDER and META_ORDER.index(k) > idx:
            out[key] = value
            inserted = True
        out[k] = v
    if not inserted:
        out[key] = value
    meta.clear()
    meta.update(out)
    return meta


def self_link(obj):
    g, v, plural, scope = type_info(obj)
    m = obj["metadata"]
    base = "/api/%s" % v if g == "" else "/apis/%s/%s" % (g, v)
    if scope == "Namespaced":
        return "%s/namespaces/%s/%s/%s" % (base, m["namespace"], plural, m["name"])
    return "%s/%s/%s" % (base, plural, m["name"])


def check_self_link(obj, src):
    sl = obj["metadata"].get("selfLink")
    if sl is None:
        note("%s: no metadata.selfLink (type taken from the file name)" % src)
        return
    want = self_link(obj)
    if urllib.parse.unquote(sl) != want:
        raise SystemExit("%s: selfLink %s does not match %s" % (src, sl, want))


# ---------------------------------------------------------------------------
# managedFields (IO strips them; we add one realistic entry so that tests can
# check that gatherers strip them again)
# ---------------------------------------------------------------------------

def latest_time(obj):
    times = []
    for c in obj.get("status", {}).get("conditions", []) or []:
        for k in ("lastHeartbeatTime", "lastTransitionTime"):
            if c.get(k):
                times.append(c[k])
    return max(times) if times else obj["metadata"]["creationTimestamp"]


def cond_fields(conds, keys):
    """fieldsV1 for a conditions list, kept small: only the Ready condition
    (or the first one if there is no Ready condition)."""
    conds = conds or []
    pick = [c for c in conds if c.get("type") == "Ready"] or conds[:1]
    out = {}
    if conds:
        out["."] = {}
    for c in pick:
        out['k:{"type":"%s"}' % c["type"]] = {".": {}, **{"f:" + k: {} for k in keys if k in c}}
    return out


def managed_fields_entry(obj):
    kind = obj["kind"]
    st = obj.get("status", {})
    if kind == "Node":
        manager = "kubelet"
        fields = {"f:status": {
            "f:conditions": cond_fields(st.get("conditions"), [
                "lastHeartbeatTime", "lastTransitionTime", "message", "reason", "status", "type"]),
        }}
        if "nodeInfo" in st:
            fields["f:status"]["f:nodeInfo"] = {"f:bootID": {}}
    elif kind == "Pod":
        scheduled = bool(obj.get("spec", {}).get("nodeName"))
        manager = "kubelet" if scheduled else "kube-scheduler"
        status = {"f:conditions": cond_fields(st.get("conditions"), [
            "lastProbeTime", "lastTransitionTime", "message", "reason", "status", "type"])}
        if scheduled:
            for k in ("containerStatuses", "hostIP", "initContainerStatuses", "phase", "podIP", "podIPs", "startTime"):
                if k in st:
                    status["f:" + k] = {}
        fields = {"f:status": status}
    elif kind == "ClusterOperator":
        manager = "cluster-version-operator"
        ann = obj["metadata"].get("annotations", {})
        fields = {}
        if ann:
            fields["f:metadata"] = {"f:annotations": {".": {}, **{"f:" + k: {} for k in ann}}}
        fields["f:spec"] = {}
        fields["f:status"] = {".": {}, "f:extension": {}}
    elif kind == "ClusterVersion":
        manager = "cluster-version-operator"
        fields = {"f:status": {".": {}, **{"f:" + k: {} for k in sorted(st)}}}
    elif kind in ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"):
        # service-ca injects the CA bundle into every webhook.
        manager = "service-ca-operator"
        fields = {"f:webhooks": {}}
    elif kind == "PodDisruptionBudget":
        manager = "kube-controller-manager"
        fields = {"f:status": {".": {}, **{"f:" + k: {} for k in sorted(st)}}}
    else:
        raise SystemExit("no managedFields template for " + kind)
    return {
        "manager": manager,
        "operation": "Update",
        "apiVersion": obj["apiVersion"],
        "time": latest_time(obj),
        "fieldsType": "FieldsV1",
        "fieldsV1": fields,
    }


def add_managed_fields(obj):
    m = obj["metadata"]
    if "managedFields" not in m:
        meta_set(m, "managedFields", [managed_fields_entry(obj)])


# ---------------------------------------------------------------------------
# object store
# ---------------------------------------------------------------------------

class Store:
    def __init__(self):
        self.objs = {}  # (group, plural, ns, name) -> obj
        self.sources = {}

    def add(self, obj, src):
        g, v, plural, scope = type_info(obj)
        m = obj["metadata"]
        ns = m.get("namespace", "")
        if scope == "Namespaced" and not ns:
            raise SystemExit("%s: namespaced %s without namespace" % (src, obj["kind"]))
        if scope == "Cluster" and ns:
            raise SystemExit("%s: cluster-scoped %s with namespace" % (src, obj["kind"]))
        key = (g, plural, ns, m["name"])
        if key in self.objs:
            if self.objs[key] == obj:
                note("%s is an exact duplicate of %s (%s %s); imported once" % (
                    src, self.sources[key], obj["kind"], m["name"]))
                return
            raise SystemExit("%s: conflicting duplicate of %s" % (src, self.sources[key]))
        # fill in uid / creationTimestamp (item 12)
        if not m.get("uid"):
            meta_set(m, "uid", gen_uid(g, plural, ns, m["name"]))
        if not m.get("creationTimestamp"):
            meta_set(m, "creationTimestamp", CLUSTER_CREATED)
        self.objs[key] = obj
        self.sources[key] = src

    def write(self, out_dir):
        counts = {}
        for (g, plural, ns, name), obj in sorted(self.objs.items()):
            parts = [out_dir, g or "core", plural]
            if ns:
                parts.append(ns)
            parts.append(name + ".json")
            path = os.path.join(*parts)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w", encoding="utf-8", newline="\n") as f:
                f.write(json.dumps(obj, indent=2, ensure_ascii=False))
                f.write("\n")
            k = (g or "core", plural)
            counts[k] = counts.get(k, 0) + 1
        return counts


# ---------------------------------------------------------------------------
# importers
# ---------------------------------------------------------------------------

def listdir_json(d):
    return sorted(f for f in os.listdir(d) if f.endswith(".json"))


def import_clusteroperators(store, cfg):
    d = os.path.join(cfg, "clusteroperator")
    for f in listdir_json(d):
        obj = with_type_first(read_json(os.path.join(d, f)), CFG + "/v1", "ClusterOperator")
        check_self_link(obj, "config/clusteroperator/" + f)
        add_managed_fields(obj)
        store.add(obj, "config/clusteroperator/" + f)


def import_nodes(store, cfg):
    d = os.path.join(cfg, "node")
    for f in listdir_json(d):
        obj = with_type_first(read_json(os.path.join(d, f)), "v1", "Node")
        check_self_link(obj, "config/node/" + f)
        add_managed_fields(obj)
        store.add(obj, "config/node/" + f)


def import_version(store, cfg):
    obj = with_type_first(read_json(os.path.join(cfg, "version.json")), CFG + "/v1", "ClusterVersion")
    check_self_link(obj, "config/version.json")
    add_managed_fields(obj)
    store.add(obj, "config/version.json")
    id_path = os.path.join(cfg, "id")
    if os.path.exists(id_path):
        with open(id_path, encoding="utf-8") as fh:
            io_id = fh.read().strip()
        cid = obj.get("spec", {}).get("clusterID")
        if io_id != cid:
            note("config/id is %s but ClusterVersion spec.clusterID is %s" % (io_id, cid))
    return obj


def import_singletons(store, cfg):
    cv_uid = None
    for (g, plural, ns, name), o in store.objs.items():
        if o["kind"] == "ClusterVersion":
            cv_uid = o["metadata"]["uid"]
    for fname, kind in CONFIG_SINGLETONS:
        src = "config/%s.json" % fname
        obj = with_type_first(read_json(os.path.join(cfg, fname + ".json")), CFG + "/v1", kind)
        check_self_link(obj, src)
        for ref in obj["metadata"].get("ownerReferences", []):
            if ref.get("kind") == "ClusterVersion" and ref.get("uid") != cv_uid:
                note("%s: ownerReference to ClusterVersion uid %s, but the ClusterVersion's uid is %s "
                     "(object comes from another cluster; creationTimestamp %s)" % (
                         src, ref.get("uid"), cv_uid, obj["metadata"].get("creationTimestamp")))
        store.add(obj, src)


def import_pods(store, cfg):
    d = os.path.join(cfg, "pod")
    pods = []
    for ns in sorted(os.listdir(d)):
        nd = os.path.join(d, ns)
        if not os.path.isdir(nd):
            continue
        for f in listdir_json(nd):
            src = "config/pod/%s/%s" % (ns, f)
            obj = with_type_first(read_json(os.path.join(nd, f)), "v1", "Pod")
            if obj["metadata"].get("namespace") != ns:
                raise SystemExit("%s: namespace mismatch" % src)
            check_self_link(obj, src)
            add_managed_fields(obj)
            store.add(obj, src)
            pods.append(obj)
    return pods


def import_mco(store, cfg):
    for sub, kind in (("machineconfigpools", "MachineConfigPool"), ("machineconfigs", "MachineConfig")):
        d = os.path.join(cfg, sub)
        for f in listdir_json(d):
            src = "config/%s/%s" % (sub, f)
            obj = with_type_first(read_json(os.path.join(d, f)), MCO + "/v1", kind)
            check_self_link(obj, src)
            if f[:-5] != obj["metadata"]["name"]:
                note("%s holds the %s named %r" % (src, kind, obj["metadata"]["name"]))
            store.add(obj, src)


def import_operator_configs(store, cfg):
    base = os.path.join(cfg, "clusteroperator")
    # operator.openshift.io: IO writes {apiVersion, kind, name, spec[, status]}
    # (metadata reduced to the name). Turn "name" back into metadata.
    od = os.path.join(base, OP)
    for sub in sorted(os.listdir(od)):
        kind = OPERATOR_DIRS[sub]
        sd = os.path.join(od, sub)
        entries = []
        for e in sorted(os.listdir(sd)):
            p = os.path.join(sd, e)
            if os.path.isdir(p):  # namespaced: <kind>/<namespace>/<name>.json
                entries += [(e, os.path.join(p, f), "%s/%s/%s" % (sub, e, f)) for f in listdir_json(p)]
            elif e.endswith(".json"):
                entries.append(("", p, "%s/%s" % (sub, e)))
        for ns, path, rel in entries:
            src = "config/clusteroperator/%s/%s" % (OP, rel)
            raw = read_json(path)
            if raw.get("apiVersion") != OP + "/v1" or raw.get("kind") != kind:
                raise SystemExit("%s: unexpected type %s %s" % (src, raw.get("apiVersion"), raw.get("kind")))
            meta = {"name": raw["name"]}
            if ns:
                meta["namespace"] = ns
            obj = {"apiVersion": raw["apiVersion"], "kind": raw["kind"], "metadata": meta}
            for k, v in raw.items():
                if k not in ("apiVersion", "kind", "name", "metadata"):
                    obj[k] = v
            store.add(obj, src)
    # imageregistry / samples: full objects (imageregistry without kind/apiVersion)
    for group, sub, kind in (
        ("imageregistry.operator.openshift.io", "config", "Config"),
        ("imageregistry.operator.openshift.io", "imagepruner", "ImagePruner"),
        ("samples.operator.openshift.io", "config", "Config"),
    ):
        sd = os.path.join(base, group, sub)
        for f in listdir_json(sd):
            src = "config/clusteroperator/%s/%s/%s" % (group, sub, f)
            raw = read_json(os.path.join(sd, f))
            if "metadata" not in raw:  # anonymized form as above
                obj = {"apiVersion": raw["apiVersion"], "kind": raw["kind"], "metadata": {"name": raw["name"]}}
                for k, v in raw.items():
                    if k not in ("apiVersion", "kind", "name"):
                        obj[k] = v
            else:
                obj = with_type_first(raw, group + "/v1", kind)
                check_self_link(obj, src)
            if obj["apiVersion"] != group + "/v1" or obj["kind"] != kind:
                raise SystemExit("%s: unexpected type" % src)
            store.add(obj, src)


def import_crds(store, cfg):
    d = os.path.join(cfg, "crd")
    if not os.path.isdir(d):
        return
    for f in listdir_json(d):
        src = "config/crd/" + f
        obj = with_type_first(read_json(os.path.join(d, f)), "apiextensions.k8s.io/v1", "CustomResourceDefinition")
        check_self_link(obj, src)
        store.add(obj, src)


def import_webhook_configurations(store, cfg):
    for kind, dirname in (("ValidatingWebhookConfiguration", "validatingwebhookconfigurations"),
                          ("MutatingWebhookConfiguration", "mutatingwebhookconfigurations")):
        d = os.path.join(cfg, dirname)
        if not os.path.isdir(d):
            continue
        for f in listdir_json(d):
            src = "config/%s/%s" % (dirname, f)
            obj = with_type_first(read_json(os.path.join(d, f)), "admissionregistration.k8s.io/v1", kind)
            if obj["metadata"]["name"] + ".json" != f:
                note("%s holds %s %s (the file name does not match)" % (src, kind, obj["metadata"]["name"]))
            add_managed_fields(obj)
            store.add(obj, src)


def import_pdbs(store, cfg):
    """config/pdbs/<namespace>/<name>.json; the sample's policy/v1beta1 objects are served
    as policy/v1 (v1beta1 is gone from current API servers), without their old selfLink."""
    d = os.path.join(cfg, "pdbs")
    if not os.path.isdir(d):
        return
    for ns in sorted(os.listdir(d)):
        for f in listdir_json(os.path.join(d, ns)):
            src = "config/pdbs/%s/%s" % (ns, f)
            obj = read_json(os.path.join(d, ns, f))
            if obj.get("apiVersion") == "policy/v1beta1":
                obj["apiVersion"] = "policy/v1"
                obj["metadata"].pop("selfLink", None)
                note("%s: policy/v1beta1 PodDisruptionBudget served as policy/v1" % src)
            obj = with_type_first(obj, "policy/v1", "PodDisruptionBudget")
            add_managed_fields(obj)
            store.add(obj, src)


def add_synthetic_pdbs(store):
    """A PodDisruptionBudget outside openshift-* namespaces, which IO's rule leaves out."""
    obj = {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {
            "name": "web",
            "namespace": "default",
            "creationTimestamp": CLUSTER_CREATED,
            "annotations": {SYNTHETIC: "a user PDB: not gathered (IO gathers openshift* namespaces only)"},
        },
        "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}},
        "status": {"currentHealthy": 0, "desiredHealthy": 1, "disruptionsAllowed": 0, "expectedPods": 0,
                   "observedGeneration": 1},
    }
    add_managed_fields(obj)
    store.add(obj, "synthetic")


# ---------------------------------------------------------------------------
# synthetic objects
# ---------------------------------------------------------------------------

def synth_annotations(meta, text):
    ann = dict(meta.get("annotations", {}))
    ann[SYNTHETIC] = text
    meta_set(meta, "annotations", ann)


def healthy_container_status(cs, started_at):
    out = {}
    for k, v in cs.items():
        if k == "state":
            out[k] = {"running": {"startedAt": started_at}}
        elif k == "lastState":
            out[k] = {}
        elif k == "ready":
            out[k] = True
        elif k == "restartCount":
            out[k] = 0
        elif k == "started":
            out[k] = True
        elif k == "containerID":
            out[k] = "cri-o://" + uuid.uuid5(UID_NS, "cid/" + started_at + "/" + cs["name"]).hex * 2
        else:
            out[k] = v
    return out


def completed_init_status(cs, started_at):
    out = dict(cs)
    out["state"] = {"terminated": {"exitCode": 0, "reason": "Completed",
                                   "startedAt": started_at, "finishedAt": started_at}}
    out["lastState"] = {}
    out["ready"] = True
    out["restartCount"] = 0
    return out


def derive_healthy_pod(src, new_name):
    """Copy a sample pod and make it healthy: Running, all restartCounts 0."""
    p = copy.deepcopy(src)
    m = p["metadata"]
    src_ref = "%s/%s" % (m["namespace"], m["name"])
    m["name"] = new_name
    m.pop("resourceVersion", None)  # the simulator assigns one
    m.pop("managedFields", None)
    meta_set(m, "uid", gen_uid("pod", m["namespace"], new_name))
    meta_set(m, "creationTimestamp", SYNTH_POD_CREATED)
    if "selfLink" in m:
        m["selfLink"] = self_link(p)
    synth_annotations(m, "healthy copy of sample pod " + src_ref)
    st = p["status"]
    # Give the copy its own pod IP (last octet + 100), also in the CNI annotations.
    old_ip = st.get("podIP")
    if old_ip and "." in old_ip:
        head, last = old_ip.rsplit(".", 1)
        new_ip = "%s.%d" % (head, (int(last) + 100) % 250)
        st["podIP"] = new_ip
        st["podIPs"] = [{"ip": new_ip}]
        for k, v in list(m.get("annotations", {}).items()):
            if isinstance(v, str) and '"%s"' % old_ip in v:
                m["annotations"][k] = v.replace('"%s"' % old_ip, '"%s"' % new_ip)
    st["phase"] = "Running"
    st["conditions"] = [
        {"type": t, "status": "True", "lastProbeTime": None,
         "lastTransitionTime": SYNTH_POD_STARTED if t in ("Ready", "ContainersReady") else SYNTH_POD_CREATED}
        for t in ("Initialized", "Ready", "ContainersReady", "PodScheduled")
    ]
    st["startTime"] = SYNTH_POD_CREATED
    if "initContainerStatuses" in st:
        st["initContainerStatuses"] = [completed_init_status(c, SYNTH_POD_CREATED) for c in st["initContainerStatuses"]]
    st["containerStatuses"] = [healthy_container_status(c, SYNTH_POD_STARTED) for c in st["containerStatuses"]]
    add_managed_fields(p)
    return p


def app_pod(ns, name, rs_hash, failing):
    """A small workload pod in a non-openshift namespace."""
    cstate = {"running": {"startedAt": SYNTH_POD_STARTED}}
    last = {}
    restarts = 0
    ready = True
    if failing:
        cstate = {"waiting": {"reason": "CrashLoopBackOff",
                              "message": "back-off 5m0s restarting failed container=web pod=%s_%s(%s)" % (
                                  name, ns, gen_uid("pod", ns, name))}}
        last = {"terminated": {"exitCode": 1, "reason": "Error",
                               "startedAt": "2021-07-12T08:31:02Z", "finishedAt": "2021-07-12T08:31:04Z",
                               "containerID": "cri-o://" + uuid.uuid5(UID_NS, "cid/" + name).hex * 2}}
        restarts = 7
        ready = False
    cond_ready = "False" if failing else "True"
    cs = {"name": "web", "state": cstate, "lastState": last, "ready": ready, "restartCount": restarts,
          "image": "registry.access.redhat.com/ubi8/httpd-24:1-143",
          "imageID": "registry.access.redhat.com/ubi8/httpd-24@sha256:" + (uuid.uuid5(UID_NS, "img/httpd").hex * 2),
          "started": not failing}
    if not failing:
        cs["containerID"] = "cri-o://" + uuid.uuid5(UID_NS, "cid/" + name).hex * 2
    ready_cond = {"type": "Ready", "status": cond_ready, "lastProbeTime": None,
                  "lastTransitionTime": SYNTH_POD_STARTED}
    cready_cond = {"type": "ContainersReady", "status": cond_ready, "lastProbeTime": None,
                   "lastTransitionTime": SYNTH_POD_STARTED}
    if failing:
        for c in (ready_cond, cready_cond):
            c["reason"] = "ContainersNotReady"
            c["message"] = "containers with unready status: [web]"
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "generateName": "web-%s-" % rs_hash,
            "namespace": ns,
            "uid": gen_uid("pod", ns, name),
            "creationTimestamp": SYNTH_POD_CREATED,
            "labels": {"app": "web", "pod-template-hash": rs_hash},
            "annotations": {SYNTHETIC: "%s pod in a non-openshift namespace" % ("failing" if failing else "healthy")},
            "ownerReferences": [{
                "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-" + rs_hash,
                "uid": gen_uid("replicasets", ns, "web-" + rs_hash), "controller": True,
                "blockOwnerDeletion": True}],
        },
        "spec": {
            "containers": [{
                "name": "web",
                "image": "registry.access.redhat.com/ubi8/httpd-24:1-143",
                "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                "resources": {},
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File",
                "imagePullPolicy": "IfNotPresent",
            }],
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst",
            "serviceAccountName": "default",
            "serviceAccount": "default",
            "nodeName": "worker-0.imeixner20210707.lab.upshift.rdu2.redhat.com",
            "securityContext": {},
            "schedulerName": "default-scheduler",
            "priority": 0,
            "enableServiceLinks": True,
            "preemptionPolicy": "PreemptLowerPriority",
        },
        "status": {
            "phase": "Running",
            "conditions": [
                {"type": "Initialized", "status": "True", "lastProbeTime": None, "lastTransitionTime": SYNTH_POD_CREATED},
                ready_cond,
                cready_cond,
                {"type": "PodScheduled", "status": "True", "lastProbeTime": None, "lastTransitionTime": SYNTH_POD_CREATED},
            ],
            "hostIP": "10.0.89.93",
            "podIP": "10.129.0.%d" % (201 if failing else 200),
            "podIPs": [{"ip": "10.129.0.%d" % (201 if failing else 200)}],
            "startTime": SYNTH_POD_CREATED,
            "containerStatuses": [cs],
            "qosClass": "BestEffort",
        },
    }
    add_managed_fields(pod)
    return pod


def installer_pod(ns, name):
    """A completed (Succeeded) installer pod: healthy, must not be gathered."""
    image = "quay.io/openshift-release-dev/ocp-v4.0-art-dev@sha256:" + uuid.uuid5(UID_NS, "img/installer").hex * 2
    node = "master-0.imeixner20210707.lab.upshift.rdu2.redhat.com"
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": ns,
            "uid": gen_uid("pod", ns, name),
            "creationTimestamp": SYNTH_POD_CREATED,
            "labels": {"app": "installer"},
            "annotations": {SYNTHETIC: "completed (Succeeded) pod in an openshift namespace"},
        },
        "spec": {
            "containers": [{
                "name": "installer",
                "image": image,
                "command": ["cluster-kube-scheduler-operator", "installer"],
                "resources": {"requests": {"cpu": "150m", "memory": "200M"}},
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "FallbackToLogsOnError",
                "imagePullPolicy": "IfNotPresent",
            }],
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst",
            "serviceAccountName": "installer-sa",
            "serviceAccount": "installer-sa",
            "nodeName": node,
            "securityContext": {"runAsUser": 0},
            "schedulerName": "default-scheduler",
            "priorityClassName": "system-node-critical",
            "priority": 2000001000,
            "enableServiceLinks": True,
            "preemptionPolicy": "PreemptLowerPriority",
        },
        "status": {
            "phase": "Succeeded",
            "conditions": [
                {"type": "Initialized", "status": "True", "lastProbeTime": None, "lastTransitionTime": SYNTH_POD_CREATED},
                {"type": "Ready", "status": "False", "lastProbeTime": None, "lastTransitionTime": SYNTH_POD_STARTED,
                 "reason": "PodCompleted"},
                {"type": "ContainersReady", "status": "False", "lastProbeTime": None,
                 "lastTransitionTime": SYNTH_POD_STARTED, "reason": "PodCompleted"},
                {"type": "PodScheduled", "status": "True", "lastProbeTime": None, "lastTransitionTime": SYNTH_POD_CREATED},
            ],
            "hostIP": "10.0.88.27",
            "podIP": "10.128.0.90",
            "podIPs": [{"ip": "10.128.0.90"}],
            "startTime": SYNTH_POD_CREATED,
            "containerStatuses": [{
                "name": "installer",
                "state": {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": SYNTH_POD_CREATED,
                                         "finishedAt": SYNTH_POD_STARTED,
                                         "containerID": "cri-o://" + uuid.uuid5(UID_NS, "cid/" + name).hex * 2}},
                "lastState": {},
                "ready": False,
                "restartCount": 0,
                "image": image,
                "imageID": image,
                "containerID": "cri-o://" + uuid.uuid5(UID_NS, "cid/" + name).hex * 2,
                "started": False,
            }],
            "qosClass": "Burstable",
        },
    }
    add_managed_fields(pod)
    return pod


def add_synthetic_pods(store, pods):
    by_name = {(p["metadata"]["namespace"], p["metadata"]["name"]): p for p in pods}
    synth = [
        derive_healthy_pod(by_name[("openshift-monitoring", "cluster-monitoring-operator-6c785d75f6-t79zv")],
                           "cluster-monitoring-operator-6c785d75f6-healthy-7k2qx"),
        derive_healthy_pod(by_name[("openshift-service-ca", "service-ca-7d7647cfdb-szfd8")],
                           "service-ca-7d7647cfdb-healthy-r4m8n"),
        installer_pod("openshift-kube-scheduler", "installer-7-master-0-healthy-q9w3z"),
        app_pod("sample-app", "web-5d8f7c9b6d-healthy-x2k4p", "5d8f7c9b6d", failing=False),
        app_pod("sample-app", "web-5d8f7c9b6d-failing-m7c9t", "5d8f7c9b6d", failing=True),
    ]
    for p in synth:
        store.add(p, "synthetic")
    return synth


def add_namespaces(store):
    first = {}
    for (g, plural, ns, name), o in store.objs.items():
        if ns:
            ts = o["metadata"]["creationTimestamp"]
            first[ns] = min(first.get(ns, ts), ts, CLUSTER_CREATED)
    for ns in sorted(first):
        if ("", "namespaces", "", ns) in store.objs:
            continue
        obj = {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": ns,
                "uid": gen_uid("namespace", ns),
                "creationTimestamp": first[ns],
                "labels": {"kubernetes.io/metadata.name": ns},
                "annotations": {SYNTHETIC: "namespace of objects in the sample"},
            },
            "spec": {"finalizers": ["kubernetes"]},
            "status": {"phase": "Active"},
        }
        store.add(obj, "synthetic")


# Kinds declared although the fixtures hold no object of them: an empty list is what IO's
# rule needs (install_plans records zero plans; a 404 would mean "no record").
DECLARED_EMPTY = [(OLM, "v1alpha1", "InstallPlan")]


def add_crds(store):
    used = set(DECLARED_EMPTY)
    for (g, plural, ns, name), o in store.objs.items():
        gg, v = split_api_version(o["apiVersion"])
        key = (gg, v, o["kind"])
        if key not in BUILTIN:
            used.add(key)
    for key in sorted(used):
        if key not in CUSTOM:
            raise SystemExit("no CRD info for %r" % (key,))
        g, v, kind = key
        c = CUSTOM[key]
        names = {"plural": c["plural"], "singular": kind.lower()}
        if c["shortNames"]:
            names["shortNames"] = list(c["shortNames"])
        names["kind"] = kind
        names["listKind"] = kind + "List"
        version = {
            "name": v,
            "served": True,
            "storage": True,
            "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
        }
        if c["status"]:
            version["subresources"] = {"status": {}}
        if c["columns"]:
            version["additionalPrinterColumns"] = copy.deepcopy(c["columns"])
        crd_name = "%s.%s" % (c["plural"], g)
        if ("apiextensions.k8s.io", "customresourcedefinitions", "", crd_name) in store.objs:
            continue
        obj = {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {
                "name": crd_name,
                "uid": gen_uid("crd", crd_name),
                "creationTimestamp": CLUSTER_CREATED,
                "annotations": {SYNTHETIC: "CRD declaring a kind used in the sample"},
            },
            "spec": {
                "group": g,
                "names": names,
                "scope": c["scope"],
                "versions": [version],
                "conversion": {"strategy": "None"},
            },
            "status": {
                "conditions": [
                    {"type": "NamesAccepted", "status": "True", "lastTransitionTime": CLUSTER_CREATED,
                     "reason": "NoConflicts", "message": "no conflicts found"},
                    {"type": "Established", "status": "True", "lastTransitionTime": CLUSTER_CREATED,
                     "reason": "InitialNamesAccepted", "message": "the initial names have been accepted"},
                ],
                "acceptedNames": copy.deepcopy(names),
                "storedVersions": [v],
            },
        }
        store.add(obj, "synthetic")



# ---------------------------------------------------------------------------
# the other sample records: objects IO writes as they are, and objects built
# so that IO's rules produce the derived records (see FIXTURES-MAP.md)
# ---------------------------------------------------------------------------

# Pod container logs: (namespace, pod, container) -> text. Written to
# logs/<namespace>/<pod>/<container>.log (testdata/README.md, "Container logs").
LOGS = {}

# A fixed "now" for objects that must look recent: events carry an age instead
# (the simulator rewrites their timestamps at load, see testdata/README.md).
AGE = "gather-agent.test/age-seconds"


def read_text(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def sample_files(root, rel):
    """(relative path, absolute path) of the *.json files under root/rel, sorted."""
    d = os.path.join(root, rel)
    out = []
    if not os.path.isdir(d):
        return out
    for dirpath, dirnames, filenames in os.walk(d):
        dirnames.sort()
        for f in sorted(filenames):
            if f.endswith(".json"):
                p = os.path.join(dirpath, f)
                out.append((os.path.relpath(p, root), p))
    return out


def as_object(raw, api_version, kind, src):
    obj = with_type_first(raw, api_version, kind)
    if "selfLink" in obj.get("metadata", {}):
        check_self_link(obj, src)
    return obj


# (sample dir, apiVersion, kind): records that are whole objects, imported as they are.
WHOLE_OBJECTS = [
    ("cluster-scoped-resources/nmstate.io/nodenetworkconfigurationpolicies", "nmstate.io/v1", "NodeNetworkConfigurationPolicy"),
    ("cluster-scoped-resources/nmstate.io/nodenetworkstates", "nmstate.io/v1beta1", "NodeNetworkState"),
    ("cluster-scoped-resources/rbac.authorization.k8s.io/clusterroles", "rbac.authorization.k8s.io/v1", "ClusterRole"),
    ("config/containerruntimeconfigs", MCO + "/v1", "ContainerRuntimeConfig"),
    ("config/kubeletconfigs", MCO + "/v1", "KubeletConfig"),
    ("config/controlplanemachinesets", "machine.openshift.io/v1", "ControlPlaneMachineSet"),
    ("config/machines", "machine.openshift.io/v1beta1", "Machine"),
    ("machinesets", "machine.openshift.io/v1beta1", "MachineSet"),
    ("config/machinehealthchecks", "machine.openshift.io/v1beta1", "MachineHealthCheck"),
    ("config/machineautoscalers", "autoscaling.openshift.io/v1beta1", "MachineAutoscaler"),
    ("config/schedulers", CFG + "/v1", "Scheduler"),
    ("config/securitycontextconstraint", "security.openshift.io/v1", "SecurityContextConstraints"),
    ("config/clusterrolebinding", "authorization.openshift.io/v1", "ClusterRoleBinding"),
    ("config/storage/storageclasses", "storage.k8s.io/v1", "StorageClass"),
    ("config/storage/openshift-storage/storageclusters", "ocs.openshift.io/v1", "StorageCluster"),
    ("config/jaegertracing.io", "jaegertracing.io/v1", "Jaeger"),
    ("config/logging", "logging.openshift.io/v1", "ClusterLogging"),
    ("customresources/installers.datahub.sap.com/datahubs", "installers.datahub.sap.com/v1alpha1", "DataHub"),
    ("namespaces/openshift-logging", "loki.grafana.com/v1", "LokiStack"),
    ("namespaces/openstack/core.openstack.org/openstackcontrolplanes", "core.openstack.org/v1beta1", "OpenStackControlPlane"),
    ("namespaces/openstack/core.openstack.org/openstackversions", "core.openstack.org/v1beta1", "OpenStackVersion"),
    ("namespaces/openstack/dataplane.openstack.org/openstackdataplanedeployments", "dataplane.openstack.org/v1beta1",
     "OpenStackDataPlaneDeployment"),
    ("namespaces/openstack/dataplane.openstack.org/openstackdataplanenodesets", "dataplane.openstack.org/v1beta1",
     "OpenStackDataPlaneNodeSet"),
    ("conditional/namespaces/openshift-cluster-samples-operator/imagestreams", "image.openshift.io/v1", "ImageStream"),
    ("conditional/namespaces/openshift-monitoring/pods", "v1", "Pod"),
]


def import_whole_objects(store, root):
    for rel, api_version, kind in WHOLE_OBJECTS:
        for src, path in sample_files(root, rel):
            obj = as_object(read_json(path), api_version, kind, src)
            if kind == "Pod":
                add_managed_fields(obj)
            store.add(obj, src)


def import_moved_objects(store, root):
    """Records whose path names another namespace or name than the object holds: IO builds
    the path from the object, so the fixture object takes the path's namespace/name."""
    cfg = os.path.join(root, "config")
    # config/opentelemetry/<ns>/<name>.json; the sample object says v1alpha1 and namespace
    # openshift-opentelemetry-operator, IO lists opentelemetry.io/v1beta1.
    for src, path in sample_files(root, "config/opentelemetry"):
        obj = read_json(path)
        ns = src.split("/")[2]
        note("%s: OpenTelemetryCollector moved from namespace %s to %s and served as opentelemetry.io/v1beta1"
             " (IO lists v1beta1 and names the record after the object's namespace)" % (
                 src, obj["metadata"].get("namespace"), ns))
        obj["apiVersion"] = "opentelemetry.io/v1beta1"
        obj["metadata"]["namespace"] = ns
        store.add(obj, src)
    for src, path in sample_files(root, "config/subscriptions"):
        obj = read_json(path)
        ns = src.split("/")[2]
        if obj["metadata"].get("namespace") != ns:
            note("%s: Subscription moved from namespace %s to %s (the record path's namespace)" % (
                src, obj["metadata"].get("namespace"), ns))
            obj["metadata"]["namespace"] = ns
        store.add(as_object(obj, OLM + "/v1alpha1", "Subscription", src), src)
    # Both files hold an object named costmanagementmetricscfg-sample-token; the records are
    # named after the object, so each fixture object takes its file's name.
    for src, path in sample_files(root, "config/cost_management_metrics_configs"):
        obj = read_json(path)
        name = os.path.basename(path)[:-5]
        if obj["metadata"]["name"] != name:
            note("%s: CostManagementMetricsConfig %s renamed %s (the record name)" % (src, obj["metadata"]["name"], name))
            obj["metadata"]["name"] = name
        store.add(obj, src)
    # CSR: IO wrote its own anonymized struct (TypeMeta/ObjectMeta/Spec/Status). The object
    # is rebuilt from ObjectMeta and the last-applied-configuration it carries.
    for src, path in sample_files(root, "config/certificatesigningrequests"):
        raw = read_json(path)
        meta = copy.deepcopy(raw["ObjectMeta"])
        meta.pop("managedFields", None)
        applied = json.loads(meta.get("annotations", {}).get("kubectl.kubernetes.io/last-applied-configuration", "{}"))
        spec = dict(applied.get("spec", {}))
        spec["username"] = raw["Spec"]["Username"]
        spec["groups"] = raw["Spec"]["Groups"]
        spec["usages"] = raw["Spec"]["Usages"]
        obj = {"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest", "metadata": meta,
               "spec": spec, "status": {}}
        note("%s: CertificateSigningRequest rebuilt from IO's anonymized form (spec.request from its "
             "last-applied-configuration)" % src)
        store.add(obj, src)
    # PersistentVolumes, and the claims through which IO finds them.
    for src, path in sample_files(root, "config/persistentvolumes"):
        pv = as_object(read_json(path), "v1", "PersistentVolume", src)
        name = os.path.basename(path)[:-5]
        if pv["metadata"]["name"] != name:
            # IO names the record after the PV; the sample file holds pvc-99ffaeb3-….
            note("%s: PersistentVolume %s renamed %s (the record name)" % (src, pv["metadata"]["name"], name))
            pv["metadata"]["name"] = name
        store.add(pv, src)
        ref = pv["spec"].get("claimRef") or {}
        if ref.get("name"):
            why = ("claim of a monitoring PV: IO's monitoring_persistent_volumes follows openshift-monitoring claims "
                   "whose name contains prometheus-k8s" if ref["namespace"] == "openshift-monitoring" else
                   "claim of a sample PV; IO reaches it only through the image registry's spec.storage.pvc.claim, "
                   "which the sample's registry config does not set")
            pvc = {
                "apiVersion": "v1", "kind": "PersistentVolumeClaim",
                "metadata": {"name": ref["name"], "namespace": ref["namespace"], "uid": ref.get("uid") or
                             gen_uid("pvc", ref["namespace"], ref["name"]),
                             "creationTimestamp": pv["metadata"]["creationTimestamp"],
                             "annotations": {SYNTHETIC: why}},
                "spec": {"accessModes": pv["spec"].get("accessModes", ["ReadWriteOnce"]),
                         "resources": {"requests": {"storage": pv["spec"].get("capacity", {}).get("storage", "1Gi")}},
                         "volumeName": pv["metadata"]["name"], "volumeMode": pv["spec"].get("volumeMode", "Filesystem")},
                "status": {"phase": "Bound", "accessModes": pv["spec"].get("accessModes", ["ReadWriteOnce"]),
                           "capacity": pv["spec"].get("capacity", {})},
            }
            if pv["spec"].get("storageClassName"):
                pvc["spec"]["storageClassName"] = pv["spec"]["storageClassName"]
            store.add(pvc, "synthetic")


def renamed_copy(obj, name, why):
    c = copy.deepcopy(obj)
    m = c["metadata"]
    m["name"] = name
    m.pop("resourceVersion", None)
    m.pop("selfLink", None)
    m.pop("managedFields", None)
    meta_set(m, "uid", gen_uid(c["kind"], name))
    synth_annotations(m, why)
    return c


def add_webhook_copies(store, root):
    """The sample's webhook records hold one object each under five (validating) and two
    (mutating) names; the records are named after the object, so every missing name gets a
    renamed copy."""
    for kind, dirname in (("ValidatingWebhookConfiguration", "validatingwebhookconfigurations"),
                          ("MutatingWebhookConfiguration", "mutatingwebhookconfigurations")):
        g, v, plural, scope = type_info({"apiVersion": "admissionregistration.k8s.io/v1", "kind": kind})
        for src, path in sample_files(root, "config/" + dirname):
            name = os.path.basename(path)[:-5]
            if ("admissionregistration.k8s.io", plural, "", name) in store.objs:
                continue
            obj = with_type_first(read_json(path), "admissionregistration.k8s.io/v1", kind)
            c = renamed_copy(obj, name, "copy of %s named after the sample record %s" % (obj["metadata"]["name"], src))
            add_managed_fields(c)
            store.add(c, "synthetic")


def fake_pem(seed, blocks=1, label="CERTIFICATE"):
    """PEM blocks of deterministic bytes: parseable as PEM, not as X.509 (IO's config map
    anonymizer only looks for PEM blocks)."""
    out = []
    for b in range(blocks):
        data = b"".join(uuid.uuid5(UID_NS, "pem/%s/%d/%d" % (seed, b, i)).bytes for i in range(24))
        import base64
        text = base64.b64encode(data).decode()
        out.append("-----BEGIN %s-----\n" % label)
        out += [text[i:i + 64] + "\n" for i in range(0, len(text), 64)]
        out.append("-----END %s-----\n" % label)
    return "".join(out)


def configmap(ns, name, data, why, created=None):
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": ns, "uid": gen_uid("configmap", ns, name),
                         "creationTimestamp": created or CLUSTER_CREATED, "annotations": {SYNTHETIC: why}},
            "data": data}


def add_config_maps(store, root):
    """config/configmaps/<ns>/<name>/<key>: one ConfigMap per <ns>/<name>, one data key per
    record. Values are the sample's, with PEM bodies and IO's x-ed out values replaced by
    plausible ones (IO strips/x-es them again)."""
    base = os.path.join(root, "config", "configmaps")
    why = "rebuilt from the sample records config/configmaps/%s/%s/*"
    for ns in sorted(os.listdir(base)):
        for name in sorted(os.listdir(os.path.join(base, ns))):
            d = os.path.join(base, ns, name)
            data = {}
            for key in sorted(os.listdir(d)):
                text = read_text(os.path.join(d, key))
                if ns == "openshift-config":
                    n = text.count("-----BEGIN CERTIFICATE-----")
                    data[key] = fake_pem(name, n) if n else text
                elif (ns, name) == ("kube-system", "cluster-config-v1"):
                    # x-ed out by IO: baseDomain (19), aws region (9); pullSecret/sshKey emptied.
                    text = text.replace("baseDomain: " + "x" * 19, "baseDomain: lab.example-dev.com")
                    text = text.replace("region: " + "x" * 9, "region: us-east-2")
                    data[key] = text.rstrip("\n") + "\n"
                elif (ns, name) == ("openshift-insights", "insights-config"):
                    cfg = json.loads(text)
                    # Same lengths as IO's x-ed values, so IO's output equals the record.
                    cfg["proxy"] = {"httpProxy": "http://prox:3128", "httpsProxy": "https://user:pw@prox:443",
                                    "noProxy": "127.0.0.1,.svc,.corp"}
                    for k, v in cfg["proxy"].items():
                        assert len(v) == len(json.loads(text)["proxy"][k]), k
                    data["config.yaml"] = to_yaml(cfg)
                elif key.endswith(".json"):
                    # IO turns <key>[.yaml] into <key>.json (YAML to JSON); JSON is YAML.
                    data[key[:-5] + (".yaml" if name == "cluster-monitoring-config" else "")] = to_yaml(json.loads(text))
                else:
                    data[key] = text
            store.add(configmap(ns, name, data, why % (ns, name)), "synthetic")
    # A config map outside openshift-config that IO does not gather.
    store.add(configmap("openshift-config-managed", "dashboard-not-gathered", {"k": "v"},
                        "a config map IO's config_maps rule leaves out (not openshift-config, not a named one)"),
              "synthetic")


def to_yaml(v, indent=0):
    """Tiny YAML writer for the plain JSON values of the sample config maps."""
    pad = "  " * indent
    if isinstance(v, dict):
        if not v:
            return "{}\n"
        out = []
        for k, x in v.items():
            if isinstance(x, (dict, list)) and x:
                out.append("%s%s:\n%s" % (pad, k, to_yaml(x, indent + 1)))
            else:
                out.append("%s%s: %s" % (pad, k, to_yaml(x, 0)))
        return "".join(out)
    if isinstance(v, list):
        if not v:
            return "[]\n"
        return "".join("%s- %s" % (pad, to_yaml(x, indent + 1).lstrip()) for x in v)
    return json.dumps(v) + "\n"


def add_secrets(store, root):
    import base64
    b64 = lambda s: base64.b64encode(s.encode()).decode()
    sup = read_json(os.path.join(root, "config/secrets/openshift-config/support/data.json"))
    store.add({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
               "metadata": {"name": "support", "namespace": "openshift-config", "uid": gen_uid("secret", "support"),
                            "creationTimestamp": CLUSTER_CREATED,
                            "annotations": {SYNTHETIC: "rebuilt from config/secrets/openshift-config/support/data.json"}},
               "data": sup}, "synthetic")
    am = read_text(os.path.join(root, "config/secrets/openshift-monitoring/alertmanager-main/data.json"))
    # IO x-es out receiver secrets; give them values of the same length, so IO's output
    # equals the record again.
    import re
    am = re.sub(r'"(x{3,})"', lambda m: '"%s"' % ("synthetic-secret-" * 8)[:len(m.group(1))], am)
    store.add({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
               "metadata": {"name": "alertmanager-main", "namespace": "openshift-monitoring",
                            "uid": gen_uid("secret", "alertmanager-main"), "creationTimestamp": CLUSTER_CREATED,
                            "annotations": {SYNTHETIC: "rebuilt from config/secrets/openshift-monitoring/alertmanager-main/"
                                                       "data.json (JSON is YAML)"}},
               "data": {"alertmanager.yaml": b64(am)}}, "synthetic")


def add_storage_derived(store, root):
    # config/storage/<ns>/cephclusters/<name>.json is the CephCluster's status only.
    for src, path in sample_files(root, "config/storage"):
        parts = src.split("/")
        if parts[3] != "cephclusters":
            continue
        ns, name = parts[2], parts[4][:-5]
        store.add({"apiVersion": "ceph.rook.io/v1", "kind": "CephCluster",
                   "metadata": {"name": name, "namespace": ns, "uid": gen_uid("cephcluster", ns, name),
                                "creationTimestamp": "2022-11-01T10:20:00Z",
                                "annotations": {SYNTHETIC: "built around the status IO recorded in " + src}},
                   "spec": {"cephVersion": {"image": read_json(path).get("version", {}).get("image", "")},
                            "dataDirHostPath": "/var/lib/rook", "mon": {"count": 3}},
                   "status": read_json(path)}, src)
    # namespaces/openshift-nfd/customresources/<name>.json is a NodeFeature's filtered spec.
    for src, path in sample_files(root, "namespaces/openshift-nfd/customresources"):
        name = os.path.basename(path)[:-5]
        store.add({"apiVersion": "nfd.k8s-sigs.io/v1alpha1", "kind": "NodeFeature",
                   "metadata": {"name": name, "namespace": "openshift-nfd", "uid": gen_uid("nodefeature", name),
                                "creationTimestamp": CLUSTER_CREATED,
                                "labels": {"nfd.node.kubernetes.io/node-name": name},
                                "annotations": {SYNTHETIC: "built around the spec IO recorded in " + src}},
                   "spec": read_json(path)}, src)


def add_events(store):
    """events/openshift-machine-api.json: IO keeps the namespace's events newer than its
    reporting interval (default 2 h) whose type is not Normal. The two sample events get
    ages of 10 minutes; a Normal one and an old Warning one are there to be dropped."""
    sample = [
        ("FailedUpdate", "cluster-lrqft-worker-us-east-2a-jsmg4: reconciler failed to Update machine: requeue in: 20s",
         "Warning", 621, "cluster-lrqft-worker-us-east-2a-jsmg4"),
        ("FailedUpdate", "cluster-lrqft-worker-us-east-2c-rlfpx: reconciler failed to Update machine: requeue in: 20s",
         "Warning", 600, "cluster-lrqft-worker-us-east-2c-rlfpx"),
        ("Update", "Updated Machine cluster-lrqft-worker-us-east-2a-jsmg4", "Normal", 300,
         "cluster-lrqft-worker-us-east-2a-jsmg4"),
        ("FailedCreate", "cluster-lrqft-worker-us-east-2b-abcde: reconciler failed to Create machine: quota exceeded",
         "Warning", 3 * 86400, "cluster-lrqft-worker-us-east-2b-abcde"),
    ]
    for i, (reason, message, typ, age, machine) in enumerate(sample):
        name = "%s.%016x" % (machine, 0x16ee5a7b00000000 + i)
        why = ("sample event of events/openshift-machine-api.json" if i < 2 else
               "a Normal event: IO drops it" if typ == "Normal" else "an event older than IO's interval: IO drops it")
        ts = "2022-08-24T09:40:00Z"
        store.add({"apiVersion": "v1", "kind": "Event",
                   "metadata": {"name": name, "namespace": "openshift-machine-api", "uid": gen_uid("event", name),
                                "creationTimestamp": ts, "annotations": {SYNTHETIC: why, AGE: str(age)}},
                   "involvedObject": {"kind": "Machine", "namespace": "openshift-machine-api", "name": machine,
                                      "apiVersion": "machine.openshift.io/v1beta1"},
                   "reason": reason, "message": message,
                   "source": {"component": "machine-controller"},
                   "firstTimestamp": ts, "lastTimestamp": ts, "count": 1, "type": typ,
                   "eventTime": None, "reportingComponent": "machine-controller", "reportingInstance": ""}, "synthetic")


def add_service_accounts(store, root):
    """config/serviceaccounts.json: IO lists service accounts in default, kube-system,
    kube-public, openshift and openshift-*; records name and len(secrets)."""
    sas = read_json(os.path.join(root, "config/serviceaccounts.json"))["serviceAccounts"]["namespaces"]
    for ns in sorted(sas):
        for sa in sas[ns]:
            name = sa["name"]
            secrets = [{"name": "%s-token-%s" % (name, gen_uid("sa-token", ns, name)[:5])} for _ in range(sa["secrets"])]
            store.add({"apiVersion": "v1", "kind": "ServiceAccount",
                       "metadata": {"name": name, "namespace": ns, "uid": gen_uid("serviceaccount", ns, name),
                                    "creationTimestamp": CLUSTER_CREATED,
                                    "annotations": {SYNTHETIC: "listed in config/serviceaccounts.json"}},
                       "secrets": secrets}, "synthetic")


def add_olm(store, root):
    """config/olm_operators.json: IO lists operators.coreos.com/v1 Operators, follows each
    one's ClusterServiceVersion ref (name <pkg>.<version>) and records name, the CSV's
    displayName, the version from the CSV name, and the CSV's status.conditions."""
    for op in read_json(os.path.join(root, "config/olm_operators.json")):
        pkg, ns = op["name"].split(".", 1)
        csv_name = "%s.%s" % (pkg, op["version"])
        why = "built from config/olm_operators.json (%s)" % op["name"]
        store.add({"apiVersion": OLM + "/v1alpha1", "kind": "ClusterServiceVersion",
                   "metadata": {"name": csv_name, "namespace": ns, "uid": gen_uid("csv", ns, csv_name),
                                "creationTimestamp": op["csv_conditions"][0]["lastTransitionTime"],
                                "annotations": {SYNTHETIC: why}},
                   "spec": {"displayName": op["displayName"], "version": op["version"].lstrip("v")},
                   "status": {"phase": op["csv_conditions"][-1]["phase"], "conditions": op["csv_conditions"]}},
                  "synthetic")
        store.add({"apiVersion": OLM + "/v1", "kind": "Operator",
                   "metadata": {"name": op["name"], "uid": gen_uid("operator", op["name"]),
                                "creationTimestamp": op["csv_conditions"][0]["lastTransitionTime"],
                                "annotations": {SYNTHETIC: why}},
                   "spec": {},
                   "status": {"components": {
                       "labelSelector": {"matchExpressions": [{"key": "operators.coreos.com/" + op["name"],
                                                                "operator": "Exists"}]},
                       "refs": [
                           {"apiVersion": OLM + "/v1alpha1", "kind": "Subscription", "name": pkg, "namespace": ns},
                           {"apiVersion": OLM + "/v1alpha1", "kind": "ClusterServiceVersion", "name": csv_name,
                            "namespace": ns, "conditions": [{"type": "Succeeded", "status": "True"}]},
                       ]}}}, "synthetic")


def add_namespace_uid_ranges(store, root):
    """config/namespaces_with_overlapping_uids.json: IO reads every Namespace's
    openshift.io/sa.scc.uid-range and reports sets of overlapping ones. Every namespace gets a
    range of its own, except the sample's overlapping sets, which share one per set."""
    groups = read_json(os.path.join(root, "config/namespaces_with_overlapping_uids.json"))
    shared = {}
    for i, g in enumerate(groups):
        for ns in g:
            shared[ns] = "%d/10000" % (1000000000 + i * 10000)
    for ns in shared:
        if ("", "namespaces", "", ns) not in store.objs:
            store.add({"apiVersion": "v1", "kind": "Namespace",
                       "metadata": {"name": ns, "uid": gen_uid("namespace", ns), "creationTimestamp": CLUSTER_CREATED,
                                    "labels": {"kubernetes.io/metadata.name": ns},
                                    "annotations": {SYNTHETIC: "namespace of config/namespaces_with_overlapping_uids.json"}},
                       "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}, "synthetic")
    names = sorted(n for (g, p, ns, n) in store.objs if g == "" and p == "namespaces")
    used = set()
    for ns in names:
        m = store.objs[("", "namespaces", "", ns)]["metadata"]
        # A block derived from the name, so adding a namespace does not move the others.
        block = uuid.uuid5(UID_NS, "uid-range/" + ns).int % 90000
        if ns not in shared and block in used:
            raise SystemExit("uid range block collision for namespace " + ns)
        used.add(block)
        rng = shared.get(ns, "%d/10000" % (1001000000 + block * 10000))
        ann = dict(m.get("annotations", {}))
        ann["openshift.io/sa.scc.uid-range"] = rng
        ann["openshift.io/sa.scc.supplemental-groups"] = rng
        meta_set(m, "annotations", ann)


def add_aggregates(store, root):
    """Objects behind the aggregated/ records."""
    mon = read_json(os.path.join(root, "aggregated/custom_prometheuses_alertmanagers.json"))
    for kind, names in (("Prometheus", mon["prometheuses"] + ["k8s"]), ("Alertmanager", mon["alertmanagers"] + ["main"])):
        for name in names:
            ns = "openshift-monitoring" if name in ("k8s", "main") else "example-monitoring"
            store.add({"apiVersion": "monitoring.coreos.com/v1", "kind": kind,
                       "metadata": {"name": name, "namespace": ns, "uid": gen_uid(kind, ns, name),
                                    "creationTimestamp": CLUSTER_CREATED,
                                    "annotations": {SYNTHETIC: "IO counts the %ss outside openshift-monitoring" % kind}},
                       "spec": {"replicas": 1}}, "synthetic")
    sdn = read_json(os.path.join(root, "aggregated/pods_and_netnamespaces_with_sdn_annotations.json"))
    for i in range(sdn["netnamespaces_with_multicast-enabled_annotation"] + 1):
        name = "sdn-multicast-%d" % i
        store.add({"apiVersion": "network.openshift.io/v1", "kind": "NetNamespace",
                   "metadata": {"name": name, "uid": gen_uid("netnamespace", name), "creationTimestamp": CLUSTER_CREATED,
                                "annotations": {SYNTHETIC: "IO counts netnamespaces whose "
                                                           "netnamespace.network.openshift.io/multicast-enabled is \"true\"",
                                                "netnamespace.network.openshift.io/multicast-enabled":
                                                    "true" if i else "false"}},
                   "netname": name, "netid": 1000 + i}, "synthetic")
    # PodNetworkConnectivityChecks: IO keeps failure/outage log entries with success false and
    # reports reason -> message -> latest start time.
    pncc = read_json(os.path.join(root, "config/podnetworkconnectivitychecks.json"))
    by_check = {}
    for reason, msgs in pncc.items():
        for msg, start in msgs.items():
            check = msg.split(":", 1)[0]
            by_check.setdefault(check, []).append({"start": start, "success": False, "reason": reason, "message": msg})
    for check, entries in sorted(by_check.items()):
        name = "network-check-source-master-0-to-" + check
        ns = "openshift-network-diagnostics"
        entries.sort(key=lambda e: e["start"])
        store.add({"apiVersion": "controlplane.operator.openshift.io/v1alpha1", "kind": "PodNetworkConnectivityCheck",
                   "metadata": {"name": name, "namespace": ns, "uid": gen_uid("pncc", name),
                                "creationTimestamp": CLUSTER_CREATED,
                                "annotations": {SYNTHETIC: "built from config/podnetworkconnectivitychecks.json"}},
                   "spec": {"sourcePod": "network-check-source-master-0", "targetEndpoint": check},
                   "status": {"failures": entries[-1:],
                              "outages": [{"start": e["start"], "startLogs": [e], "endLogs": []} for e in entries[:-1]],
                              "successes": [{"start": "2021-07-13T08:00:00Z", "success": True, "reason": "TCPConnect",
                                             "message": check + ": tcp connection succeeded"}]}}, "synthetic")
    # Revisioned config maps and secrets in openshift-kube-apiserver (3 revisions each, not the
    # sample's hundreds): IO counts objects owned by revision-status-N by base name.
    counts = read_json(os.path.join(root, "config/versioned_object_revision_counts.json"))
    for ns, kinds in counts.items():
        for kind, plural in (("ConfigMap", "configmaps"), ("Secret", "secrets")):
            for base in sorted(kinds[plural]):
                for rev in (1, 2, 3):
                    name = "%s-%d" % (base, rev)
                    obj = {"apiVersion": "v1", "kind": kind,
                           "metadata": {"name": name, "namespace": ns, "uid": gen_uid(kind, ns, name),
                                        "creationTimestamp": CLUSTER_CREATED,
                                        "annotations": {SYNTHETIC: "revisioned object (IO counts revisions by base name)"},
                                        "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap",
                                                             "name": "revision-status-%d" % rev,
                                                             "uid": gen_uid("revision-status", ns, str(rev))}]},
                           "data": {}}
                    if kind == "Secret":
                        obj["type"] = "Opaque"
                    store.add(obj, "synthetic")


def healthy_pod_named(src_pod, ns, name, why, containers=None, labels=None, node=None):
    """A healthy copy of a sample pod under another name (and optionally other containers)."""
    p = derive_healthy_pod(src_pod, name)
    m = p["metadata"]
    m["namespace"] = ns
    meta_set(m, "uid", gen_uid("pod", ns, name))
    if "selfLink" in m:
        m["selfLink"] = self_link(p)
    m.pop("ownerReferences", None)
    m.pop("generateName", None)
    m["annotations"] = {SYNTHETIC: why}
    if labels is not None:
        m["labels"] = labels
    if containers is not None:
        tmpl_c = p["spec"]["containers"][0]
        tmpl_s = p["status"]["containerStatuses"][0]
        p["spec"]["containers"] = []
        p["status"]["containerStatuses"] = []
        for c in containers:
            sc = copy.deepcopy(tmpl_c)
            sc["name"] = c
            for k in ("command", "args", "env", "volumeMounts", "ports", "livenessProbe", "readinessProbe"):
                sc.pop(k, None)
            p["spec"]["containers"].append(sc)
            st = copy.deepcopy(tmpl_s)
            st["name"] = c
            st["containerID"] = "cri-o://" + uuid.uuid5(UID_NS, "cid/%s/%s/%s" % (ns, name, c)).hex * 2
            p["status"]["containerStatuses"].append(st)
        p["spec"].pop("initContainers", None)
        p["status"].pop("initContainerStatuses", None)
    if node:
        p["spec"]["nodeName"] = node
    p["metadata"].pop("managedFields", None)
    add_managed_fields(p)
    return p


def add_log_pods(store, root, pods):
    """Pods whose container logs IO turned into sample records, and their logs. Every pod
    added here is healthy (Running, no restarts), so IO's pod rules leave its definition out."""
    by_name = {(p["metadata"]["namespace"], p["metadata"]["name"]): p for p in pods}
    base = os.path.join(root, "config", "pod")
    noise = "I0101 00:00:00.000000       1 main.go:1] synthetic line that matches no IO filter\n"
    # (namespace, source pod, labels, container, record file)
    legacy = {
        "openshift-apiserver-operator": ("openshift-apiserver-operator-57d7d6cb7c-r94lw",
                                         {"app": "openshift-apiserver-operator"}, ["openshift-apiserver-operator"]),
        "openshift-authentication": ("openshift-apiserver-operator-57d7d6cb7c-r94lw",
                                     {"app": "oauth-openshift"}, ["oauth-openshift"]),
        "openshift-kube-controller-manager": (
            "kube-controller-manager-master-0.imeixner20210707.lab.upshift.rdu2.redhat.com",
            {"app": "kube-controller-manager"}, ["kube-controller-manager"]),
        "openshift-kube-scheduler": ("openshift-kube-scheduler-master-0.imeixner20210707.lab.upshift.rdu2.redhat.com",
                                     {"app": "openshift-kube-scheduler"}, ["kube-scheduler"]),
        "sdi": ("openshift-apiserver-operator-57d7d6cb7c-r94lw", {"app": "vsystem", "vsystem.datahub.sap.com/component":
                                                                   "license-manager"}, ["vsystem-iptables"]),
    }
    for ns in sorted(os.listdir(base)):
        ld = os.path.join(base, ns, "logs")
        if not os.path.isdir(ld):
            continue
        src_name, labels, containers = legacy[ns]
        src_ns = "openshift-apiserver-operator" if src_name.startswith("openshift-apiserver-operator") else ns
        for pod in sorted(os.listdir(ld)):
            for f in sorted(os.listdir(os.path.join(ld, pod))):
                rec = "config/pod/%s/logs/%s/%s" % (ns, pod, f)
                text = read_text(os.path.join(ld, pod, f))
                if (ns, pod) not in by_name:
                    p = healthy_pod_named(by_name[(src_ns, src_name)], ns, pod,
                                          "pod whose filtered log is the sample record " + rec,
                                          containers=containers if ns in ("openshift-authentication", "sdi") else None,
                                          labels=labels)
                    store.add(p, "synthetic")
                    by_name[(ns, pod)] = p
                LOGS[(ns, pod, containers[0])] = noise + text + ("" if text.endswith("\n") else "\n") + noise
    # conditional/namespaces/<ns>/pods/<pod>/containers/<c>/logs/last-N-lines.log
    cbase = os.path.join(root, "conditional", "namespaces")
    cond_src = by_name[("openshift-monitoring", "cluster-monitoring-operator-6c785d75f6-t79zv")]
    for ns in sorted(os.listdir(cbase)):
        pd = os.path.join(cbase, ns, "pods")
        if not os.path.isdir(pd):
            continue
        for pod in sorted(os.listdir(pd)):
            cd = os.path.join(pd, pod, "containers")
            if not os.path.isdir(cd):
                continue
            containers = sorted(os.listdir(cd))
            if (ns, pod) not in by_name and ("", "pods", ns, pod) not in store.objs:
                p = healthy_pod_named(cond_src, ns, pod, "pod whose log tail is a conditional sample record",
                                      containers=containers, labels={"app": pod.rsplit("-", 2)[0]})
                store.add(p, "synthetic")
            for c in containers:
                for f in sorted(os.listdir(os.path.join(cd, c, "logs"))):
                    n = int(f.split("-")[1])
                    text = read_text(os.path.join(cd, c, "logs", f))
                    if not text.endswith("\n"):
                        text += "\n"
                    # Older lines first, so that tailLines=N matters.
                    older = "".join("I0101 00:00:%02d.000000       1 older.go:1] synthetic older line %d\n" % (i % 60, i)
                                    for i in range(n // 2))
                    LOGS[(ns, pod, c)] = older + text
    # namespaces/<ns>/pods/<pod>/virt-launcher.json: the JSON at the end of the log line that
    # mentions /usr/libexec/qemu-kvm, from pods labelled kubevirt.io=virt-launcher not Pending.
    for src, path in sample_files(root, "namespaces/default/pods"):
        pod = src.split("/")[3]
        line = read_text(path).strip()
        p = healthy_pod_named(cond_src, "default", pod, "virt-launcher pod of the sample record " + src,
                              containers=["compute"], labels={"kubevirt.io": "virt-launcher"})
        store.add(p, "synthetic")
        LOGS[("default", pod, "compute")] = (
            '{"component":"virt-launcher","level":"info","msg":"Collected all requested hook sidecar sockets",'
            '"pos":"manager.go:88","timestamp":"2024-05-16T08:00:00.000000Z"}\n' + line + "\n")


def write_logs(out_dir):
    for (ns, pod, c), text in sorted(LOGS.items()):
        path = os.path.join(out_dir, "logs", ns, pod, c + ".log")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
    return len(LOGS)


def add_sap(store, pods):
    """config/pod/di-288312/*: IO's sap_pods lists the pods of every namespace holding a
    DataHub and keeps those not Running/Succeeded, unless a Job owning them succeeded (it
    GETs each owning Job: a missing Job fails the gatherer). The sample's DataHub is in sdi,
    so di-288312 gets a copy, and the owning Jobs are there, failed."""
    dh = store.objs[("installers.datahub.sap.com", "datahubs", "sdi", "default")]
    c = copy.deepcopy(dh)
    m = c["metadata"]
    m["namespace"] = "di-288312"
    m.pop("resourceVersion", None)
    m.pop("selfLink", None)
    meta_set(m, "uid", gen_uid("datahub", "di-288312", "default"))
    synth_annotations(m, "copy of sdi/default: the sample's SAP pods live in di-288312")
    store.add(c, "synthetic")
    for p in pods:
        for ref in p["metadata"].get("ownerReferences", []):
            if ref["kind"] != "Job" or ("batch", "jobs", p["metadata"]["namespace"], ref["name"]) in store.objs:
                continue
            ns = p["metadata"]["namespace"]
            store.add({"apiVersion": "batch/v1", "kind": "Job",
                       "metadata": {"name": ref["name"], "namespace": ns, "uid": ref["uid"],
                                    "creationTimestamp": p["metadata"]["creationTimestamp"],
                                    "annotations": {SYNTHETIC: "owner of sample pod %s: failed, so IO keeps the pod"
                                                               % p["metadata"]["name"]}},
                       "spec": {"backoffLimit": 0, "completions": 1, "parallelism": 1,
                                "template": {"metadata": {}, "spec": {"containers": [], "restartPolicy": "Never"}}},
                       "status": {"failed": 1, "startTime": p["metadata"]["creationTimestamp"],
                                  "conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                                                  "message": "Job has reached the specified backoff limit"}]}},
                      "synthetic")


# Self-signed certificates with the validity IO recorded in
# aggregated/ingress_controllers_certs.json (generated once with the `cryptography`
# package; constants here keep the importer deterministic and stdlib-only).
ROUTER_CA_PEM = '-----BEGIN CERTIFICATE-----\nMIIBYTCCAQegAwIBAgIUXtH5y98Vk4eXYpFhJ5AEyZwR+eswCgYIKoZIzj0EAwIw\nJjEkMCIGA1UEAwwbaW5ncmVzcy1vcGVyYXRvckAxNzE3NzQ1MjU0MB4XDTI0MDYw\nNzA3MjczNFoXDTI2MDYwNzA3MjczNVowJjEkMCIGA1UEAwwbaW5ncmVzcy1vcGVy\nYXRvckAxNzE3NzQ1MjU0MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEDDzm3WX2\nUY4lLPm1Vx98eVxZo4n6+wLzy+Hh67U9a0Mvz0FhSq/dgeHA8dGKA3S8z6Zm2c4r\nah/mwfp0N6Qb26MTMBEwDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNIADBF\nAiEAmy+7+IdSO85t7H10HkG7FvX/PEANhN0/zrduC3bpLeUCIHu0IT1ntZzTBBiT\n5JnK9jLuHSnwK4DWMBdIrnj4i5iQ\n-----END CERTIFICATE-----\n'
ROUTER_CERTS_DEFAULT_PEM = '-----BEGIN CERTIFICATE-----\nMIIBXDCCAQKgAwIBAgIUJbG4wOd6ywuUSlTHYapORhb+eQQwCgYIKoZIzj0EAwIw\nJTEjMCEGA1UEAwwaKi5hcHBzLmxhYi5leGFtcGxlLWRldi5jb20wHhcNMjQwNjA3\nMDcyNzM1WhcNMjYwNjA3MDcyNzM2WjAlMSMwIQYDVQQDDBoqLmFwcHMubGFiLmV4\nYW1wbGUtZGV2LmNvbTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABOWHbW4B3QPe\nmya4/ckpyxIei0zzWunhEJa6z8PRHSv5hRE7tngpCoFCXUVrLrb3URkv2Tncscdy\nkemQUSRmYXCjEDAOMAwGA1UdEwEB/wQCMAAwCgYIKoZIzj0EAwIDSAAwRQIgWmaC\nxgHre7wi7vcSPGsAlOqj75DMa1zNmnj6UTvdIuICIQCO4Ozsqot2X2A2hIZ1OHQI\nHJbI7W8kxXDAfXNHxL/1xg==\n-----END CERTIFICATE-----\n'


def add_ingress_certs(store, root):
    """aggregated/ingress_controllers_certs.json: IO parses tls.crt of the secrets
    openshift-ingress-operator/router-ca and openshift-ingress/router-certs-default, and of
    every IngressController's spec.defaultCertificate (in openshift-ingress-operator and
    openshift-ingress), and lists which controllers use which certificate."""
    import base64
    recs = read_json(os.path.join(root, "aggregated/ingress_controllers_certs.json"))
    pems = {"router-ca": ROUTER_CA_PEM, "router-certs-default": ROUTER_CERTS_DEFAULT_PEM}
    for rec in recs:
        name, ns = rec["name"], rec["namespace"]
        store.add({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
                   "metadata": {"name": name, "namespace": ns, "uid": gen_uid("secret", ns, name),
                                "creationTimestamp": rec["not_before"],
                                "annotations": {SYNTHETIC: "certificate valid %s..%s as in "
                                                           "aggregated/ingress_controllers_certs.json" % (
                                                               rec["not_before"], rec["not_after"])}},
                   "data": {"tls.crt": base64.b64encode(pems[name].encode()).decode(),
                            "tls.key": base64.b64encode(b"synthetic: no key").decode()}}, "synthetic")
        for c in rec["controllers"]:
            store.add({"apiVersion": OP + "/v1", "kind": "IngressController",
                       "metadata": {"name": c["name"], "namespace": c["namespace"],
                                    "uid": gen_uid("ingresscontroller", c["namespace"], c["name"]),
                                    "creationTimestamp": rec["not_before"],
                                    "annotations": {SYNTHETIC: "controller using %s in "
                                                               "aggregated/ingress_controllers_certs.json" % name}},
                       "spec": {"defaultCertificate": {"name": name}, "domain": "test.apps.lab.example-dev.com",
                                "replicas": 1},
                       "status": {"availableReplicas": 0}}, "synthetic")


def add_helm(store, root):
    """config/helmchart_info.json: IO lists replicasets, daemonsets, statefulsets, services
    and deployments labelled app.kubernetes.io/managed-by=Helm and groups chart name/version
    (label helm.sh/chart) by sha256 of the namespace. The sample's namespaces are hashed, so
    the fixture uses namespaces of its own: same charts and counts, other hashes."""
    info = read_json(os.path.join(root, "config/helmchart_info.json"))
    for i, (digest, charts) in enumerate(sorted(info.items())):
        for chart in charts:
            ns = "helm-%s-%d" % (chart["name"], i)
            label = chart["name"] + ("-" + chart["version"] if chart["version"] else "")
            for plural, n in sorted(chart["resources"].items()):
                kind = {"services": "Service", "deployments": "Deployment", "replicasets": "ReplicaSet"}[plural]
                for j in range(n):
                    name = "%s-%d" % (chart["name"], j) if kind == "Service" else chart["name"]
                    if kind == "ReplicaSet":
                        name += "-5c9d7f6b8d"
                    labels = {"app.kubernetes.io/managed-by": "Helm", "helm.sh/chart": label,
                              "app.kubernetes.io/name": chart["name"]}
                    obj = {"apiVersion": "v1" if kind == "Service" else "apps/v1", "kind": kind,
                           "metadata": {"name": name, "namespace": ns, "uid": gen_uid(kind, ns, name),
                                        "creationTimestamp": CLUSTER_CREATED, "labels": labels,
                                        "annotations": {SYNTHETIC: "Helm-managed object behind config/helmchart_info.json",
                                                        "meta.helm.sh/release-name": chart["name"],
                                                        "meta.helm.sh/release-namespace": ns}}}
                    if kind == "Service":
                        obj["spec"] = {"type": "ClusterIP", "ports": [{"port": 8080 + j, "protocol": "TCP"}],
                                       "selector": {"app.kubernetes.io/name": chart["name"]}}
                    else:
                        obj["spec"] = {"replicas": 1, "selector": {"matchLabels": {"app.kubernetes.io/name": chart["name"]}},
                                       "template": {"metadata": {"labels": {"app.kubernetes.io/name": chart["name"]}},
                                                    "spec": {"containers": [{"name": chart["name"],
                                                                             "image": "registry.example.com/%s:latest" % chart["name"]}]}}}
                    store.add(obj, "synthetic")


def add_macvlan_annotations(store, root):
    """aggregated/pods_and_netnamespaces_with_sdn_annotations.json counts pods with the
    pod.network.openshift.io/assign-macvlan annotation: put it on that many synthetic pods
    that no pod rule gathers."""
    n = read_json(os.path.join(root, "aggregated/pods_and_netnamespaces_with_sdn_annotations.json"))[
        "pods_with_assign-macvlan_annotation"]
    pods = sorted(k for k, o in store.objs.items() if k[1] == "pods" and k[2] == "openshift-kube-scheduler"
                  and k[3].startswith("openshift-kube-scheduler-ip-"))
    for key in pods[:n]:
        m = store.objs[key]["metadata"]
        m["annotations"]["pod.network.openshift.io/assign-macvlan"] = "true"


def import_more(store, root, pods):
    import_whole_objects(store, root)
    import_moved_objects(store, root)
    add_webhook_copies(store, root)
    add_config_maps(store, root)
    add_secrets(store, root)
    add_storage_derived(store, root)
    add_events(store)
    add_service_accounts(store, root)
    add_olm(store, root)
    add_aggregates(store, root)
    add_log_pods(store, root, pods)
    add_sap(store, pods)
    add_ingress_certs(store, root)
    add_helm(store, root)
    add_macvlan_annotations(store, root)

# ---------------------------------------------------------------------------

def io_pod_rule(pod):
    """IO's rule: openshift-* namespace and (phase not Running/Succeeded or
    any container (incl. init containers) with restartCount > 0)."""
    ns = pod["metadata"]["namespace"]
    if not ns.startswith("openshift-"):
        return False
    st = pod.get("status", {})
    if st.get("phase") not in ("Running", "Succeeded"):
        return True
    for cs in (st.get("containerStatuses") or []) + (st.get("initContainerStatuses") or []):
        if cs.get("restartCount", 0) > 0:
            return True
    return False


def main(argv):
    global CLUSTER_CREATED
    sample = os.path.abspath(argv[1]) if len(argv) > 1 else os.path.normpath(DEFAULT_SAMPLE)
    cfg = os.path.join(sample, "config")
    if not os.path.isdir(cfg):
        raise SystemExit("not an IO archive (no config/): " + sample)
    CLUSTER_CREATED = read_json(os.path.join(cfg, "version.json"))["metadata"]["creationTimestamp"]

    store = Store()
    import_clusteroperators(store, cfg)
    import_nodes(store, cfg)
    cv = import_version(store, cfg)
    import_singletons(store, cfg)
    pods = import_pods(store, cfg)
    import_mco(store, cfg)
    import_operator_configs(store, cfg)
    import_crds(store, cfg)
    import_webhook_configurations(store, cfg)
    import_pdbs(store, cfg)

    node_names = {o["metadata"]["name"] for (g, p, ns, n), o in store.objs.items() if o["kind"] == "Node"}
    for p in pods:
        nn = p.get("spec", {}).get("nodeName")
        if nn and nn not in node_names:
            note("pod %s/%s runs on node %s, which is not in the sample" % (
                p["metadata"]["namespace"], p["metadata"]["name"], nn))

    synth = add_synthetic_pods(store, pods)
    add_synthetic_pdbs(store)
    import_more(store, sample, pods)
    add_namespaces(store)
    add_namespace_uid_ranges(store, sample)
    add_crds(store)

    if os.path.exists(OUT_DIR):
        shutil.rmtree(OUT_DIR)
    counts = store.write(OUT_DIR)
    n_logs = write_logs(OUT_DIR)

    print("wrote %d objects and %d container logs to %s" % (len(store.objs), n_logs, os.path.relpath(OUT_DIR)))
    for (g, plural), n in sorted(counts.items()):
        print("  %-40s %4d" % ("%s/%s" % (g, plural), n))
    print("pods vs IO's pod rule (openshift-* and (phase not Running/Succeeded or restarts > 0)):")
    for p in pods + synth:
        m = p["metadata"]
        print("  %-5s %-8s %s/%s%s" % (
            "MATCH" if io_pod_rule(p) else "-", p["status"].get("phase"), m["namespace"], m["name"],
            " (synthetic)" if SYNTHETIC in m.get("annotations", {}) else ""))
    print("sample pods matching: %d of %d" % (sum(io_pod_rule(p) for p in pods), len(pods)))
    if NOTES:
        print("notes:")
        for n in NOTES:
            print("  - " + n)


if __name__ == "__main__":
    main(sys.argv)
