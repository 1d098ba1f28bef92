package access

import "slices"

// Kind is the kind of principal a Subject is. A session's kind follows from
// its role (KindOfRole); credentials that are not a person's session (an
// OAuth access token of an app, a system's client certificate, a paired
// device) carry their own kind.
type Kind string

const (
	KindPerson       Kind = "person"       // a patient or their representative
	KindProfessional Kind = "professional" // a care professional or assistant, and tenant roles based on them
	KindStaff        Kind = "staff"        // application admin, security officer, operator: manage and review, never treat
	KindSystem       Kind = "system"       // another system acting on its own behalf
	KindDevice       Kind = "device"       // a paired device
	KindApp          Kind = "app"          // an app acting for the account that authorised it
)

// KindOfRole is the kind of a session acting in role r. Tenant-defined roles
// are based on professional or assistant (ProposeRole allows nothing else),
// so every role that is not predefined is professional. A session that has
// not chosen a role yet has no kind.
func KindOfRole(r Role) Kind {
	switch r {
	case "":
		return ""
	case RolePerson:
		return KindPerson
	case RoleAppAdmin, RoleSecurityOfficer, RoleOperator:
		return KindStaff
	}
	return KindProfessional
}

// Subject is who asks: the account, the role it acts in, how well it was
// authenticated, and through what kind of credential. Its fields are
// unexported: a Subject is made by NewSubject, which only the principal
// package (the one place that turns a credential into a Subject) and this
// package call outside tests. Decide still checks that the account holds the
// role; the Subject only says what the credential claims.
type Subject struct {
	accountID    string
	name         string
	tenantID     string
	organisation string
	role         Role
	assurance    Level
	onBehalfOf   string
	kind         Kind
	clientID     string
	scopes       []string
	responsible  string
}

// SubjectSpec is what a credential says about its holder.
type SubjectSpec struct {
	AccountID    string
	Name         string
	TenantID     string
	Organisation string
	Role         Role
	Assurance    Level
	// OnBehalfOf names the patient a person represents in this session;
	// empty when the person acts for themself.
	OnBehalfOf string
	// Kind is derived from Role (KindOfRole) when empty.
	Kind Kind
	// ClientID and Scopes name the client a token was issued to and what it
	// was granted; both empty for a session.
	ClientID string
	Scopes   []string
	// Responsible is the account answerable for a system (ID-3), as
	// "id name"; empty for persons.
	Responsible string
}

// NewSubject returns the Subject spec describes. Only internal/principal
// and this package call it outside tests.
func NewSubject(spec SubjectSpec) Subject {
	kind := spec.Kind
	if kind == "" {
		kind = KindOfRole(spec.Role)
	}
	return Subject{accountID: spec.AccountID, name: spec.Name, tenantID: spec.TenantID, organisation: spec.Organisation,
		role: spec.Role, assurance: spec.Assurance, onBehalfOf: spec.OnBehalfOf, kind: kind,
		clientID: spec.ClientID, scopes: slices.Clone(spec.Scopes), responsible: spec.Responsible}
}
