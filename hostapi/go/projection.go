package gather

// A small JSON reader for list projections (ABI.md §5.13).
//
// Why not encoding/json: it decodes by reflection, and under the host's wasm interpreter that
// made a Go gatherer burn about 55 times the fuel of the same Rust gatherer, almost all of it
// in decoding projections. This reader produces exactly what encoding/json's Decoder with
// UseNumber produces (nil, bool, json.Number, string, []any, map[string]any) in one pass with
// no reflection; sdk_test.go checks the two agree.

import (
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf16"
	"unicode/utf8"
)

// maxDepth bounds nesting, as encoding/json does (10,000), so a hostile body cannot exhaust
// the goroutine stack.
const maxDepth = 10000

type jsonReader struct {
	b     []byte
	i     int
	depth int
}

// parseJSON decodes one JSON document; trailing non-space bytes are an error.
func parseJSON(b []byte) (any, error) {
	r := &jsonReader{b: b}
	v, err := r.value()
	if err != nil {
		return nil, err
	}
	r.space()
	if r.i != len(r.b) {
		return nil, r.fail("trailing data")
	}
	return v, nil
}

func (r *jsonReader) fail(what string) error {
	return fmt.Errorf("invalid JSON at byte %d: %s", r.i, what)
}

func (r *jsonReader) space() {
	for r.i < len(r.b) {
		switch r.b[r.i] {
		case ' ', '\t', '\r', '\n':
			r.i++
		default:
			return
		}
	}
}

func (r *jsonReader) value() (any, error) {
	r.space()
	if r.i >= len(r.b) {
		return nil, r.fail("unexpected end")
	}
	switch c := r.b[r.i]; {
	case c == '{':
		return r.object()
	case c == '[':
		return r.array()
	case c == '"':
		return r.str()
	case c == 't':
		return true, r.literal("true")
	case c == 'f':
		return false, r.literal("false")
	case c == 'n':
		return nil, r.literal("null")
	case c == '-' || (c >= '0' && c <= '9'):
		return r.number()
	default:
		return nil, r.fail("unexpected character")
	}
}

func (r *jsonReader) literal(word string) error {
	if len(r.b)-r.i < len(word) || string(r.b[r.i:r.i+len(word)]) != word {
		return r.fail("bad literal")
	}
	r.i += len(word)
	return nil
}

func (r *jsonReader) enter() error {
	r.depth++
	if r.depth > maxDepth {
		return r.fail("nested too deeply")
	}
	r.i++
	return nil
}

func (r *jsonReader) array() (any, error) {
	if err := r.enter(); err != nil {
		return nil, err
	}
	out := []any{}
	r.space()
	if r.i < len(r.b) && r.b[r.i] == ']' {
		r.i++
		r.depth--
		return out, nil
	}
	for {
		v, err := r.value()
		if err != nil {
			return nil, err
		}
		out = append(out, v)
		r.space()
		if r.i >= len(r.b) {
			return nil, r.fail("unterminated array")
		}
		switch r.b[r.i] {
		case ',':
			r.i++
		case ']':
			r.i++
			r.depth--
			return out, nil
		default:
			return nil, r.fail("expected , or ]")
		}
	}
}

func (r *jsonReader) object() (any, error) {
	if err := r.enter(); err != nil {
		return nil, err
	}
	out := map[string]any{}
	r.space()
	if r.i < len(r.b) && r.b[r.i] == '}' {
		r.i++
		r.depth--
		return out, nil
	}
	for {
		r.space()
		if r.i >= len(r.b) || r.b[r.i] != '"' {
			return nil, r.fail("expected a member name")
		}
		key, err := r.str()
		if err != nil {
			return nil, err
		}
		r.space()
		if r.i >= len(r.b) || r.b[r.i] != ':' {
			return nil, r.fail("expected :")
		}
		r.i++
		v, err := r.value()
		if err != nil {
			return nil, err
		}
		out[key] = v
		r.space()
		if r.i >= len(r.b) {
			return nil, r.fail("unterminated object")
		}
		switch r.b[r.i] {
		case ',':
			r.i++
		case '}':
			r.i++
			r.depth--
			return out, nil
		default:
			return nil, r.fail("expected , or }")
		}
	}
}

func (r *jsonReader) number() (any, error) {
	start := r.i
	if err := r.scanNumber(); err != nil {
		return nil, err
	}
	return json.Number(r.b[start:r.i]), nil
}

// scanNumber steps over a number, allocating nothing (skip depends on that).
func (r *jsonReader) scanNumber() error {
	if r.b[r.i] == '-' {
		r.i++
	}
	intStart := r.i
	if n := r.digits(); n == 0 || (n > 1 && r.b[intStart] == '0') {
		return r.fail("bad number")
	}
	if r.i < len(r.b) && r.b[r.i] == '.' {
		r.i++
		if r.digits() == 0 {
			return r.fail("bad number")
		}
	}
	if r.i < len(r.b) && (r.b[r.i] == 'e' || r.b[r.i] == 'E') {
		r.i++
		if r.i < len(r.b) && (r.b[r.i] == '+' || r.b[r.i] == '-') {
			r.i++
		}
		if r.digits() == 0 {
			return r.fail("bad number")
		}
	}
	return nil
}

func (r *jsonReader) digits() int {
	n := 0
	for r.i < len(r.b) && r.b[r.i] >= '0' && r.b[r.i] <= '9' {
		r.i++
		n++
	}
	return n
}

var errBadString = errors.New("bad string")

// str reads a string at r.i (which is '"'). Strings without escapes, the common case, are
// one slice copy; invalid UTF-8 becomes U+FFFD, as encoding/json does.
func (r *jsonReader) str() (string, error) {
	r.i++
	start := r.i
	for r.i < len(r.b) {
		c := r.b[r.i]
		if c == '"' {
			s := r.b[start:r.i]
			r.i++
			if utf8.Valid(s) {
				return string(s), nil
			}
			return string([]rune(string(s))), nil
		}
		if c == '\\' || c < 0x20 {
			r.i = start
			return r.escaped()
		}
		r.i++
	}
	return "", r.fail("unterminated string")
}

func (r *jsonReader) escaped() (string, error) {
	var out []byte
	for r.i < len(r.b) {
		c := r.b[r.i]
		switch {
		case c == '"':
			r.i++
			if utf8.Valid(out) {
				return string(out), nil
			}
			return string([]rune(string(out))), nil
		case c < 0x20:
			return "", r.fail("control character in string")
		case c != '\\':
			out = append(out, c)
			r.i++
			continue
		}
		if r.i+1 >= len(r.b) {
			return "", r.fail("unterminated string")
		}
		e := r.b[r.i+1]
		r.i += 2
		switch e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			c1, ok := r.hex4()
			if !ok {
				return "", r.fail("bad \\u escape")
			}
			ch := rune(c1)
			if utf16.IsSurrogate(ch) {
				ch = utf8.RuneError
				if r.i+1 < len(r.b) && r.b[r.i] == '\\' && r.b[r.i+1] == 'u' {
					save := r.i
					r.i += 2
					if c2, ok := r.hex4(); ok {
						if dec := utf16.DecodeRune(rune(c1), rune(c2)); dec != utf8.RuneError {
							ch = dec
						} else {
							r.i = save
						}
					} else {
						return "", r.fail("bad \\u escape")
					}
				}
			}
			out = utf8.AppendRune(out, ch)
		default:
			return "", errBadString
		}
	}
	return "", r.fail("unterminated string")
}

func (r *jsonReader) hex4() (uint16, bool) {
	if len(r.b)-r.i < 4 {
		return 0, false
	}
	var v uint16
	for _, c := range r.b[r.i : r.i+4] {
		v <<= 4
		switch {
		case c >= '0' && c <= '9':
			v |= uint16(c - '0')
		case c >= 'a' && c <= 'f':
			v |= uint16(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			v |= uint16(c - 'A' + 10)
		default:
			return 0, false
		}
	}
	r.i += 4
	return v, true
}

// skip validates and steps over one value without building it (no allocation), so a page
// can be split into per-field spans that are decoded only when a gatherer asks.
func (r *jsonReader) skip() error {
	r.space()
	if r.i >= len(r.b) {
		return r.fail("unexpected end")
	}
	switch c := r.b[r.i]; {
	case c == '{' || c == '[':
		closer := byte(']')
		if c == '{' {
			closer = '}'
		}
		if err := r.enter(); err != nil {
			return err
		}
		r.space()
		if r.i < len(r.b) && r.b[r.i] == closer {
			r.i++
			r.depth--
			return nil
		}
		for {
			if c == '{' {
				r.space()
				if r.i >= len(r.b) || r.b[r.i] != '"' {
					return r.fail("expected a member name")
				}
				if err := r.skipString(); err != nil {
					return err
				}
				r.space()
				if r.i >= len(r.b) || r.b[r.i] != ':' {
					return r.fail("expected :")
				}
				r.i++
			}
			if err := r.skip(); err != nil {
				return err
			}
			r.space()
			if r.i >= len(r.b) {
				return r.fail("unterminated array or object")
			}
			switch r.b[r.i] {
			case ',':
				r.i++
			case closer:
				r.i++
				r.depth--
				return nil
			default:
				return r.fail("expected , or a closing bracket")
			}
		}
	case c == '"':
		return r.skipString()
	case c == 't':
		return r.literal("true")
	case c == 'f':
		return r.literal("false")
	case c == 'n':
		return r.literal("null")
	case c == '-' || (c >= '0' && c <= '9'):
		return r.scanNumber()
	default:
		return r.fail("unexpected character")
	}
}

// skipString steps over a string at r.i, checking its escapes as str does.
func (r *jsonReader) skipString() error {
	r.i++
	for r.i < len(r.b) {
		switch c := r.b[r.i]; {
		case c == '"':
			r.i++
			return nil
		case c < 0x20:
			return r.fail("control character in string")
		case c == '\\':
			if r.i+1 >= len(r.b) {
				return r.fail("unterminated string")
			}
			switch r.b[r.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				r.i += 2
			case 'u':
				r.i += 2
				if _, ok := r.hex4(); !ok {
					return r.fail("bad \\u escape")
				}
			default:
				return r.fail("bad escape")
			}
		default:
			r.i++
		}
	}
	return r.fail("unterminated string")
}

// projectionPage splits a projection page (ABI.md §5.13: an array of arrays) into spans:
// spans[rows[k]:rows[k+1]] are the [start, end) byte offsets of row k's values. Two
// allocations per page, whatever its size.
func projectionPage(b []byte) (rows []int32, spans []int32, err error) {
	r := &jsonReader{b: b}
	r.space()
	if r.i < len(b) && b[r.i] == 'n' {
		if err := r.literal("null"); err != nil {
			return nil, nil, err
		}
		r.space()
		if r.i != len(b) {
			return nil, nil, r.fail("trailing data")
		}
		return []int32{0}, nil, nil
	}
	if r.i >= len(b) || b[r.i] != '[' {
		return nil, nil, r.fail("the projection is not an array")
	}
	r.i++
	rows = []int32{0}
	r.space()
	empty := r.i < len(b) && b[r.i] == ']'
	if empty {
		r.i++
	}
	for !empty {
		r.space()
		if r.i >= len(b) || b[r.i] != '[' {
			return nil, nil, r.fail("a projection item is not an array")
		}
		r.i++
		r.space()
		if r.i < len(b) && b[r.i] == ']' {
			r.i++
		} else {
			for {
				r.space()
				start := r.i
				if err := r.skip(); err != nil {
					return nil, nil, err
				}
				spans = append(spans, int32(start), int32(r.i))
				r.space()
				if r.i >= len(b) {
					return nil, nil, r.fail("unterminated item")
				}
				if b[r.i] == ']' {
					r.i++
					break
				}
				if b[r.i] != ',' {
					return nil, nil, r.fail("expected , or ]")
				}
				r.i++
			}
		}
		rows = append(rows, int32(len(spans)/2))
		r.space()
		if r.i >= len(b) {
			return nil, nil, r.fail("unterminated projection")
		}
		if b[r.i] == ']' {
			r.i++
			break
		}
		if b[r.i] != ',' {
			return nil, nil, r.fail("expected , or ]")
		}
		r.i++
	}
	r.space()
	if r.i != len(b) {
		return nil, nil, r.fail("trailing data")
	}
	return rows, spans, nil
}

// plainString is the value of a JSON string span with no escapes, without decoding it.
func plainString(span []byte) (string, bool) {
	if len(span) < 2 || span[0] != '"' {
		return "", false
	}
	inner := span[1 : len(span)-1]
	for _, c := range inner {
		if c == '\\' || c >= 0x80 {
			return "", false
		}
	}
	return string(inner), true
}

// appendInts appends the integers of a span: a number, or the numbers of an array, as
// json.Number.Int64 reads them (so 1.0, 1e3 and out-of-range numbers are skipped).
func appendInts(out []int64, span []byte) []int64 {
	r := &jsonReader{b: span}
	r.space()
	if r.i >= len(span) {
		return out
	}
	if span[r.i] != '[' {
		if n, ok := int64Token(span[r.i:]); ok {
			out = append(out, n)
		}
		return out
	}
	r.i++
	for {
		r.space()
		start := r.i
		if r.skip() != nil {
			return out
		}
		if n, ok := int64Token(span[start:r.i]); ok {
			out = append(out, n)
		}
		r.space()
		if r.i >= len(span) || span[r.i] != ',' {
			return out
		}
		r.i++
	}
}

// int64Token parses a whole JSON integer token, as strconv.ParseInt(s, 10, 64) would.
func int64Token(t []byte) (int64, bool) {
	for len(t) > 0 && (t[len(t)-1] == ' ' || t[len(t)-1] == '\n' || t[len(t)-1] == '\t' || t[len(t)-1] == '\r') {
		t = t[:len(t)-1]
	}
	neg := len(t) > 0 && t[0] == '-'
	if neg {
		t = t[1:]
	}
	if len(t) == 0 {
		return 0, false
	}
	var n uint64
	for _, c := range t {
		if c < '0' || c > '9' {
			return 0, false
		}
		if n > (1<<63)/10 {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	if !neg && n > 1<<63-1 || neg && n > 1<<63 {
		return 0, false
	}
	if neg {
		return -int64(n), true
	}
	return int64(n), true
}
