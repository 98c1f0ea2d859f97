package main

import (
	"fmt"
	"strings"
	"testing"

	gather "github.com/gather-agent/hostapi/go"
)

func pdb(ns, name string) string {
	return fmt.Sprintf(`{"metadata":{"name":%q,"namespace":%q,"managedFields":[{}]},"spec":{"minAvailable":1}}`, name, ns)
}

func TestOnlyOpenshiftNamespacesAtMost100(t *testing.T) {
	items := []string{pdb("default", "web"), pdb("openshift-etcd", "quorum"), pdb("openshiftfoo", "x")}
	for i := 0; i < 150; i++ {
		items = append(items, pdb("openshift-many", fmt.Sprintf("p%03d", i)))
	}
	h := gather.NewFakeHost(map[string]string{
		"/apis/policy/v1/poddisruptionbudgets": `{"items":[` + strings.Join(items, ",") + `]}`,
	})
	h.PageSize = 7
	if code := gather.Run(h); code != 0 {
		t.Fatalf("exit %d: %v", code, h.Logs)
	}
	if len(h.Records) != limit {
		t.Fatalf("%d records, want %d", len(h.Records), limit)
	}
	if _, ok := h.Records["config/pdbs/default/web.json"]; ok {
		t.Fatal("a PDB outside openshift* namespaces was gathered")
	}
	got := string(h.Records["config/pdbs/openshift-etcd/quorum.json"])
	if got != `{"metadata":{"name":"quorum","namespace":"openshift-etcd"},"spec":{"minAvailable":1}}` {
		t.Fatalf("record = %s", got)
	}
	if _, ok := h.Records["config/pdbs/openshiftfoo/x.json"]; !ok {
		t.Fatal(`IO's prefix is "openshift", not "openshift-"`)
	}
}

func TestListFailureIsAnError(t *testing.T) {
	h := gather.NewFakeHost(nil)
	if code := gather.Run(h); code != 1 || len(h.Messages(gather.LevelError)) != 1 {
		t.Fatalf("exit %d, logs %v", code, h.Logs)
	}
}
