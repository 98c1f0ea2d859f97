package gather

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
)

// Request is one API request. Only the Accept header is forwarded (ABI.md §6.1).
type Request struct {
	Method  string
	Path    string
	Headers [][2]string
	Body    []byte
}

// HeadersWire is the headers' wire form: "Name: value" lines joined by "\n".
func (r *Request) HeadersWire() string {
	lines := make([]string, 0, len(r.Headers))
	for _, h := range r.Headers {
		lines = append(lines, h[0]+": "+h[1])
	}
	return strings.Join(lines, "\n")
}

// ResponseHeaders are the only response headers a guest can read (ABI.md §6.3).
var ResponseHeaders = []string{"content-type", "retry-after", "warning", "x-gather-policy"}

// Response is an API answer: any HTTP status.
type Response struct {
	Status  int
	Headers map[string]string
	Body    []byte
}

// IsSuccess reports a 2xx status.
func (r *Response) IsSuccess() bool { return r.Status >= 200 && r.Status < 300 }

// statusMessage is the Kubernetes Status message of a body, or its first 200 bytes.
func (r *Response) statusMessage() string {
	var st struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(r.Body, &st) == nil && st.Message != "" {
		return st.Message
	}
	b := r.Body
	if len(b) > 200 {
		b = b[:200]
	}
	return string(b)
}

// Debug logs at debug level (host log only).
func Debug(msg string) { current().Log(LevelDebug, msg) }

// Log logs at info level (host log only).
func Log(msg string) { current().Log(LevelInfo, msg) }

// Warn adds a warning to this gatherer's report in gathers.json.
func Warn(msg string) { current().Log(LevelWarn, msg) }

// Error adds an error to this gatherer's report (the gatherer keeps running).
func Error(msg string) { current().Log(LevelError, msg) }

// Logf, Warnf and Errorf format their message with fmt.Sprintf.
func Logf(format string, a ...any)   { Log(fmt.Sprintf(format, a...)) }
func Warnf(format string, a ...any)  { Warn(fmt.Sprintf(format, a...)) }
func Errorf(format string, a ...any) { Error(fmt.Sprintf(format, a...)) }

// Config is this module's operator config as raw JSON, or nil when none is set.
func Config() json.RawMessage {
	b := current().Config()
	if len(b) == 0 || string(b) == "null" {
		return nil
	}
	return b
}

// ConfigInto parses the config into v; it leaves v alone when no config is set.
func ConfigInto(v any) error {
	c := Config()
	if c == nil {
		return nil
	}
	return json.Unmarshal(c, v)
}

// Do sends req through the host. Any HTTP status is a success; only transport failures
// (and the host's limits) are errors.
func Do(req *Request) (*Response, error) {
	resp, code := current().Request(req)
	if code < 0 {
		return nil, &HostError{Call: "request", Code: code}
	}
	return resp, nil
}

// Get GETs path (with an optional query). A 404 is a Response with Status 404.
func Get(path string) (*Response, error) {
	return Do(&Request{Method: "GET", Path: path})
}

// GetJSON GETs path and parses the body into v; a non-2xx status is a *StatusError.
func GetJSON(path string, v any) error {
	resp, err := Get(path)
	if err != nil {
		return err
	}
	if !resp.IsSuccess() {
		return &StatusError{Path: path, Status: resp.Status, Message: resp.statusMessage()}
	}
	if err := json.Unmarshal(resp.Body, v); err != nil {
		return fmt.Errorf("GET %s: invalid JSON: %w", path, err)
	}
	return nil
}

// ListAll lists every item at path, following limit/continue pages of 500. It holds the
// whole list in guest memory: fine for tens of objects; use EmitList or OpenList for more.
func ListAll(path string) ([]json.RawMessage, error) {
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	var items []json.RawMessage
	token := ""
	for {
		page := path + sep + "limit=500"
		if token != "" {
			page += "&continue=" + url.QueryEscape(token)
		}
		var list struct {
			Items    []json.RawMessage `json:"items"`
			Metadata struct {
				Continue string `json:"continue"`
			} `json:"metadata"`
		}
		if err := GetJSON(page, &list); err != nil {
			return nil, err
		}
		items = append(items, list.Items...)
		if token = list.Metadata.Continue; token == "" {
			return items, nil
		}
	}
}

// Record emits one record into the period's archive.
func Record(name string, data []byte) error {
	if code := current().Record(name, data); code != OK {
		return &HostError{Call: "record", Code: code}
	}
	return nil
}

// RecordJSON emits v as a JSON record, without metadata.managedFields (noise the archive
// does not need, often half an object's size).
func RecordJSON(name string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("record %q: %w", name, err)
	}
	return Record(name, StripManagedFields(data))
}

// StripManagedFields removes metadata.managedFields from a JSON object, keeping every other
// byte (and so the key order, as the Rust SDK does). Other JSON is returned unchanged.
func StripManagedFields(data []byte) []byte {
	if !bytes.Contains(data, []byte(`"managedFields"`)) {
		return data
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if !enterObject(dec) || !findKey(dec, "metadata", func() bool { return enterObject(dec) }) {
		return data
	}
	first := true
	for dec.More() {
		before := int(dec.InputOffset())
		key, ok := nextKey(dec)
		if !ok {
			return data
		}
		var value json.RawMessage
		if dec.Decode(&value) != nil {
			return data
		}
		if key != "managedFields" {
			first = false
			continue
		}
		after := int(dec.InputOffset())
		// A later member starts with its own comma; the first member takes the one after it.
		if first {
			rest := bytes.TrimLeft(data[after:], " \t\r\n")
			if len(rest) > 0 && rest[0] == ',' {
				after = len(data) - len(rest) + 1
			}
		}
		out := append(append([]byte{}, data[:before]...), data[after:]...)
		if !json.Valid(out) {
			return data
		}
		return out
	}
	return data
}

func enterObject(dec *json.Decoder) bool {
	t, err := dec.Token()
	return err == nil && t == json.Delim('{')
}

func nextKey(dec *json.Decoder) (string, bool) {
	t, err := dec.Token()
	key, ok := t.(string)
	return key, err == nil && ok
}

// findKey skips members until key, then calls enter on its value.
func findKey(dec *json.Decoder, key string, enter func() bool) bool {
	for dec.More() {
		k, ok := nextKey(dec)
		if !ok {
			return false
		}
		if k == key {
			return enter()
		}
		var skip json.RawMessage
		if dec.Decode(&skip) != nil {
			return false
		}
	}
	return false
}

// EmitList emits every item listed at path as a record named from template ({name} and
// {namespace} are the item's), without metadata.managedFields; it returns how many records
// were accepted. The host pages through the list and writes the records itself: the items
// never enter the gatherer (ABI.md §5.13). An item the archive refuses (bad name, duplicate,
// size cap) is reported by the host and skipped; a non-2xx page ends the list with a
// *StatusError.
func EmitList(path, template string) (uint64, error) {
	list, err := OpenList(path)
	if err != nil {
		return 0, err
	}
	defer list.Close()
	var emitted uint64
	for {
		more, err := list.advance()
		if err != nil || !more {
			return emitted, err
		}
		n := current().ListEmit(list.handle, AllItems, template)
		if n < 0 {
			return emitted, &HostError{Call: "list_emit", Code: n}
		}
		emitted += uint64(n)
	}
}

// Redaction is a redaction spec (ABI.md §5.14), built rule by rule: each rule applies an
// action to what a JSON Pointer reaches in a record, where a "*" segment stands for every
// element or member. The host applies it: the redacted values never need to enter the
// gatherer.
type Redaction struct {
	rules []string
}

// NewRedaction is a Redaction with no rules.
func NewRedaction() *Redaction { return &Redaction{} }

func (r *Redaction) rule(action, pointer string, exceptProductKeys bool) *Redaction {
	rule := action + " " + pointer
	if exceptProductKeys {
		rule += " except-product-keys"
	}
	r.rules = append(r.rules, rule)
	return r
}

// Remove deletes the member or element.
func (r *Redaction) Remove(pointer string) *Redaction { return r.rule("remove", pointer, false) }

// Blank makes a string "" and any other value null.
func (r *Redaction) Blank(pointer string) *Redaction { return r.rule("blank", pointer, false) }

// Xout makes a string as many "x" as it has bytes; other values are left alone.
func (r *Redaction) Xout(pointer string) *Redaction { return r.rule("xout", pointer, false) }

// URL makes every character of a string but ".", "-", "/" and ":" an "x".
func (r *Redaction) URL(pointer string) *Redaction { return r.rule("url", pointer, false) }

// URLList treats a comma-separated list of URLs (or an array of them) as URL does each one.
func (r *Redaction) URLList(pointer string) *Redaction { return r.rule("url-list", pointer, false) }

// PEM keeps one empty certificate block per block of a value made only of PEM blocks.
func (r *Redaction) PEM(pointer string) *Redaction { return r.rule("pem", pointer, false) }

// BlankExceptProductKeys is Blank, except for members whose key (matched by the pointer's
// last "*") contains "openshift.io/", "k8s.io/" or "kubernetes.io/".
func (r *Redaction) BlankExceptProductKeys(pointer string) *Redaction {
	return r.rule("blank", pointer, true)
}

// XoutExceptProductKeys is Xout, except for members whose key (matched by the pointer's last
// "*") contains "openshift.io/", "k8s.io/" or "kubernetes.io/".
func (r *Redaction) XoutExceptProductKeys(pointer string) *Redaction {
	return r.rule("xout", pointer, true)
}

// Spec is the wire form: one rule per line.
func (r *Redaction) Spec() string {
	if r == nil {
		return ""
	}
	return strings.Join(r.rules, "\n")
}

// NowMs is the host's clock, in milliseconds since the Unix epoch (for time-based rules such
// as "pending for more than 2 minutes").
func NowMs() int64 { return current().Now() }

// RecordJSONRedacted is RecordJSON with r applied by the host before the record is written.
// A refusal (bad name, duplicate, size cap) is a *HostError as for Record; a bad spec is
// reported by the host and returned as a *HostError with BadArgument.
func RecordJSONRedacted(name string, v any, r *Redaction) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("record %q: %w", name, err)
	}
	if code := current().RecordRedact(name, StripManagedFields(data), r.Spec()); code != OK {
		return &HostError{Call: "record", Code: code}
	}
	return nil
}

// EmitListRedacted is EmitList with r applied by the host to every item before it is
// written.
func EmitListRedacted(path, template string, r *Redaction) (uint64, error) {
	list, err := OpenList(path)
	if err != nil {
		return 0, err
	}
	defer list.Close()
	if err := list.Redact(r); err != nil {
		return 0, err
	}
	var emitted uint64
	for {
		more, err := list.advance()
		if err != nil || !more {
			return emitted, err
		}
		n := current().ListEmit(list.handle, AllItems, template)
		if n < 0 {
			return emitted, &HostError{Call: "list_emit", Code: n}
		}
		emitted += uint64(n)
	}
}

// List is a list read page by page through the host, showing the gatherer only projections
// of its items (ABI.md §5.13). Close it when done.
type List struct {
	handle int32
	path   string
	fields []string
	first  bool
	body   []byte
}

// OpenList opens the list at path (its first page is fetched now). Each field is a JSON
// Pointer into an item ("/status/phase"); a "*" segment takes every element of an array.
func OpenList(path string, fields ...string) (*List, error) {
	h := current().ListOpen(path, strings.Join(fields, "\n"), FlagStripManagedFields)
	if h < 0 {
		return nil, &HostError{Call: "list_open", Code: h}
	}
	return &List{handle: h, path: path, fields: fields, first: true}, nil
}

// Redact has the host apply r to every item Emit or EmitAll writes from now on (replacing an
// earlier one; an empty one clears it).
func (l *List) Redact(r *Redaction) error {
	if code := current().ListRedact(l.handle, r.Spec()); code != OK {
		return &HostError{Call: "list_redact", Code: code}
	}
	return nil
}

// Close frees the list's handle.
func (l *List) Close() {
	if l.handle > 0 {
		current().ResponseClose(l.handle)
		l.handle = 0
	}
}

// advance moves to the next page and keeps its projection body; false when complete.
func (l *List) advance() (bool, error) {
	if !l.first {
		switch code := current().ListNext(l.handle); {
		case code == 0:
			return false, nil
		case code < 0:
			return false, &HostError{Call: "list_next", Code: code}
		}
	}
	l.first = false
	status, body, code := current().ResponseBody(l.handle)
	if code < 0 {
		return false, &HostError{Call: "response_read", Code: code}
	}
	resp := &Response{Status: status, Body: body}
	if !resp.IsSuccess() {
		return false, &StatusError{Path: l.path, Status: status, Message: resp.statusMessage()}
	}
	l.body = body
	return true, nil
}

// NextPage is the next page, or nil when the list is complete. A non-2xx page is a
// *StatusError.
func (l *List) NextPage() (*Page, error) {
	more, err := l.advance()
	if err != nil || !more {
		return nil, err
	}
	// The page is split into spans of raw JSON, one per value, and a value is decoded only
	// when asked for: under the host's interpreter, allocation is what a Go gatherer pays
	// for most (projection.go).
	rows, spans, err := projectionPage(l.body)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", l.path, err)
	}
	return &Page{list: l, body: l.body, rows: rows, spans: spans}, nil
}

// Page is one page of a List: the projections of its items.
type Page struct {
	list  *List
	body  []byte
	rows  []int32
	spans []int32
}

// Len is the number of items on the page.
func (p *Page) Len() int { return len(p.rows) - 1 }

// Items are the page's items, in list order.
func (p *Page) Items() []Item {
	items := make([]Item, p.Len())
	for i := range items {
		items[i] = Item{page: p, index: i}
	}
	return items
}

// EmitAll emits every item of the page (see EmitList); returns how many were accepted.
func (p *Page) EmitAll(template string) (uint64, error) {
	n := current().ListEmit(p.list.handle, AllItems, template)
	if n < 0 {
		return 0, &HostError{Call: "list_emit", Code: n}
	}
	return uint64(n), nil
}

// Item is one item of a Page: the values of the list's fields.
type Item struct {
	page  *Page
	index int
}

// raw is the JSON text of field's value, or nil if the list has no such field.
func (it Item) raw(field string) []byte {
	p := it.page
	for i, f := range p.list.fields {
		if f != field {
			continue
		}
		k := int(p.rows[it.index]) + i
		if k >= int(p.rows[it.index+1]) {
			return nil
		}
		return p.body[p.spans[2*k]:p.spans[2*k+1]]
	}
	return nil
}

// Value is the value of field (one the list was opened with) as decoded JSON: nil, bool,
// json.Number, string, []any or map[string]any. A "*" field gives a []any.
func (it Item) Value(field string) any {
	raw := it.raw(field)
	if raw == nil {
		return nil
	}
	v, _ := parseJSON(raw) // the span was validated when the page was split
	return v
}

// Get is the value of field as raw JSON, or nil if it is absent or null.
func (it Item) Get(field string) json.RawMessage {
	raw := it.raw(field)
	if raw == nil || string(raw) == "null" {
		return nil
	}
	return json.RawMessage(raw)
}

// String is field's value when it is a JSON string, else "".
func (it Item) String(field string) string {
	if s, ok := plainString(it.raw(field)); ok {
		return s
	}
	s, _ := it.Value(field).(string)
	return s
}

// Ints are the integers in field's value: a number, or the numbers of an array (a "*"
// field); anything else is skipped.
func (it Item) Ints(field string) []int64 {
	return appendInts(nil, it.raw(field))
}

// Emit writes the whole item (as the API server sent it, without metadata.managedFields)
// as the record named by template. A record the archive refuses (bad name, duplicate, size
// cap) is reported by the host and skipped: Emit then returns false and no error, so one
// bad item never stops a gatherer. An error means the list or template itself is unusable.
func (it Item) Emit(template string) (bool, error) {
	switch code := current().ListEmit(it.page.list.handle, int32(it.index), template); code {
	case OK:
		return true, nil
	case BadName, Duplicate, ArchiveFull:
		return false, nil
	default:
		return false, &HostError{Call: "list_emit", Code: code}
	}
}

// run calls the registered gatherer and turns its result into the ABI return code. A panic
// is logged at level 4 (the report's `panic`) and then continues, so the run ends as a panic.
func run(f func() error) (code int32) {
	defer func() {
		if r := recover(); r != nil {
			current().Log(LevelPanic, fmt.Sprint(r))
			panic(r)
		}
	}()
	if f == nil {
		Error("no gatherer registered: call gather.Main in an init function")
		return 1
	}
	if err := f(); err != nil {
		Error(err.Error())
		return 1
	}
	return 0
}

var registered func() error

// Main registers the gatherer's function: call it from an init function. The host calls
// it once per period; returning an error logs it at level 3 and returns 1 (`exit`).
func Main(f func() error) { registered = f }
