// Command bench-pods is the `pods` gatherer (gatherers/pods, in Rust) written in Go with the
// Go SDK, line for line, so `gather-agent bench` can compare the two languages on the same
// cluster. It is a benchmark probe, not a default gatherer (xtask puts it in target/bench).
package main

import (
	"strings"

	gather "github.com/gather-agent/hostapi/go"
)

const (
	namespace    = "/metadata/namespace"
	phase        = "/status/phase"
	restarts     = "/status/containerStatuses/*/restartCount"
	initRestarts = "/status/initContainerStatuses/*/restartCount"
)

func init() { gather.Main(run) }

func restarted(pod gather.Item) bool {
	for _, field := range []string{restarts, initRestarts} {
		for _, c := range pod.Ints(field) {
			if c > 0 {
				return true
			}
		}
	}
	return false
}

func needsAttention(pod gather.Item) bool {
	p := pod.String(phase)
	return strings.HasPrefix(pod.String(namespace), "openshift-") && (p != "Running" && p != "Succeeded" || restarted(pod))
}

func run() error {
	pods, err := gather.OpenList("/api/v1/pods", namespace, phase, restarts, initRestarts)
	if err != nil {
		return err
	}
	defer pods.Close()
	total, kept := 0, 0
	for {
		page, err := pods.NextPage()
		if err != nil {
			return err
		}
		if page == nil {
			break
		}
		total += page.Len()
		for _, pod := range page.Items() {
			if needsAttention(pod) {
				if _, err := pod.Emit("config/pod/{namespace}/{name}.json"); err != nil {
					return err
				}
				kept++
			}
		}
	}
	gather.Logf("%d of %d pods need attention", kept, total)
	return nil
}

func main() {}
