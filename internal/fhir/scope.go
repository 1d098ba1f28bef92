package fhir

import (
	"fmt"
	"slices"
	"strings"
)

// Scope is one SMART App Launch 2 resource scope ("patient/Observation.rs"):
// the context (only "patient", the person's own or represented record, is
// served), the resource type or "*", and the permissions as a subset of
// "cruds" in that order. Version 1 forms ("patient/*.read") are accepted
// as their version 2 equivalents.
type Scope struct {
	Type  string // a record type or "*"
	Perms string // subset of "cruds", in order
}

// String is the scope in SMART v2 form.
func (s Scope) String() string { return "patient/" + s.Type + "." + s.Perms }

// ParseScope reads one SMART resource scope. Only patient scopes of the
// record types this server keeps are valid; user/ and system/ scopes and
// query-parameter qualifiers are refused.
func ParseScope(s string) (Scope, error) {
	rest, ok := strings.CutPrefix(s, "patient/")
	if !ok {
		return Scope{}, fmt.Errorf("scope %q: only patient/ scopes are served", s)
	}
	typ, perms, ok := strings.Cut(rest, ".")
	if !ok || typ == "" || strings.ContainsAny(perms, "?&=") {
		return Scope{}, fmt.Errorf("scope %q: want patient/<Type>.<permissions>", s)
	}
	if typ != "*" && (!Supported(typ) || Categories(&Resource{Type: typ})[0] == CategoryDirectory) {
		return Scope{}, fmt.Errorf("scope %q: %s is not a type of a patient's record here", s, typ)
	}
	switch perms {
	case "read":
		perms = "rs"
	case "write":
		perms = "cud"
	case "*":
		perms = "cruds"
	default:
		if perms == "" || !isOrderedSubset(perms, "cruds") {
			return Scope{}, fmt.Errorf("scope %q: permissions must be letters of \"cruds\" in that order", s)
		}
	}
	return Scope{Type: typ, Perms: perms}, nil
}

func isOrderedSubset(s, of string) bool {
	i := 0
	for _, c := range []byte(s) {
		j := strings.IndexByte(of[i:], c)
		if j < 0 {
			return false
		}
		i += j + 1
	}
	return true
}

// Allows reports whether s covers resource type typ with permission p
// (one of c, r, u, d, s).
func (s Scope) Allows(typ string, p byte) bool {
	return (s.Type == "*" || s.Type == typ) && strings.IndexByte(s.Perms, p) >= 0
}

// ScopesAllow reports whether any of the scope strings allows typ with p;
// strings that do not parse allow nothing.
func ScopesAllow(scopes []string, typ string, p byte) bool {
	for _, raw := range scopes {
		if sc, err := ParseScope(raw); err == nil && sc.Allows(typ, p) {
			return true
		}
	}
	return false
}

// ScopeCategories returns the general access categories the scopes reach
// with permission p, sorted: a type's own category, or every general
// category of a record for "*". Sensitive categories (a resource labelled
// mental health, say) are never reached through a scope: a person's app
// sees them only if consent ever names them, which it does not yet.
func ScopeCategories(scopes []string, p byte) []string {
	var out []string
	for _, raw := range scopes {
		sc, err := ParseScope(raw)
		if err != nil || strings.IndexByte(sc.Perms, p) < 0 {
			continue
		}
		if sc.Type == "*" {
			out = append(out, CategoryDemographics, CategoryClinical, CategoryMedication, CategoryAdministrative)
			continue
		}
		out = append(out, Categories(&Resource{Type: sc.Type})[0])
	}
	slices.Sort(out)
	return slices.Compact(out)
}
