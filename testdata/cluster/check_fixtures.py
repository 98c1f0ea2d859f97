#!/usr/bin/env python3
"""Check a fixture cluster directory against the format in testdata/README.md.

Usage: python3 testdata/cluster/check_fixtures.py DIR [DIR...]

Checks: every *.json file (except names starting with "_" or ".") parses and
holds an object or a List/<Kind>List; every object has apiVersion, kind and
metadata.name; no (group, kind, namespace, name) appears twice; namespaced
kinds have metadata.namespace and cluster-scoped ones don't; every kind that is
not built in is declared by a CustomResourceDefinition (group, kind, a served
version matching the object's apiVersion, scope); CRDs are well-formed; every
namespace used by an object has a Namespace object. Exits 1 on errors.
Python 3 standard library only.
"""

import json
import os
import sys

# (group, kind) -> namespaced?  Built-in kinds the simulator knows.
BUILTIN = {
    ("", "Node"): False,
    ("", "Namespace"): False,
    ("", "PersistentVolume"): False,
    ("", "Pod"): True,
    ("", "ConfigMap"): True,
    ("", "Secret"): True,
    ("", "Service"): True,
    ("", "Endpoints"): True,
    ("", "Event"): True,
    ("", "ServiceAccount"): True,
    ("", "PersistentVolumeClaim"): True,
    ("", "ResourceQuota"): True,
    ("", "LimitRange"): True,
    ("apps", "Deployment"): True,
    ("apps", "DaemonSet"): True,
    ("apps", "ReplicaSet"): True,
    ("apps", "StatefulSet"): True,
    ("batch", "Job"): True,
    ("batch", "CronJob"): True,
    ("events.k8s.io", "Event"): True,
    ("rbac.authorization.k8s.io", "ClusterRole"): False,
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): False,
    ("rbac.authorization.k8s.io", "Role"): True,
    ("rbac.authorization.k8s.io", "RoleBinding"): True,
    ("storage.k8s.io", "StorageClass"): False,
    ("policy", "PodDisruptionBudget"): True,
    ("networking.k8s.io", "NetworkPolicy"): True,
    ("networking.k8s.io", "Ingress"): True,
    ("certificates.k8s.io", "CertificateSigningRequest"): False,
    ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"): False,
    ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"): False,
    ("apiextensions.k8s.io", "CustomResourceDefinition"): False,
}


def split_gv(api_version):
    return tuple(api_version.split("/", 1)) if "/" in api_version else ("", api_version)


def load(root, errors):
    objs = []  # (path, obj)
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith((".", "_")))
        for f in sorted(filenames):
            if not f.endswith(".json") or f.startswith(("_", ".")):
                continue
            path = os.path.join(dirpath, f)
            rel = os.path.relpath(path, root)
            try:
                with open(path, encoding="utf-8") as fh:
                    data = json.load(fh)
            except ValueError as e:
                errors.append("%s: does not parse: %s" % (rel, e))
                continue
            if not isinstance(data, dict):
                errors.append("%s: not a JSON object" % rel)
                continue
            kind = data.get("kind", "")
            if kind == "List" or (kind.endswith("List") and isinstance(data.get("items"), list)):
                item_kind = kind[:-4] if kind != "List" else None
                for i, item in enumerate(data.get("items") or []):
                    if item_kind and "kind" not in item:
                        item = dict(item, kind=item_kind)
                    if item_kind and "apiVersion" not in item and "apiVersion" in data:
                        item = dict(item, apiVersion=data["apiVersion"])
                    objs.append(("%s[%d]" % (rel, i), item))
            else:
                objs.append((rel, data))
    return objs


def check(root):
    errors, warnings = [], []
    objs = load(root, errors)
    crds = {}  # (group, kind) -> crd
    for where, o in objs:
        if o.get("kind") == "CustomResourceDefinition":
            spec = o.get("spec", {})
            names = spec.get("names", {})
            g, k = spec.get("group"), names.get("kind")
            name = o.get("metadata", {}).get("name")
            if name != "%s.%s" % (names.get("plural"), g):
                errors.append("%s: CRD name %s is not <plural>.<group>" % (where, name))
            for fld in ("plural", "singular", "kind", "listKind"):
                if not names.get(fld):
                    errors.append("%s: CRD without spec.names.%s" % (where, fld))
            if spec.get("scope") not in ("Cluster", "Namespaced"):
                errors.append("%s: CRD scope %r" % (where, spec.get("scope")))
            vers = spec.get("versions") or []
            if sum(1 for v in vers if v.get("storage")) != 1:
                errors.append("%s: CRD needs exactly one storage version" % where)
            if (g, k) in crds:
                errors.append("%s: second CRD for %s/%s" % (where, g, k))
            crds[(g, k)] = o
    seen = {}
    namespaces = set()
    used_ns = {}
    counts = {}
    for where, o in objs:
        api, kind = o.get("apiVersion"), o.get("kind")
        meta = o.get("metadata") or {}
        name, ns = meta.get("name"), meta.get("namespace")
        if not api or not kind or not name:
            errors.append("%s: missing apiVersion/kind/metadata.name" % where)
            continue
        g, v = split_gv(api)
        if (g, kind) in BUILTIN:
            namespaced = BUILTIN[(g, kind)]
        elif (g, kind) in crds:
            spec = crds[(g, kind)]["spec"]
            namespaced = spec["scope"] == "Namespaced"
            if not any(x.get("name") == v and x.get("served") for x in spec.get("versions", [])):
                errors.append("%s: CRD for %s/%s does not serve version %s" % (where, g, kind, v))
        else:
            errors.append("%s: kind %s (%s) is neither built in nor declared by a CRD" % (where, kind, api))
            continue
        if namespaced and not ns:
            errors.append("%s: namespaced %s without metadata.namespace" % (where, kind))
        if not namespaced and ns:
            errors.append("%s: cluster-scoped %s with metadata.namespace" % (where, kind))
        key = (g, kind, ns or "", name)
        if key in seen:
            errors.append("%s: duplicate of %s" % (where, seen[key]))
        seen[key] = where
        if kind == "Namespace" and g == "":
            namespaces.add(name)
        if ns:
            used_ns.setdefault(ns, where)
        for fld in ("uid", "creationTimestamp"):
            if not meta.get(fld):
                warnings.append("%s: no metadata.%s" % (where, fld))
        label = "%s/%s" % (g or "core", kind)
        counts[label] = counts.get(label, 0) + 1
    for ns, where in sorted(used_ns.items()):
        if ns not in namespaces:
            errors.append("%s: namespace %s has no Namespace object" % (where, ns))
    return objs, counts, errors, warnings


def main(argv):
    if len(argv) < 2:
        print(__doc__)
        return 2
    rc = 0
    for root in argv[1:]:
        objs, counts, errors, warnings = check(root)
        print("%s: %d objects" % (root, len(objs)))
        for k, n in sorted(counts.items()):
            print("  %-55s %4d" % (k, n))
        for w in warnings:
            print("WARNING " + w)
        for e in errors:
            print("ERROR " + e)
        if errors:
            rc = 1
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv))
