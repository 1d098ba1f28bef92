package audit

import (
	"bytes"
	"encoding/json"
	"errors"
)

// bodyFields are the raw JSON values (strings with their quotes) of the
// top-level members of an event body that have a column of their own; nil
// when the member is absent.
type bodyFields struct {
	id, time, action, outcome, kind, tenant, user, patient, emergency []byte
}

var errBadJSON = errors.New("event body is not a JSON object")

// scanFields extracts the indexed members from an event body without
// decoding the rest. Verify runs it on every event, so it allocates nothing
// and reads each byte once. It is exact for well-formed JSON; for anything
// else it returns an error or values that will not match the columns (and
// such a body has already failed its hash check).
func scanFields(b []byte, f *bodyFields) error {
	*f = bodyFields{}
	return scanMembers(b, f.slot)
}

// scanMembers walks the top-level members of a JSON object and stores the
// raw value of each member for which slot returns a destination.
func scanMembers(b []byte, slot func(key []byte) *[]byte) error {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return errBadJSON
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return nil
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return errBadJSON
		}
		kEnd, err := skipString(b, i)
		if err != nil {
			return err
		}
		key := b[i+1 : kEnd-1]
		i = skipSpace(b, kEnd)
		if i >= len(b) || b[i] != ':' {
			return errBadJSON
		}
		i = skipSpace(b, i+1)
		vEnd, err := skipValue(b, i)
		if err != nil {
			return err
		}
		if dst := slot(key); dst != nil {
			*dst = b[i:vEnd]
		}
		i = skipSpace(b, vEnd)
		if i >= len(b) {
			return errBadJSON
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			return nil
		default:
			return errBadJSON
		}
	}
}

func (f *bodyFields) slot(key []byte) *[]byte {
	switch string(key) { // no allocation: the compiler special-cases this
	case "id":
		return &f.id
	case "time":
		return &f.time
	case "action":
		return &f.action
	case "outcome":
		return &f.outcome
	case "kind":
		return &f.kind
	case "tenantId":
		return &f.tenant
	case "userId":
		return &f.user
	case "patientId":
		return &f.patient
	case "emergency":
		return &f.emergency
	}
	return nil
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index just past the string starting at b[i] == '"'.
// It jumps from quote to quote (bytes.IndexByte is vectorised): a quote
// ends the string unless an odd number of backslashes precede it.
func skipString(b []byte, i int) (int, error) {
	j := i + 1
	for {
		k := bytes.IndexByte(b[j:], '"')
		if k < 0 {
			return 0, errBadJSON
		}
		q := j + k
		n := 0
		for q-1-n > i && b[q-1-n] == '\\' {
			n++
		}
		if n%2 == 0 {
			return q + 1, nil
		}
		j = q + 1
	}
}

// skipValue returns the index just past the value starting at b[i].
func skipValue(b []byte, i int) (int, error) {
	if i >= len(b) {
		return 0, errBadJSON
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				end, err := skipString(b, j)
				if err != nil {
					return 0, err
				}
				j = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1, nil
				}
			}
		}
		return 0, errBadJSON
	default: // number, true, false, null
		j := i
		for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ']' && b[j] != ' ' && b[j] != '\n' && b[j] != '\t' && b[j] != '\r' {
			j++
		}
		if j == i {
			return 0, errBadJSON
		}
		return j, nil
	}
}

// jsonString returns the text of a raw JSON string value; ok is false when
// raw is not a string. An absent member (nil) is the empty string.
func jsonString(raw []byte) (s []byte, ok bool) {
	if raw == nil {
		return nil, true
	}
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return nil, false
	}
	if bytes.IndexByte(raw, '\\') < 0 {
		return raw[1 : len(raw)-1], true
	}
	var v string
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, false
	}
	return []byte(v), true
}
