//go:build !wasip1

package gather

import (
	"errors"
	"strings"
	"testing"
)

const pods = `{"kind":"PodList","items":[
 {"metadata":{"name":"a","namespace":"openshift-dns","managedFields":[{"x":1}]},"status":{"phase":"Running","containerStatuses":[{"restartCount":1},{"restartCount":2}]}},
 {"metadata":{"name":"b","namespace":"default"},"status":{"phase":"Failed"}},
 {"metadata":{"name":"c","namespace":"openshift-etcd"},"status":{"phase":"Failed"}}]}`

func TestEmitListPagesAndStripsManagedFields(t *testing.T) {
	h := NewFakeHost(map[string]string{"/api/v1/pods": pods})
	h.PageSize = 2
	var n uint64
	var err error
	WithHost(h, func() { n, err = EmitList("/api/v1/pods", "config/pod/{namespace}/{name}.json") })
	if err != nil || n != 3 {
		t.Fatalf("EmitList = %d, %v", n, err)
	}
	a := string(h.Records["config/pod/openshift-dns/a.json"])
	if strings.Contains(a, "managedFields") || !strings.HasPrefix(a, `{"metadata":{"name":"a","namespace":"openshift-dns"}`) {
		t.Fatalf("record a = %s", a)
	}
}

func TestListProjectionsAndItemEmit(t *testing.T) {
	h := NewFakeHost(map[string]string{"/api/v1/pods": pods})
	h.PageSize = 2
	var failed []string
	var restarts string
	WithHost(h, func() {
		l, err := OpenList("/api/v1/pods", "/status/phase", "/status/containerStatuses/*/restartCount")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		for {
			page, err := l.NextPage()
			if err != nil {
				t.Fatal(err)
			}
			if page == nil {
				break
			}
			for _, it := range page.Items() {
				if it.String("/status/phase") == "Failed" {
					ok, err := it.Emit("config/failed/{name}.json")
					if !ok || err != nil {
						t.Fatalf("emit: %v %v", ok, err)
					}
					failed = append(failed, it.page.list.fields[0])
				}
				if r := it.Get("/status/containerStatuses/*/restartCount"); r != nil && restarts == "" {
					restarts = string(r)
				}
			}
		}
	})
	if len(failed) != 2 || h.Order[0] != "config/failed/b.json" || h.Order[1] != "config/failed/c.json" {
		t.Fatalf("records %v", h.Order)
	}
	if restarts != "[1,2]" {
		t.Fatalf("restarts projection = %s", restarts)
	}
}

func TestRefusedItemIsSkippedNotFatal(t *testing.T) {
	h := NewFakeHost(map[string]string{"/api/v1/pods": pods})
	WithHost(h, func() {
		l, _ := OpenList("/api/v1/pods")
		page, _ := l.NextPage()
		items := page.Items()
		// The same name twice: the second is a duplicate, reported by the host and skipped.
		if ok, err := items[0].Emit("config/same.json"); !ok || err != nil {
			t.Fatalf("first emit %v %v", ok, err)
		}
		if ok, err := items[1].Emit("config/same.json"); ok || err != nil {
			t.Fatalf("duplicate emit = %v, %v; want skipped without error", ok, err)
		}
	})
	if len(h.Messages(LevelWarn)) != 1 {
		t.Fatalf("warnings %v", h.Logs)
	}
}

func TestGetJSONStatusErrorAndRecordJSON(t *testing.T) {
	h := NewFakeHost(map[string]string{"/apis/x/v1/things/a": `{"metadata":{"managedFields":[],"name":"a"},"spec":{"z":1,"a":2}}`})
	WithHost(h, func() {
		var obj map[string]any
		err := GetJSON("/apis/x/v1/things/missing", &obj)
		var se *StatusError
		if !errors.As(err, &se) || se.Status != 404 {
			t.Fatalf("missing: %v", err)
		}
		resp, err := Get("/apis/x/v1/things/a")
		if err != nil || resp.Status != 200 {
			t.Fatalf("get: %v", err)
		}
		if err := Record("config/a.json", StripManagedFields(resp.Body)); err != nil {
			t.Fatal(err)
		}
		if err := RecordJSON("config/b.json", map[string]any{"metadata": map[string]any{"name": "b", "managedFields": []int{1}}}); err != nil {
			t.Fatal(err)
		}
		var he *HostError
		if err := Record("config/a.json", nil); !errors.As(err, &he) || he.Code != Duplicate {
			t.Fatalf("duplicate record: %v", err)
		}
	})
	if got := string(h.Records["config/a.json"]); got != `{"metadata":{"name":"a"},"spec":{"z":1,"a":2}}` {
		t.Fatalf("a = %s", got)
	}
	if got := string(h.Records["config/b.json"]); got != `{"metadata":{"name":"b"}}` {
		t.Fatalf("b = %s", got)
	}
}

func TestStripManagedFieldsKeepsOtherJSON(t *testing.T) {
	for _, in := range []string{`[1,2]`, `{"a":1}`, `{"metadata":{"name":"x"}}`, `not json`} {
		if out := string(StripManagedFields([]byte(in))); out != in {
			t.Errorf("%s -> %s", in, out)
		}
	}
	in := `{"metadata": {"name": "x", "managedFields": [{"f": "}"}] }, "b": 2}`
	if out := string(StripManagedFields([]byte(in))); out != `{"metadata": {"name": "x" }, "b": 2}` {
		t.Errorf("got %s", out)
	}
}

func TestRunMapsResultsAndPanics(t *testing.T) {
	h := NewFakeHost(nil)
	Main(func() error { return errors.New("boom") })
	if code := Run(h); code != 1 || h.Messages(LevelError)[0] != "boom" {
		t.Fatalf("code %d logs %v", code, h.Logs)
	}
	Main(func() error { panic("kaput") })
	defer func() {
		if recover() == nil || len(h.Messages(LevelPanic)) != 1 {
			t.Fatalf("panic not logged and re-raised: %v", h.Logs)
		}
	}()
	Run(h)
}

func TestConfig(t *testing.T) {
	h := NewFakeHost(nil)
	h.ConfigJSON = `{"limit":7}`
	var cfg struct{ Limit int }
	WithHost(h, func() {
		if err := ConfigInto(&cfg); err != nil {
			t.Fatal(err)
		}
	})
	if cfg.Limit != 7 {
		t.Fatalf("config %+v", cfg)
	}
	h.ConfigJSON = ""
	WithHost(h, func() {
		if Config() != nil {
			t.Fatal("empty config should be nil")
		}
	})
}

func TestItemValuesAndInts(t *testing.T) {
	h := NewFakeHost(map[string]string{"/api/v1/pods": pods})
	WithHost(h, func() {
		l, _ := OpenList("/api/v1/pods", "/status/containerStatuses/*/restartCount", "/metadata/name")
		defer l.Close()
		page, _ := l.NextPage()
		items := page.Items()
		if got := items[0].Ints("/status/containerStatuses/*/restartCount"); len(got) != 2 || got[0] != 1 || got[1] != 2 {
			t.Fatalf("ints %v", got)
		}
		if items[1].Ints("/status/containerStatuses/*/restartCount") != nil || items[1].Get("/status/containerStatuses/*/restartCount") != nil {
			t.Fatal("an absent field has no ints and no raw value")
		}
		if items[2].String("/metadata/name") != "c" || items[2].String("/nope") != "" {
			t.Fatal("String")
		}
	})
}

const nodes = `{"kind":"NodeList","items":[
 {"metadata":{"name":"m0","labels":{"kubernetes.io/hostname":"m0","team":"payments"},"annotations":{"owner":"bob"}},"status":{"nodeInfo":{"bootID":"boot-1"},"images":[{"names":["x"]}]}}]}`

func TestRedactionSpecWireForm(t *testing.T) {
	r := NewRedaction().Remove("/a").Blank("/b").Xout("/c").URL("/d").URLList("/e").PEM("/f").
		BlankExceptProductKeys("/g/*").XoutExceptProductKeys("/h/*")
	want := "remove /a\nblank /b\nxout /c\nurl /d\nurl-list /e\npem /f\nblank /g/* except-product-keys\nxout /h/* except-product-keys"
	if r.Spec() != want {
		t.Fatalf("spec = %q", r.Spec())
	}
	if (*Redaction)(nil).Spec() != "" {
		t.Fatal("a nil Redaction is the empty spec")
	}
}

func TestEmitListRedactedAppliesTheRules(t *testing.T) {
	h := NewFakeHost(map[string]string{"/api/v1/nodes": nodes})
	r := NewRedaction().Xout("/status/nodeInfo/bootID").Remove("/status/images").
		XoutExceptProductKeys("/metadata/labels/*").BlankExceptProductKeys("/metadata/annotations/*")
	var n uint64
	var err error
	WithHost(h, func() { n, err = EmitListRedacted("/api/v1/nodes", "config/node/{name}.json", r) })
	if err != nil || n != 1 {
		t.Fatalf("EmitListRedacted = %d, %v", n, err)
	}
	got := string(h.Records["config/node/m0.json"])
	for _, want := range []string{`"bootID":"xxxxxx"`, `"team":"xxxxxxxx"`, `"kubernetes.io/hostname":"m0"`, `"owner":""`} {
		if !strings.Contains(got, want) {
			t.Fatalf("record lacks %s: %s", want, got)
		}
	}
	if strings.Contains(got, "images") || strings.Contains(got, "boot-1") || strings.Contains(got, "payments") {
		t.Fatalf("record leaks: %s", got)
	}
}

func TestRecordJSONRedactedRefusesBadSpecsAndKeepsNames(t *testing.T) {
	h := NewFakeHost(nil)
	h.NowMillis = 42
	var errs []error
	var now int64
	WithHost(h, func() {
		proxy := map[string]any{"spec": map[string]any{"httpProxy": "http://u:p@h:1", "noProxy": "a.b,c.d"}}
		errs = append(errs, RecordJSONRedacted("config/proxy.json", proxy, NewRedaction().URL("/spec/httpProxy").URLList("/spec/noProxy")))
		errs = append(errs, RecordJSONRedacted("config/bad.json", proxy, NewRedaction().Xout("no-slash")))
		now = NowMs()
	})
	if errs[0] != nil {
		t.Fatal(errs[0])
	}
	var he *HostError
	if !errors.As(errs[1], &he) || he.Code != BadArgument || len(h.Messages(LevelError)) != 1 {
		t.Fatalf("bad spec: %v %v", errs[1], h.Logs)
	}
	if got := string(h.Records["config/proxy.json"]); got != `{"spec":{"httpProxy":"xxxx://x:xxx:x","noProxy":"x.x,x.x"}}` {
		t.Fatalf("proxy = %s", got)
	}
	if now != 42 {
		t.Fatalf("NowMs = %d", now)
	}
}
