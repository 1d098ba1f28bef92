package access

import "slices"

func (s Subject) AccountID() string    { return s.accountID }
func (s Subject) Name() string         { return s.name }
func (s Subject) TenantID() string     { return s.tenantID }
func (s Subject) Organisation() string { return s.organisation }
func (s Subject) Role() Role           { return s.role }
func (s Subject) Assurance() Level     { return s.assurance }

// OnBehalfOf names the patient a person represents in this session; empty
// when the person acts for themself.
func (s Subject) OnBehalfOf() string { return s.onBehalfOf }

// Kind is the kind of principal.
func (s Subject) Kind() Kind { return s.kind }

// ClientID names the client a token was issued to; empty for a session.
func (s Subject) ClientID() string { return s.clientID }

// Scopes lists what the token was granted; empty for a session.
func (s Subject) Scopes() []string { return slices.Clone(s.scopes) }

// Responsible is the account answerable for a system, as "id name".
func (s Subject) Responsible() string { return s.responsible }

// Spec returns what s was made from; a changed copy passed to NewSubject is
// the way to a subject that differs in one claim (a test at a lower
// assurance, say).
func (s Subject) Spec() SubjectSpec {
	return SubjectSpec{AccountID: s.accountID, Name: s.name, TenantID: s.tenantID, Organisation: s.organisation,
		Role: s.role, Assurance: s.assurance, OnBehalfOf: s.onBehalfOf, Kind: s.kind, ClientID: s.clientID, Scopes: slices.Clone(s.scopes), Responsible: s.responsible}
}
