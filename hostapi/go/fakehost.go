//go:build !wasip1

package gather

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// LogEntry is one message a gatherer logged on a FakeHost.
type LogEntry struct {
	Level int32
	Msg   string
}

// FakeHost is an in-memory Host for unit tests: it serves Objects by path, keeps Records and
// Logs, pages lists PageSize items at a time and computes projections as the real host does
// (ABI.md §5.13). It has no policy: every path in Objects is readable.
type FakeHost struct {
	// Objects maps an API path (without query) to the JSON body served with status 200;
	// any other path answers 404.
	Objects map[string]string
	// ConfigJSON is what Config returns.
	ConfigJSON string
	// PageSize is the list page size (500 when 0).
	PageSize int
	// Records are the records accepted, by name; Order is their order.
	Records map[string][]byte
	Order   []string
	// Logs are the messages logged, in order.
	Logs []LogEntry
	// Requests are the paths requested (pages included).
	Requests []string
	// NowMillis is what Now returns; the real clock when 0.
	NowMillis int64

	lists map[int32]*fakeList
	next  int32
}

type fakeList struct {
	redact []redactRule
	items  []json.RawMessage
	fields []string
	strip  bool
	offset int
	size   int
}

func (l *fakeList) page() []json.RawMessage {
	end := min(l.offset+l.size, len(l.items))
	return l.items[l.offset:end]
}

// NewFakeHost is a FakeHost serving objects.
func NewFakeHost(objects map[string]string) *FakeHost {
	return &FakeHost{Objects: objects, Records: map[string][]byte{}}
}

// Messages are the logged messages at level.
func (f *FakeHost) Messages(level int32) []string {
	var out []string
	for _, l := range f.Logs {
		if l.Level == level {
			out = append(out, l.Msg)
		}
	}
	return out
}

func (f *FakeHost) Log(level int32, msg string) { f.Logs = append(f.Logs, LogEntry{level, msg}) }

func (f *FakeHost) Config() []byte { return []byte(f.ConfigJSON) }

func (f *FakeHost) Request(req *Request) (*Response, int32) {
	f.Requests = append(f.Requests, req.Path)
	path, _, _ := strings.Cut(req.Path, "?")
	body, ok := f.Objects[path]
	if !ok {
		msg := fmt.Sprintf(`{"kind":"Status","apiVersion":"v1","status":"Failure","message":"%s not found","reason":"NotFound","code":404}`, path)
		return &Response{Status: 404, Headers: map[string]string{"content-type": "application/json"}, Body: []byte(msg)}, OK
	}
	return &Response{Status: 200, Headers: map[string]string{"content-type": "application/json"}, Body: []byte(body)}, OK
}

// validName is a shortened form of the host's record name rules (ABI.md §7).
func validName(name string) bool {
	if name == "" || len(name) > 1024 || strings.HasPrefix(name, "/") || strings.HasPrefix(name, "insights-operator/") {
		return false
	}
	for _, seg := range strings.Split(name, "/") {
		if seg == "" || seg == "." || seg == ".." || len(seg) > 255 || strings.ContainsAny(seg, "\\\x00") {
			return false
		}
	}
	return true
}

func (f *FakeHost) Record(name string, data []byte) int32 {
	if !validName(name) {
		return BadName
	}
	if _, dup := f.Records[name]; dup {
		f.Log(LevelWarn, fmt.Sprintf("record %q already exists; the first one was kept", name))
		return Duplicate
	}
	if f.Records == nil {
		f.Records = map[string][]byte{}
	}
	f.Records[name] = append([]byte{}, data...)
	f.Order = append(f.Order, name)
	return OK
}

func (f *FakeHost) ListOpen(path, fields string, flags int32) int32 {
	resp, _ := f.Request(&Request{Method: "GET", Path: path})
	var list struct {
		Items []json.RawMessage `json:"items"`
	}
	if resp.Status != 200 || json.Unmarshal(resp.Body, &list) != nil {
		return BadArgument
	}
	var fs []string
	for _, line := range strings.Split(fields, "\n") {
		if line = strings.TrimSpace(line); line != "" {
			fs = append(fs, line)
		}
	}
	size := f.PageSize
	if size <= 0 {
		size = 500
	}
	if f.lists == nil {
		f.lists = map[int32]*fakeList{}
	}
	f.next++
	f.lists[f.next] = &fakeList{items: list.Items, fields: fs, strip: flags&FlagStripManagedFields != 0, size: size}
	return f.next
}

func (f *FakeHost) ListNext(handle int32) int32 {
	l, ok := f.lists[handle]
	if !ok {
		return BadHandle
	}
	if l.offset+l.size >= len(l.items) {
		return 0
	}
	l.offset += l.size
	f.Requests = append(f.Requests, "(next page)")
	return 200
}

// pointer evaluates a JSON Pointer with "*" segments on v.
func pointer(v any, segs []string) any {
	if len(segs) == 0 {
		return v
	}
	seg := strings.ReplaceAll(strings.ReplaceAll(segs[0], "~1", "/"), "~0", "~")
	switch x := v.(type) {
	case map[string]any:
		if seg == "*" {
			out := []any{}
			for _, e := range x {
				out = append(out, pointer(e, segs[1:]))
			}
			return out
		}
		if e, ok := x[seg]; ok {
			return pointer(e, segs[1:])
		}
	case []any:
		if seg == "*" {
			out := make([]any, len(x))
			for i, e := range x {
				out[i] = pointer(e, segs[1:])
			}
			return out
		}
		var i int
		if _, err := fmt.Sscanf(seg, "%d", &i); err == nil && i >= 0 && i < len(x) {
			return pointer(x[i], segs[1:])
		}
	}
	return nil
}

func (f *FakeHost) ResponseBody(handle int32) (int, []byte, int32) {
	l, ok := f.lists[handle]
	if !ok {
		return 0, nil, BadHandle
	}
	rows := [][]any{}
	for _, raw := range l.page() {
		var item any
		_ = json.Unmarshal(raw, &item)
		row := make([]any, len(l.fields))
		for i, field := range l.fields {
			row[i] = pointer(item, strings.Split(field, "/")[1:])
		}
		rows = append(rows, row)
	}
	body, _ := json.Marshal(rows)
	return 200, body, OK
}

func (f *FakeHost) ResponseClose(handle int32) int32 {
	if _, ok := f.lists[handle]; !ok {
		return BadHandle
	}
	delete(f.lists, handle)
	return OK
}

func (f *FakeHost) emit(l *fakeList, raw json.RawMessage, template string) int32 {
	var meta struct {
		Metadata struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
		} `json:"metadata"`
	}
	_ = json.Unmarshal(raw, &meta)
	name := template
	for placeholder, value := range map[string]string{"{name}": meta.Metadata.Name, "{namespace}": meta.Metadata.Namespace} {
		if strings.Contains(name, placeholder) && (value == "" || strings.Contains(value, "/")) {
			f.Log(LevelError, fmt.Sprintf("list_emit: %s is empty or has a '/'", placeholder))
			return BadName
		}
		name = strings.ReplaceAll(name, placeholder, value)
	}
	data := []byte(raw)
	if l.strip {
		data = StripManagedFields(data)
	}
	if l.redact != nil {
		redacted, err := redactJSON(data, l.redact)
		if err != nil {
			return BadArgument
		}
		data = redacted
	}
	return f.Record(name, data)
}

func (f *FakeHost) ListEmit(handle, index int32, template string) int32 {
	l, ok := f.lists[handle]
	if !ok {
		return BadHandle
	}
	page := l.page()
	if index == AllItems {
		var n int32
		for _, raw := range page {
			if f.emit(l, raw, template) == OK {
				n++
			}
		}
		return n
	}
	if index < 0 || int(index) >= len(page) {
		return BadArgument
	}
	return f.emit(l, page[index], template)
}

// ListRedact parses spec as the host does and applies it to what ListEmit writes next.
func (f *FakeHost) ListRedact(handle int32, spec string) int32 {
	l, ok := f.lists[handle]
	if !ok {
		return BadHandle
	}
	rules, err := parseRedaction(spec)
	if err != nil {
		f.Log(LevelError, "list_redact: "+err.Error())
		return BadArgument
	}
	l.redact = rules
	return OK
}

// RecordRedact applies spec to data (which must be JSON) and records the result.
func (f *FakeHost) RecordRedact(name string, data []byte, spec string) int32 {
	rules, err := parseRedaction(spec)
	if err != nil {
		f.Log(LevelError, fmt.Sprintf("record %q refused: %v", name, err))
		return BadArgument
	}
	if !validName(name) {
		return BadName
	}
	redacted, err := redactJSON(data, rules)
	if err != nil {
		f.Log(LevelError, fmt.Sprintf("record %q refused: the data is not JSON: %v", name, err))
		return BadArgument
	}
	return f.Record(name, redacted)
}

// Now is NowMillis, or the real clock when it is 0.
func (f *FakeHost) Now() int64 {
	if f.NowMillis != 0 {
		return f.NowMillis
	}
	return time.Now().UnixMilli()
}
