package fhir

import (
	"bytes"
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// The helpers in this file walk raw JSON without decoding it, so that the
// parts of a resource the server does not interpret stay exactly as
// submitted. They assume their input passed json.Valid; on anything else they
// return "not found" rather than panic.

// member is one name/value pair of a JSON object, in document order.
type member struct {
	key   string
	value []byte // the raw value, without surrounding whitespace
}

// get returns the value of the member named key, or nil.
func get(ms []member, key string) []byte {
	for i := range ms {
		if ms[i].key == key {
			return ms[i].value
		}
	}
	return nil
}

// has reports whether a member named key exists.
func has(ms []member, key string) bool { return get(ms, key) != nil }

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// trimSpace returns b without leading and trailing JSON whitespace.
func trimSpace(b []byte) []byte {
	i, j := 0, len(b)
	for i < j && isSpace(b[i]) {
		i++
	}
	for j > i && isSpace(b[j-1]) {
		j--
	}
	return b[i:j]
}

// stringEnd returns the index just past the string literal starting at b[i]
// (which is '"').
func stringEnd(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(b)
}

// valueEnd returns the index just past the JSON value starting at b[i].
func valueEnd(b []byte, i int) int {
	if i >= len(b) {
		return len(b)
	}
	switch b[i] {
	case '"':
		return stringEnd(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				i = stringEnd(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return len(b)
	default:
		for i < len(b) && !isSpace(b[i]) && b[i] != ',' && b[i] != '}' && b[i] != ']' {
			i++
		}
		return i
	}
}

// members splits a JSON object into its members in document order. ok is
// false when raw is not an object.
func members(raw []byte) (ms []member, ok bool) {
	raw = trimSpace(raw)
	if len(raw) < 2 || raw[0] != '{' {
		return nil, false
	}
	i := skipSpace(raw, 1)
	for i < len(raw) && raw[i] != '}' {
		if raw[i] != '"' {
			return nil, false
		}
		ke := stringEnd(raw, i)
		key, ok := decodeString(raw[i:ke])
		if !ok {
			return nil, false
		}
		i = skipSpace(raw, ke)
		if i >= len(raw) || raw[i] != ':' {
			return nil, false
		}
		i = skipSpace(raw, i+1)
		ve := valueEnd(raw, i)
		if ve <= i {
			return nil, false
		}
		ms = append(ms, member{key: key, value: raw[i:ve]})
		i = skipSpace(raw, ve)
		if i < len(raw) && raw[i] == ',' {
			i = skipSpace(raw, i+1)
		}
	}
	return ms, true
}

// items splits a JSON array into its elements. ok is false when raw is not
// an array.
func items(raw []byte) (out [][]byte, ok bool) {
	raw = trimSpace(raw)
	if len(raw) < 2 || raw[0] != '[' {
		return nil, false
	}
	i := skipSpace(raw, 1)
	for i < len(raw) && raw[i] != ']' {
		ve := valueEnd(raw, i)
		if ve <= i {
			return nil, false
		}
		out = append(out, raw[i:ve])
		i = skipSpace(raw, ve)
		if i < len(raw) && raw[i] == ',' {
			i = skipSpace(raw, i+1)
		}
	}
	return out, true
}

// decodeString decodes a JSON string literal. ok is false when raw is not a
// string.
func decodeString(raw []byte) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return "", false
	}
	inner := raw[1 : len(raw)-1]
	plain := true
	for _, c := range inner {
		if c == '\\' || c == '"' || c < 0x20 {
			plain = false
			break
		}
	}
	if plain && utf8.Valid(inner) {
		return string(inner), true
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false
	}
	return s, true
}

// jsonType names the JSON type of raw for diagnostics and type checks.
func jsonType(raw []byte) string {
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "number"
}

// maxDepth returns the deepest nesting of objects and arrays in b, stopping
// early once limit is exceeded.
func maxDepth(b []byte, limit int) int {
	depth, deepest := 0, 0
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '"':
			i = stringEnd(b, i) - 1
		case '{', '[':
			depth++
			if depth > deepest {
				deepest = depth
				if deepest > limit {
					return deepest
				}
			}
		case '}', ']':
			depth--
		}
	}
	return deepest
}

// appendObject writes members as a compact JSON object. Values are
// compacted (insignificant whitespace removed) but otherwise kept byte for
// byte: key order, number spelling and string escapes inside them do not
// change.
func appendObject(dst []byte, ms []member) ([]byte, error) {
	dst = append(dst, '{')
	for i, m := range ms {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, m.key)
		dst = append(dst, ':')
		var err error
		if dst, err = appendCompact(dst, m.value); err != nil {
			return nil, err
		}
	}
	return append(dst, '}'), nil
}

// appendString writes s as a JSON string literal.
func appendString(dst []byte, s string) []byte {
	plain := true
	for i := range len(s) {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x7f || c == '<' || c == '>' || c == '&' {
			plain = false
			break
		}
	}
	if plain {
		dst = append(dst, '"')
		dst = append(dst, s...)
		return append(dst, '"')
	}
	b, _ := json.Marshal(s) // a string always marshals
	return append(dst, b...)
}

// appendCompact appends raw JSON with insignificant whitespace removed.
func appendCompact(dst, raw []byte) ([]byte, error) {
	// A fast path for values that hold no whitespace outside strings, which
	// is what compact submissions and everything this package writes hold.
	compact := true
	for i := 0; i < len(raw); i++ {
		if raw[i] == '"' {
			i = stringEnd(raw, i) - 1
			continue
		}
		if isSpace(raw[i]) {
			compact = false
			break
		}
	}
	if compact {
		return append(dst, raw...), nil
	}
	buf := bytes.NewBuffer(dst)
	if err := json.Compact(buf, raw); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// quoteIfName returns s quoted for a diagnostic if it looks like a name
// (letters, digits, '-', '.', '_', at most 64 bytes), and "" otherwise, so
// that diagnostics never echo arbitrary, possibly personal, input.
func quoteIfName(s string) string {
	if len(s) == 0 || len(s) > 64 {
		return ""
	}
	for i := range len(s) {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_') {
			return ""
		}
	}
	return strconv.Quote(s)
}
