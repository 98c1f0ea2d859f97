// Command pdbs gathers PodDisruptionBudgets as the Insights Operator does since 4.14: only
// those in namespaces starting with "openshift", at most 100, into
// config/pdbs/<namespace>/<name>.json. A Go gatherer: see hostapi/ABI.md, "Writing a
// gatherer in Go".
package main

import (
	"strings"

	gather "github.com/gather-agent/hostapi/go"
)

// limit is IO's gatherPodDisruptionBudgetLimit.
const limit = 100

func init() { gather.Main(run) }

func run() error {
	// Only each PDB's namespace enters the guest; the host writes the chosen objects.
	list, err := gather.OpenList("/apis/policy/v1/poddisruptionbudgets", "/metadata/namespace")
	if err != nil {
		return err
	}
	defer list.Close()
	emitted := 0
	for emitted < limit {
		page, err := list.NextPage()
		if err != nil {
			return err
		}
		if page == nil {
			break
		}
		for _, pdb := range page.Items() {
			if emitted == limit {
				break
			}
			if !strings.HasPrefix(pdb.String("/metadata/namespace"), "openshift") {
				continue
			}
			// A refused record is reported by the host and skipped; only a broken list stops us.
			ok, err := pdb.Emit("config/pdbs/{namespace}/{name}.json")
			if err != nil {
				return err
			}
			if ok {
				emitted++
			}
		}
	}
	gather.Logf("%d pod disruption budgets", emitted)
	return nil
}

func main() {}
