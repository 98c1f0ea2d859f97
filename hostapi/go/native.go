//go:build !wasip1

package gather

import "sync"

var (
	hostMu    sync.Mutex
	installed Host
)

func current() Host {
	if installed == nil {
		panic("gather: no Host installed; run native gatherers inside gather.WithHost")
	}
	return installed
}

// WithHost runs f with h serving the SDK's calls (native builds only, for tests). Calls are
// serialised: one host at a time.
func WithHost(h Host, f func()) {
	hostMu.Lock()
	defer hostMu.Unlock()
	installed = h
	defer func() { installed = nil }()
	f()
}

// Run runs the registered gatherer (see Main) against h, as the host's `gather` call would,
// and returns its ABI return code. A panic is logged at level 4 on h and re-raised.
func Run(h Host) (code int32) {
	WithHost(h, func() { code = run(registered) })
	return code
}
