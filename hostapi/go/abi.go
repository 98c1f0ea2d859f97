// Package gather is the Go SDK for gather-agent gatherers (ABI v1, see hostapi/ABI.md).
//
// Built with GOOS=wasip1 GOARCH=wasm -buildmode=c-shared it calls the host's `gather`
// imports and exports the ABI marker and the `gather` entry point; register the gatherer's
// function with [Main] in an init function. Built natively (for `go test`), the same calls go
// to a [Host] installed with [WithHost], such as [FakeHost], so a gatherer's logic can be
// unit-tested without wasm.
package gather

import "fmt"

// ABI status codes (ABI.md §5.2).
const (
	OK          int32 = 0
	BadPointer  int32 = -1
	BadArgument int32 = -2
	BadHandle   int32 = -3
	TooLarge    int32 = -4
	Limit       int32 = -5
	Unavailable int32 = -6
	Timeout     int32 = -7
	BadName     int32 = -8
	Duplicate   int32 = -9
	ArchiveFull int32 = -10
	NotFound    int32 = -11
)

// Log levels (ABI.md §8).
const (
	LevelDebug int32 = 0
	LevelInfo  int32 = 1
	LevelWarn  int32 = 2
	LevelError int32 = 3
	LevelPanic int32 = 4
)

// list_open flags and list_emit's every-item index (ABI.md §5.13).
const (
	FlagStripManagedFields int32 = 1
	AllItems               int32 = -1
)

// StatusName is the ABI name of a status code.
func StatusName(code int32) string {
	names := map[int32]string{OK: "OK", BadPointer: "BAD_POINTER", BadArgument: "BAD_ARGUMENT", BadHandle: "BAD_HANDLE",
		TooLarge: "TOO_LARGE", Limit: "LIMIT", Unavailable: "UNAVAILABLE", Timeout: "TIMEOUT", BadName: "BAD_NAME",
		Duplicate: "DUPLICATE", ArchiveFull: "ARCHIVE_FULL", NotFound: "NOT_FOUND"}
	if n, ok := names[code]; ok {
		return n
	}
	return "UNKNOWN"
}

// HostError is a host function's negative status.
type HostError struct {
	Call string
	Code int32
}

func (e *HostError) Error() string {
	return fmt.Sprintf("%s failed: %s (%d)", e.Call, StatusName(e.Code), e.Code)
}

// StatusError is a non-2xx answer from the API server (or a policy denial).
type StatusError struct {
	Path    string
	Status  int
	Message string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("GET %s: HTTP %d: %s", e.Path, e.Status, e.Message)
}

// Host is the gather ABI as seen by a native build: what [WithHost] installs. The wasm
// build implements the same calls with the `gather` imports.
type Host interface {
	// Log is the `log` host function.
	Log(level int32, msg string)
	// Config is the module's config JSON (empty when none).
	Config() []byte
	// Request sends a request; a negative code is an ABI status.
	Request(req *Request) (*Response, int32)
	// Record emits a record; returns an ABI status.
	Record(name string, data []byte) int32
	// ListOpen fetches the first page of a list: a handle or an ABI status. fields is the
	// wire form (JSON Pointers joined by "\n").
	ListOpen(path, fields string, flags int32) int32
	// ListNext moves to the next page: 0 when complete, else its HTTP status or an ABI status.
	ListNext(handle int32) int32
	// ListEmit emits item index (or AllItems) of the current page under template.
	ListEmit(handle, index int32, template string) int32
	// ResponseBody is a handle's status and whole (unread) body.
	ResponseBody(handle int32) (int, []byte, int32)
	// ResponseClose frees a handle.
	ResponseClose(handle int32) int32
	// ListRedact attaches a redaction spec (its wire form) to an open list (ABI.md §5.14).
	ListRedact(handle int32, spec string) int32
	// RecordRedact emits a JSON record with a redaction spec applied; returns an ABI status.
	RecordRedact(name string, data []byte, spec string) int32
	// Now is the host's clock: milliseconds since the Unix epoch.
	Now() int64
}
