//go:build !wasip1

package gather

import (
	"encoding/json"
	"encoding/pem"
	"fmt"
	"strconv"
	"strings"
)

// The FakeHost's redaction (ABI.md §5.14): the host's rules and bounds, on decoded JSON. Key
// order is not kept, and rules apply one after the other rather than together; for the
// specs a gatherer writes the result is the same.

type redactRule struct {
	action   string
	segs     []string
	except   bool
	lastStar int
}

func parseRedaction(spec string) ([]redactRule, error) {
	if len(spec) > 16*1024 {
		return nil, fmt.Errorf("redaction spec is %d bytes (max 16384)", len(spec))
	}
	var rules []redactRule
	for i, line := range strings.Split(spec, "\n") {
		line = strings.TrimRight(line, "\r")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		words := strings.Fields(line)
		if len(words) < 2 || len(words) > 3 || (len(words) == 3 && words[2] != "except-product-keys") {
			return nil, fmt.Errorf("redaction spec line %d: %q: expected `<action> <json-pointer> [except-product-keys]`", i+1, line)
		}
		switch words[0] {
		case "remove", "blank", "xout", "url", "url-list", "pem":
		default:
			return nil, fmt.Errorf("redaction spec line %d: unknown action %q", i+1, words[0])
		}
		if !strings.HasPrefix(words[1], "/") {
			return nil, fmt.Errorf("redaction spec line %d: pointer %q must start with '/'", i+1, words[1])
		}
		r := redactRule{action: words[0], except: len(words) == 3, lastStar: -1}
		for j, seg := range strings.Split(words[1][1:], "/") {
			if seg == "*" {
				r.lastStar = j
			}
			unescaped, ok := unescapeSegment(seg)
			if !ok {
				return nil, fmt.Errorf("redaction spec line %d: segment %q: '~' must be followed by '0' or '1'", i+1, seg)
			}
			r.segs = append(r.segs, unescaped)
		}
		if len(r.segs) > 32 {
			return nil, fmt.Errorf("redaction spec line %d: pointer has %d segments (max 32)", i+1, len(r.segs))
		}
		if r.except && r.lastStar < 0 {
			return nil, fmt.Errorf("redaction spec line %d: except-product-keys needs a `*` segment", i+1)
		}
		if len(rules) == 64 {
			return nil, fmt.Errorf("redaction spec has more than 64 rules")
		}
		rules = append(rules, r)
	}
	return rules, nil
}

func unescapeSegment(seg string) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(seg); i++ {
		if seg[i] != '~' {
			b.WriteByte(seg[i])
			continue
		}
		if i+1 >= len(seg) || (seg[i+1] != '0' && seg[i+1] != '1') {
			return "", false
		}
		b.WriteByte(map[byte]byte{'0': '~', '1': '/'}[seg[i+1]])
		i++
	}
	return b.String(), true
}

func isProductKey(k string) bool {
	return strings.Contains(k, "openshift.io/") || strings.Contains(k, "k8s.io/") || strings.Contains(k, "kubernetes.io/")
}

// redactJSON applies rules to a JSON document.
func redactJSON(data []byte, rules []redactRule) ([]byte, error) {
	var doc any
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	for i := range rules {
		doc, _ = redactWalk(doc, &rules[i], 0, false)
	}
	return json.Marshal(doc)
}

// redactWalk applies r from segment pos down; false when v is removed.
func redactWalk(v any, r *redactRule, pos int, product bool) (any, bool) {
	if pos == len(r.segs) {
		if r.except && product {
			return v, true
		}
		return redactValue(v, r.action)
	}
	seg := r.segs[pos]
	switch x := v.(type) {
	case map[string]any:
		for k, child := range x {
			if seg != "*" && seg != k {
				continue
			}
			p := product
			if r.except && pos == r.lastStar {
				p = isProductKey(k)
			}
			if nv, keep := redactWalk(child, r, pos+1, p); keep {
				x[k] = nv
			} else {
				delete(x, k)
			}
		}
	case []any:
		out := make([]any, 0, len(x))
		for i, child := range x {
			if seg != "*" && seg != strconv.Itoa(i) {
				out = append(out, child)
				continue
			}
			if nv, keep := redactWalk(child, r, pos+1, product && !(r.except && pos == r.lastStar)); keep {
				out = append(out, nv)
			}
		}
		return out, true
	}
	return v, true
}

func redactValue(v any, action string) (any, bool) {
	s, isString := v.(string)
	switch action {
	case "remove":
		return nil, false
	case "blank":
		if isString {
			return "", true
		}
		return nil, true
	case "xout":
		if isString {
			return strings.Repeat("x", len(s)), true
		}
	case "url":
		if isString {
			return anonymizeURL(s), true
		}
	case "url-list":
		if isString {
			parts := strings.Split(s, ",")
			for i := range parts {
				parts[i] = anonymizeURL(parts[i])
			}
			return strings.Join(parts, ","), true
		}
		if list, ok := v.([]any); ok {
			for i, e := range list {
				if es, ok := e.(string); ok {
					list[i] = anonymizeURL(es)
				}
			}
		}
	case "pem":
		if isString {
			return anonymizePEM(s), true
		}
	}
	return v, true
}

func anonymizeURL(s string) string {
	var b strings.Builder
	for _, c := range s {
		if strings.ContainsRune(".-/:", c) {
			b.WriteRune(c)
		} else {
			b.WriteByte('x')
		}
	}
	return b.String()
}

// anonymizePEM is the Insights Operator's config map rule.
func anonymizePEM(s string) string {
	const block = "-----BEGIN CERTIFICATE-----\nANONYMIZED\n-----END CERTIFICATE-----\n"
	var b strings.Builder
	rest := []byte(s)
	for {
		var p *pem.Block
		p, rest = pem.Decode(rest)
		if p == nil {
			return s
		}
		b.WriteString(block)
		if len(rest) == 0 {
			return b.String()
		}
	}
}
