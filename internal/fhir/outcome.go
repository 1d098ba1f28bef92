package fhir

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Issue severities (http://hl7.org/fhir/issue-severity).
const (
	SeverityFatal       = "fatal"
	SeverityError       = "error"
	SeverityWarning     = "warning"
	SeverityInformation = "information"
)

// Issue types (http://hl7.org/fhir/issue-type) this server uses.
const (
	CodeInvalid       = "invalid"       // content invalid against the specification or a profile
	CodeStructure     = "structure"     // wrong JSON structure or type
	CodeRequired      = "required"      // a required element is missing
	CodeValue         = "value"         // an element's value is not valid for its type
	CodeInvariant     = "invariant"     // a rule spanning elements fails
	CodeCodeInvalid   = "code-invalid"  // a code is not in its required value set
	CodeSecurity      = "security"      // a security rule was broken
	CodeLogin         = "login"         // the client must log in
	CodeForbidden     = "forbidden"     // the user may not do this
	CodeNotSupported  = "not-supported" // the request asks for something the server does not do
	CodeNotFound      = "not-found"     // the resource does not exist (or may not be known to exist)
	CodeDeleted       = "deleted"       // the resource existed but was deleted
	CodeConflict      = "conflict"      // a version conflict (If-Match) or duplicate
	CodeTooCostly     = "too-costly"    // the operation would take too many resources
	CodeThrottled     = "throttled"     // rate-limited
	CodeProcessing    = "processing"    // the request could not be processed
	CodeException     = "exception"     // an unexpected internal error
	CodeInformational = "informational" // nothing wrong; a message only
)

// Issue is one entry of an OperationOutcome. Expression names the element
// concerned in FHIRPath-like form, e.g. "Patient.identifier[0].value".
type Issue struct {
	Severity    string   `json:"severity"`
	Code        string   `json:"code"`
	Diagnostics string   `json:"diagnostics,omitempty"`
	Expression  []string `json:"expression,omitempty"`
}

// OperationOutcome is the FHIR R4 resource that reports errors and
// warnings. It always marshals with resourceType "OperationOutcome" and at
// least one issue, as R4 requires.
type OperationOutcome struct {
	ID    string
	Issue []Issue
}

// NewOutcome returns an OperationOutcome with the given issues.
func NewOutcome(issues ...Issue) *OperationOutcome {
	return &OperationOutcome{Issue: issues}
}

// Outcome returns an OperationOutcome with one issue.
func Outcome(severity, code, diagnostics string, expression ...string) *OperationOutcome {
	return NewOutcome(Issue{Severity: severity, Code: code, Diagnostics: diagnostics, Expression: expression})
}

// MarshalJSON writes the FHIR JSON form. An outcome without issues is
// written with one informational issue, since R4 requires issue 1..*.
func (o OperationOutcome) MarshalJSON() ([]byte, error) {
	issues := o.Issue
	if len(issues) == 0 {
		issues = []Issue{{Severity: SeverityInformation, Code: CodeInformational, Diagnostics: "no issues"}}
	}
	return json.Marshal(struct {
		ResourceType string  `json:"resourceType"`
		ID           string  `json:"id,omitempty"`
		Issue        []Issue `json:"issue"`
	}{"OperationOutcome", o.ID, issues})
}

// ValidationError is the error Parse and CheckPatientMatch return for a
// resource the server must reject. It carries at least one issue; the API
// answers it with 400 (or 422) and e.Outcome().
type ValidationError struct {
	Issues []Issue
}

// Error summarises the first issue and counts the rest.
func (e *ValidationError) Error() string {
	if len(e.Issues) == 0 {
		return "fhir: invalid resource"
	}
	var b strings.Builder
	b.WriteString("fhir: invalid resource: ")
	b.WriteString(e.Issues[0].Diagnostics)
	if n := len(e.Issues) - 1; n > 0 {
		fmt.Fprintf(&b, " (and %d more issue(s))", n)
	}
	return b.String()
}

// Outcome returns the OperationOutcome listing every issue.
func (e *ValidationError) Outcome() *OperationOutcome {
	return NewOutcome(e.Issues...)
}

// invalid returns a ValidationError with one error issue.
func invalid(code, expression, diagnostics string) *ValidationError {
	v := validator{}
	v.add(code, expression, diagnostics)
	return &ValidationError{Issues: v.issues}
}
