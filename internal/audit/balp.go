package audit

import (
	"encoding/base64"
	"strings"
	"time"
)

// The FHIR R4 form of an event follows IHE Basic Audit Log Patterns (BALP):
// the profile and codes depend on the action and on whether a patient is
// involved; see BALP for the meaning of every slice. Codes we add beyond
// BALP (role, log kind, assurance, session) use zorgkluis systems.
const (
	balpProfile = "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit."

	sysEventType   = "http://terminology.hl7.org/CodeSystem/audit-event-type"
	sysRestful     = "http://hl7.org/fhir/restful-interaction"
	sysDCM         = "http://dicom.nema.org/resources/ontology/DCM"
	sysOutcome     = "http://terminology.hl7.org/CodeSystem/audit-event-outcome"
	sysActReason   = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
	sysParticipate = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
	sysEntityType  = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
	sysObjectRole  = "http://terminology.hl7.org/CodeSystem/object-role"
	sysSourceType  = "http://terminology.hl7.org/CodeSystem/security-source-type"
	sysLifecycle   = "http://terminology.hl7.org/CodeSystem/iso-21089-lifecycle"
	sysBALPEntity  = "https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType"
	sysSCT         = "http://snomed.info/sct"

	// SysRole is the code system of zorgkluis session roles.
	SysRole = "https://zorgkluis.nl/fhir/CodeSystem/role"
	// SysBasis is the code system of authorisation bases (NEN 7513
	// autorisatieProtocol); AuditEvent.agent.policy carries the basis itself.
	SysBasis = "https://zorgkluis.nl/fhir/CodeSystem/basis"

	extAssurance = "https://zorgkluis.nl/fhir/StructureDefinition/assurance-level"
	extSession   = "https://zorgkluis.nl/fhir/StructureDefinition/session-id"
	extKind      = "https://zorgkluis.nl/fhir/StructureDefinition/log-kind"
	// ExtMerged is the extension that counts the events a merged line of the
	// patient's view stands for (NEN 7513 ch. 9).
	ExtMerged = "https://zorgkluis.nl/fhir/StructureDefinition/merged-event-count"
)

// Coding is a FHIR Coding.
type Coding struct {
	System  string `json:"system,omitempty"`
	Code    string `json:"code"`
	Display string `json:"display,omitempty"`
}

// CodeableConcept is a FHIR CodeableConcept.
type CodeableConcept struct {
	Coding []Coding `json:"coding,omitempty"`
	Text   string   `json:"text,omitempty"`
}

// Identifier is a FHIR Identifier.
type Identifier struct {
	System string `json:"system,omitempty"`
	Value  string `json:"value"`
}

// Reference is a FHIR Reference.
type Reference struct {
	Reference  string      `json:"reference,omitempty"`
	Identifier *Identifier `json:"identifier,omitempty"`
	Display    string      `json:"display,omitempty"`
}

// Extension is a FHIR extension with a string, integer or boolean value.
type Extension struct {
	URL          string `json:"url"`
	ValueString  string `json:"valueString,omitempty"`
	ValueInteger *int   `json:"valueInteger,omitempty"`
}

// Period is a FHIR Period.
type Period struct {
	Start string `json:"start,omitempty"`
	End   string `json:"end,omitempty"`
}

// AuditEvent is a FHIR R4 AuditEvent as this server writes it.
type AuditEvent struct {
	ResourceType   string            `json:"resourceType"`
	ID             string            `json:"id,omitempty"`
	Meta           *Meta             `json:"meta,omitempty"`
	Extension      []Extension       `json:"extension,omitempty"`
	Type           Coding            `json:"type"`
	Subtype        []Coding          `json:"subtype,omitempty"`
	Action         string            `json:"action,omitempty"`
	Period         *Period           `json:"period,omitempty"`
	Recorded       string            `json:"recorded"`
	Outcome        string            `json:"outcome,omitempty"`
	OutcomeDesc    string            `json:"outcomeDesc,omitempty"`
	PurposeOfEvent []CodeableConcept `json:"purposeOfEvent,omitempty"`
	Agent          []Agent           `json:"agent"`
	Source         Source4           `json:"source"`
	Entity         []Entity          `json:"entity,omitempty"`
}

// Meta is the FHIR meta element: the BALP profile the event conforms to.
type Meta struct {
	Profile []string `json:"profile,omitempty"`
}

// Agent is AuditEvent.agent.
type Agent struct {
	Extension    []Extension       `json:"extension,omitempty"`
	Type         *CodeableConcept  `json:"type,omitempty"`
	Role         []CodeableConcept `json:"role,omitempty"`
	Who          *Reference        `json:"who,omitempty"`
	Name         string            `json:"name,omitempty"`
	Requestor    bool              `json:"requestor"`
	Policy       []string          `json:"policy,omitempty"`
	Network      *Network          `json:"network,omitempty"`
	PurposeOfUse []CodeableConcept `json:"purposeOfUse,omitempty"`
}

// Network is AuditEvent.agent.network.
type Network struct {
	Address string `json:"address"`
	Type    string `json:"type"`
}

// Source4 is AuditEvent.source (named so to keep Source for the request
// source of events).
type Source4 struct {
	Site     string    `json:"site,omitempty"`
	Observer Reference `json:"observer"`
	Type     []Coding  `json:"type,omitempty"`
}

// Entity is AuditEvent.entity.
type Entity struct {
	What        *Reference     `json:"what,omitempty"`
	Type        *Coding        `json:"type,omitempty"`
	Role        *Coding        `json:"role,omitempty"`
	Description string         `json:"description,omitempty"`
	Query       string         `json:"query,omitempty"` // base64 of the request, BALP entity[query]
	Detail      []EntityDetail `json:"detail,omitempty"`
}

// EntityDetail is AuditEvent.entity.detail.
type EntityDetail struct {
	Type        string `json:"type"`
	ValueString string `json:"valueString"`
}

// actionCode is the AuditEvent.action code of an action.
func actionCode(a Action) string {
	switch a {
	case ActionRead, ActionExport, ActionPrint, ActionCollect, ActionShare:
		return "R"
	case ActionCreate, ActionAssignID, ActionConsent:
		return "C"
	case ActionUpdate:
		return "U"
	case ActionDelete:
		return "D"
	}
	return "E"
}

// typeOf returns the event type, subtypes and, for successful events with
// a patient, the BALP profile (BALP profiles describe successes only).
func typeOf(e Event) (Coding, []Coding, string) {
	rest := Coding{System: sysEventType, Code: "rest", Display: "Restful Operation"}
	interaction := func(code string) []Coding { return []Coding{{System: sysRestful, Code: code, Display: code}} }
	patient := e.PatientID != ""
	pick := func(withPatient, without string) string {
		if patient {
			return withPatient
		}
		return without
	}
	switch e.Action {
	case ActionRead:
		return rest, interaction("read"), pick("PatientRead", "Read")
	case ActionSearch:
		return rest, interaction("search-type"), pick("PatientQuery", "Query")
	case ActionCreate, ActionAssignID, ActionConsent:
		return rest, interaction("create"), pick("PatientCreate", "Create")
	case ActionUpdate:
		return rest, interaction("update"), pick("PatientUpdate", "Update")
	case ActionDelete:
		return rest, interaction("delete"), pick("PatientDelete", "Delete")
	case ActionExport, ActionPrint, ActionCollect, ActionShare:
		prof := ""
		if patient {
			prof = "PrivacyDisclosure.Source"
		}
		return Coding{System: sysDCM, Code: "110106", Display: "Export"},
			[]Coding{{System: sysLifecycle, Code: "disclose", Display: "Disclose Record Lifecycle Event"}}, prof
	case ActionEmergency:
		return Coding{System: sysDCM, Code: "110113", Display: "Security Alert"},
			[]Coding{{System: sysDCM, Code: "110127", Display: "Emergency Override Started"}}, ""
	case ActionLogRead:
		return Coding{System: sysDCM, Code: "110101", Display: "Audit Log Used"}, nil, ""
	case ActionLogon:
		return Coding{System: sysDCM, Code: "110114", Display: "User Authentication"},
			[]Coding{{System: sysDCM, Code: "110122", Display: "Login"}}, ""
	}
	return Coding{System: sysDCM, Code: "110100", Display: "Application Activity"}, nil, ""
}

func outcomeCode(o Outcome) string {
	switch o {
	case OutcomeSuccess:
		return "0"
	case OutcomeDenied:
		return "4"
	}
	return "8"
}

func actReason(code string) CodeableConcept {
	return CodeableConcept{Coding: []Coding{{System: sysActReason, Code: code}}}
}

// purposes is the purpose of use, with BTG added for emergency access as
// BALP asks for break-the-glass.
func purposes(e Event) []CodeableConcept {
	var out []CodeableConcept
	if e.Purpose != "" {
		out = append(out, actReason(e.Purpose))
	}
	if e.Emergency {
		if e.Purpose != "ETREAT" {
			out = append(out, actReason("ETREAT"))
		}
		out = append(out, actReason("BTG"))
	}
	return out
}

// BasisKind is the rule of an event's basis ("care-relationship") without
// the id of its instance ("care-relationship:rel-1").
func BasisKind(basis string) string {
	k, _, _ := strings.Cut(basis, ":")
	return k
}

// ToAuditEvent maps an event to a FHIR R4 AuditEvent with the IHE BALP
// profile and codes: type and subtype per action, outcome, purposeOfUse
// (with BTG for emergency access), the user agent with role, name,
// assurance and the basis as policy, the organisation, the party on whose
// behalf the user acted, client and server agents, the patient and data
// entities, the query and the request id. server names this server (its
// base URL) as observer and destination. It is a pure function of its
// arguments.
func ToAuditEvent(e Event, server string) AuditEvent {
	typ, sub, profile := typeOf(e)
	ae := AuditEvent{
		ResourceType:   "AuditEvent",
		ID:             e.ID,
		Type:           typ,
		Subtype:        sub,
		Action:         actionCode(e.Action),
		Recorded:       e.Time.UTC().Format(time.RFC3339Nano),
		Outcome:        outcomeCode(e.Outcome),
		OutcomeDesc:    e.Reason,
		PurposeOfEvent: purposes(e),
		Source: Source4{
			Site:     e.Organisation,
			Observer: Reference{Display: server},
			Type:     []Coding{{System: sysSourceType, Code: "4", Display: "Application Server"}},
		},
	}
	if profile != "" && e.Outcome == OutcomeSuccess {
		ae.Meta = &Meta{Profile: []string{balpProfile + profile}}
	}
	if e.Kind != "" {
		ae.Extension = append(ae.Extension, Extension{URL: extKind, ValueString: string(e.Kind)})
	}
	ae.Agent = agents(e, server)
	ae.Entity = entities(e)
	return ae
}

func agents(e Event, server string) []Agent {
	user := Agent{
		Type:         &CodeableConcept{Coding: []Coding{{System: sysParticipate, Code: "IRCP", Display: "information recipient"}}},
		Requestor:    true,
		Name:         e.UserName,
		PurposeOfUse: purposes(e),
	}
	if e.UserID != "" || e.UserName != "" {
		user.Who = &Reference{Display: e.UserName}
		if e.UserID != "" {
			user.Who.Identifier = &Identifier{System: "https://zorgkluis.nl/fhir/NamingSystem/account", Value: e.UserID}
		}
	}
	if e.Role != "" {
		user.Role = append(user.Role, CodeableConcept{Coding: []Coding{{System: SysRole, Code: e.Role}}})
	}
	if e.OnBehalfOf != "" {
		user.Role = append(user.Role, CodeableConcept{Coding: []Coding{{System: sysSCT, Code: "429577009", Display: "Patient advocate"}}})
	}
	if e.Basis != "" {
		user.Policy = []string{e.Basis}
	}
	if e.Assurance != "" {
		user.Extension = append(user.Extension, Extension{URL: extAssurance, ValueString: e.Assurance})
	}
	if e.SessionID != "" {
		user.Extension = append(user.Extension, Extension{URL: extSession, ValueString: e.SessionID})
	}
	out := []Agent{user}
	if e.Organisation != "" || e.TenantID != "" {
		org := Agent{
			Type: &CodeableConcept{Coding: []Coding{{System: "http://terminology.hl7.org/CodeSystem/v3-RoleClass", Code: "PROV", Display: "healthcare provider"}}},
			Who:  &Reference{Display: e.Organisation},
		}
		if e.TenantID != "" {
			org.Who.Identifier = &Identifier{System: "https://zorgkluis.nl/fhir/NamingSystem/tenant", Value: e.TenantID}
		}
		out = append(out, org)
	}
	if e.OnBehalfOf != "" {
		// The patient a representative acted for is the party responsible
		// for the request (NEN 7513: the responsible user on whose behalf).
		out = append(out, Agent{
			Type: &CodeableConcept{Coding: []Coding{{System: sysParticipate, Code: "RESP", Display: "responsible party"}}},
			Who:  &Reference{Reference: "Patient/" + e.OnBehalfOf},
		})
	}
	// BALP: for a read the server is the source of the data and the client
	// its destination; for queries and writes the other way round.
	clientRole, serverRole := Coding{System: sysDCM, Code: "110153", Display: "Source Role ID"}, Coding{System: sysDCM, Code: "110152", Display: "Destination Role ID"}
	if actionCode(e.Action) == "R" {
		clientRole, serverRole = serverRole, clientRole
	}
	if e.SourceAddr != "" || e.SourceApp != "" || e.Device != "" {
		client := Agent{Type: &CodeableConcept{Coding: []Coding{clientRole}}, Who: &Reference{Display: firstNonEmpty(e.Device, e.SourceApp, e.SourceAddr)}}
		if e.SourceAddr != "" {
			client.Network = &Network{Address: e.SourceAddr, Type: "2"}
		}
		out = append(out, client)
	}
	out = append(out, Agent{Type: &CodeableConcept{Coding: []Coding{serverRole}}, Who: &Reference{Display: server},
		Network: &Network{Address: server, Type: "5"}})
	return out
}

func entities(e Event) []Entity {
	var out []Entity
	if e.PatientID != "" {
		p := Entity{
			What: &Reference{Reference: "Patient/" + e.PatientID},
			Type: &Coding{System: sysEntityType, Code: "1", Display: "Person"},
			Role: &Coding{System: sysObjectRole, Code: "1", Display: "Patient"},
		}
		if e.Emergency && e.EmergencyReason != "" {
			p.Detail = append(p.Detail, EntityDetail{Type: "emergencyReason", ValueString: e.EmergencyReason})
		}
		out = append(out, p)
	}
	for _, ref := range e.Resources {
		out = append(out, Entity{
			What: &Reference{Reference: ref},
			Type: &Coding{System: sysEntityType, Code: "2", Display: "System Object"},
			Role: &Coding{System: sysObjectRole, Code: "4", Display: "Domain Resource"},
		})
	}
	if e.Query != "" {
		out = append(out, Entity{
			Type:        &Coding{System: sysEntityType, Code: "2", Display: "System Object"},
			Role:        &Coding{System: sysObjectRole, Code: "24", Display: "Query"},
			Description: e.Query,
			Query:       base64.StdEncoding.EncodeToString([]byte(e.Query)),
		})
	}
	if e.TraceID != "" {
		out = append(out, Entity{
			What: &Reference{Identifier: &Identifier{Value: e.TraceID}},
			Type: &Coding{System: sysBALPEntity, Code: "XrequestId", Display: "X-Request-Id"},
		})
	}
	return out
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

// EventURN names an event in a Bundle's fullUrl: urn:uuid: for the 128-bit
// hex ids the log assigns, a zorgkluis URN for anything else.
func EventURN(id string) string {
	if len(id) != 32 {
		return "urn:zorgkluis:event:" + id
	}
	return "urn:uuid:" + id[0:8] + "-" + id[8:12] + "-" + id[12:16] + "-" + id[16:20] + "-" + id[20:32]
}
