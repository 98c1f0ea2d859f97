package main

import (
	"encoding/base64"
	"strings"
	"testing"

	gather "github.com/gather-agent/hostapi/go"
)

func TestCABundlesAreAnonymizedAndKeyOrderKept(t *testing.T) {
	secret := base64.StdEncoding.EncodeToString([]byte("-----BEGIN CERTIFICATE-----"))
	masked := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("x", 27)))
	h := gather.NewFakeHost(map[string]string{
		api + "validatingwebhookconfigurations": `{"items":[{"metadata":{"name":"v1","managedFields":[{}]},"webhooks":[{"name":"a","clientConfig":{"caBundle":"` + secret + `"}},{"name":"b","clientConfig":{"url":"https://x"}}]}]}`,
		api + "mutatingwebhookconfigurations":   `{"items":[{"webhooks":[],"metadata":{"name":"m1"}}]}`,
	})
	if code := gather.Run(h); code != 0 {
		t.Fatalf("exit %d: %v", code, h.Logs)
	}
	v := string(h.Records["config/validatingwebhookconfigurations/v1.json"])
	want := `{"metadata":{"name":"v1"},"webhooks":[{"name":"a","clientConfig":{"caBundle":"` + masked + `"}},{"name":"b","clientConfig":{"url":"https://x"}}]}`
	if v != want {
		t.Fatalf("validating record\n got %s\nwant %s", v, want)
	}
	if m := string(h.Records["config/mutatingwebhookconfigurations/m1.json"]); m != `{"webhooks":[],"metadata":{"name":"m1"}}` {
		t.Fatalf("mutating record %s", m)
	}
}

func TestABadItemIsSkippedNotFatal(t *testing.T) {
	h := gather.NewFakeHost(map[string]string{
		api + "validatingwebhookconfigurations": `{"items":[{"metadata":{"name":"bad"},"webhooks":[{"clientConfig":{"caBundle":"%%%"}}]},{"metadata":{"name":"good"}}]}`,
		api + "mutatingwebhookconfigurations":   `{"items":[]}`,
	})
	if code := gather.Run(h); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if len(h.Records) != 1 || len(h.Messages(gather.LevelWarn)) != 1 {
		t.Fatalf("records %v logs %v", h.Order, h.Logs)
	}
}
