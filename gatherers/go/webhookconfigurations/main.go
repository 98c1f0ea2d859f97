// Command webhookconfigurations gathers ValidatingWebhookConfigurations and
// MutatingWebhookConfigurations as the Insights Operator does, into
// config/validatingwebhookconfigurations/<name>.json and
// config/mutatingwebhookconfigurations/<name>.json, with every webhook's
// clientConfig.caBundle anonymized (each byte of the bundle becomes an "x"). A Go gatherer:
// see hostapi/ABI.md, "Writing a gatherer in Go".
package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strings"

	gather "github.com/gather-agent/hostapi/go"
)

const api = "/apis/admissionregistration.k8s.io/v1/"

func init() { gather.Main(run) }

func run() error {
	for _, kind := range []string{"validatingwebhookconfigurations", "mutatingwebhookconfigurations"} {
		// Clusters have a handful of these, so the whole list is read into the guest: each
		// object must be rewritten before it is recorded.
		items, err := gather.ListAll(api + kind)
		if err != nil {
			return err
		}
		for _, item := range items {
			name, data, err := anonymize(item)
			if err != nil {
				gather.Warnf("%s: skipping an item: %v", kind, err)
				continue
			}
			if err := gather.Record("config/"+kind+"/"+name+".json", gather.StripManagedFields(data)); err != nil {
				// The host reported it; one bad item does not stop the others.
				continue
			}
		}
		gather.Logf("%d %s", len(items), kind)
	}
	return nil
}

// anonymize replaces each webhook's caBundle with as many "x" bytes as it had (IO's
// anonymize.String on the decoded bundle), editing the object's bytes in place so that its
// key order and everything else stay as the API server sent them.
func anonymize(item []byte) (string, []byte, error) {
	var obj struct {
		Metadata struct {
			Name string `json:"name"`
		} `json:"metadata"`
		Webhooks []struct {
			ClientConfig struct {
				CABundle string `json:"caBundle"`
			} `json:"clientConfig"`
		} `json:"webhooks"`
	}
	if err := json.Unmarshal(item, &obj); err != nil {
		return "", nil, err
	}
	out := item
	for _, w := range obj.Webhooks {
		bundle := w.ClientConfig.CABundle
		if bundle == "" {
			continue
		}
		raw, err := base64.StdEncoding.DecodeString(bundle)
		if err != nil {
			return "", nil, err
		}
		masked := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("x", len(raw))))
		out = bytes.ReplaceAll(out, []byte(`"`+bundle+`"`), []byte(`"`+masked+`"`))
	}
	return obj.Metadata.Name, out, nil
}

func main() {}
