//go:build !wasip1

package gather

import (
	"bytes"
	"encoding/json"
	"math/rand"
	"reflect"
	"testing"
)

// stdDecode is what NextPage used before projection.go: encoding/json with UseNumber.
func stdDecode(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errBadString
	}
	return v, nil
}

func TestParseJSONAgreesWithEncodingJSON(t *testing.T) {
	cases := []string{
		`[["openshift-dns","Running",[0,1]],["x",null,null]]`,
		`{"a":{"b":[true,false,null,-0.5e+3,1E2,0,12345678901234567890]}}`,
		`"esc\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00"`,
		`"lone \ud800 surrogate"`, `"pair then bad \ud800\u0041"`, "\"bad utf8 \xff\xfe\"",
		` [ ] `, `{}`, `{"dup":1,"dup":2}`, `""`,
	}
	for _, c := range cases {
		want, werr := stdDecode([]byte(c))
		got, gerr := parseJSON([]byte(c))
		if (werr == nil) != (gerr == nil) || !reflect.DeepEqual(want, got) {
			t.Errorf("%q: got %#v (%v), want %#v (%v)", c, got, gerr, want, werr)
		}
	}
	for _, bad := range []string{`[1,]`, `{"a"}`, `01`, `1.`, `-`, `"\x"`, "\"a\nb\"", `[1 2]`, `tru`, `{"a":1,}`, `[`, `"`, `1 2`} {
		if _, err := parseJSON([]byte(bad)); err == nil {
			t.Errorf("%q: accepted", bad)
		}
		if _, err := stdDecode([]byte(bad)); err == nil {
			t.Errorf("%q: encoding/json accepts it, the test case is wrong", bad)
		}
	}
}

// randomJSON builds documents from pieces that exercise every branch of the reader.
func randomJSON(r *rand.Rand, depth int) any {
	switch n := r.Intn(9); {
	case depth > 4 || n == 0:
		return nil
	case n == 1:
		return r.Intn(2) == 0
	case n == 2:
		return json.Number([]string{"0", "-1", "3.25", "1e9", "-2.5E-3", "18446744073709551616"}[r.Intn(6)])
	case n <= 4:
		runes := []rune{'a', 'é', '"', '\\', '\n', 0x1F600, 0x7f, '/', 0}
		s := make([]rune, r.Intn(6))
		for i := range s {
			s[i] = runes[r.Intn(len(runes))]
		}
		return string(s)
	case n <= 6:
		a := make([]any, r.Intn(4))
		for i := range a {
			a[i] = randomJSON(r, depth+1)
		}
		return a
	default:
		m := map[string]any{}
		for i := r.Intn(4); i > 0; i-- {
			m[string(rune('a'+r.Intn(5)))] = randomJSON(r, depth+1)
		}
		return m
	}
}

func TestParseJSONRandomDocuments(t *testing.T) {
	r := rand.New(rand.NewSource(7))
	for i := 0; i < 3000; i++ {
		doc, err := json.Marshal(randomJSON(r, 0))
		if err != nil {
			t.Fatal(err)
		}
		if r.Intn(3) == 0 { // re-indent, so whitespace handling is covered too
			var buf bytes.Buffer
			_ = json.Indent(&buf, doc, " ", "\t")
			doc = buf.Bytes()
		}
		want, _ := stdDecode(doc)
		got, err := parseJSON(doc)
		if err != nil || !reflect.DeepEqual(want, got) {
			t.Fatalf("%s: got %#v (%v), want %#v", doc, got, err, want)
		}
		// Every strict prefix is invalid JSON for both readers, except where a prefix is a
		// whole number ("12" of "123").
		cut := doc[:r.Intn(len(doc))]
		_, werr := stdDecode(cut)
		if _, gerr := parseJSON(cut); (werr == nil) != (gerr == nil) {
			t.Fatalf("prefix %q: std err %v, ours %v", cut, werr, gerr)
		}
	}
}

func TestParseJSONDepthIsBounded(t *testing.T) {
	deep := bytes.Repeat([]byte("["), maxDepth+1)
	if _, err := parseJSON(deep); err == nil {
		t.Fatal("accepted")
	}
}

func TestProjectionPageSpansAndLazyValues(t *testing.T) {
	body := []byte(` [ ["a\u00e9", "Running", [0, 3, 1.5, 9223372036854775808, -9223372036854775808], {"k": [1]}],
		[null, "x\"y", 7, null], [] ] `)
	rows, spans, err := projectionPage(body)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(rows, []int32{0, 4, 8, 8}) || len(spans) != 16 {
		t.Fatalf("rows %v spans %v", rows, spans)
	}
	l := &List{fields: []string{"/n", "/p", "/r", "/o"}}
	p := &Page{list: l, body: body, rows: rows, spans: spans}
	items := p.Items()
	if p.Len() != 3 || len(items) != 3 {
		t.Fatalf("len %d", p.Len())
	}
	if got := items[0].String("/n"); got != "aé" {
		t.Errorf("escaped string: %q", got)
	}
	if got := items[1].String("/p"); got != `x"y` {
		t.Errorf("escaped quote: %q", got)
	}
	if got := items[0].Ints("/r"); !reflect.DeepEqual(got, []int64{0, 3, -9223372036854775808}) {
		t.Errorf("ints: %v", got)
	}
	if got := items[1].Ints("/o"); got != nil {
		t.Errorf("null ints: %v", got)
	}
	if got := items[1].Ints("/r"); !reflect.DeepEqual(got, []int64{7}) {
		t.Errorf("scalar ints: %v", got)
	}
	if got := string(items[0].Get("/o")); got != `{"k": [1]}` {
		t.Errorf("raw: %q", got)
	}
	if items[1].Get("/n") != nil || items[2].Get("/n") != nil || items[2].Value("/p") != nil {
		t.Error("null and missing values must be nil")
	}
	if !reflect.DeepEqual(items[0].Value("/o"), map[string]any{"k": []any{json.Number("1")}}) {
		t.Errorf("value: %#v", items[0].Value("/o"))
	}
	for _, bad := range []string{`[`, `[[1,]]`, `[1]`, `{}`, `[[1]] x`, `[["\q"]]`, `[[1][2]]`} {
		if _, _, err := projectionPage([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if rows, _, err := projectionPage([]byte("null")); err != nil || len(rows) != 1 {
		t.Errorf("null page: %v %v", rows, err)
	}
}

func TestSkipAgreesWithParse(t *testing.T) {
	r := rand.New(rand.NewSource(11))
	for i := 0; i < 2000; i++ {
		doc, _ := json.Marshal(randomJSON(r, 0))
		cut := doc[:r.Intn(len(doc)+1)]
		_, perr := parseJSON(cut)
		sr := &jsonReader{b: cut}
		serr := sr.skip()
		if serr == nil {
			sr.space()
			if sr.i != len(cut) {
				serr = errBadString
			}
		}
		if (perr == nil) != (serr == nil) {
			t.Fatalf("%q: parse %v, skip %v", cut, perr, serr)
		}
	}
}
