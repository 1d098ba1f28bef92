package audit

import (
	"encoding/base64"
	"encoding/json"
	"slices"
	"testing"
	"time"
)

// aeJSON is the decoded JSON of an AuditEvent, so the test checks what a
// FHIR client sees rather than the Go structs.
type aeJSON struct {
	ResourceType string
	ID           string
	Meta         struct{ Profile []string }
	Type         Coding
	Subtype      []Coding
	Action       string
	Recorded     string
	Outcome      string
	OutcomeDesc  string
	Extension    []Extension
	PurposeOf    []CodeableConcept `json:"purposeOfEvent"`
	Agent        []struct {
		Type         CodeableConcept
		Role         []CodeableConcept
		Who          *Reference
		Name         string
		Requestor    bool
		Policy       []string
		Network      *Network
		PurposeOfUse []CodeableConcept
	}
	Source struct {
		Site     string
		Observer Reference
	}
	Entity []struct {
		What        *Reference
		Type        *Coding
		Role        *Coding
		Query       string
		Description string
		Detail      []EntityDetail
	}
}

func mapped(t *testing.T, e Event) aeJSON {
	t.Helper()
	b, err := json.Marshal(ToAuditEvent(e, "https://zk.test"))
	if err != nil {
		t.Fatal(err)
	}
	var out aeJSON
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	return out
}

func hasCode(ccs []CodeableConcept, system, code string) bool {
	for _, cc := range ccs {
		for _, c := range cc.Coding {
			if c.System == system && c.Code == code {
				return true
			}
		}
	}
	return false
}

func (a aeJSON) agent(system, code string) int {
	for i, ag := range a.Agent {
		if hasCode([]CodeableConcept{ag.Type}, system, code) {
			return i
		}
	}
	return -1
}

func (a aeJSON) entity(system, code string) int {
	for i, en := range a.Entity {
		if en.Role != nil && en.Role.System == system && en.Role.Code == code {
			return i
		}
	}
	return -1
}

var balpTime = time.Date(2026, 5, 4, 10, 30, 0, 123000000, time.UTC)

// A read under a care relationship becomes a BALP PatientRead: rest/read,
// action R, outcome 0, the user agent (IRCP, requestor) with role, name,
// purposeOfUse and the basis as policy, the organisation, client and server
// agents the BALP way round for a read, the patient and data entities and
// the request id.
// REQ: LOG-1, LOG-5
func TestBALPRead(t *testing.T) {
	e := Event{ID: "0123456789abcdef0123456789abcdef", Time: balpTime, Action: ActionRead, Outcome: OutcomeSuccess, Kind: KindAccess,
		TenantID: "t-1", Organisation: "Praktijk A", UserID: "a-7", UserName: "Dr. Jansen", Role: "professional", Assurance: "hoog",
		Basis: "care-relationship:rel-9", Purpose: "TREAT", PatientID: "p-1", Resources: []string{"Observation/o-1"},
		SourceAddr: "192.0.2.4", SourceApp: "curl/8", TraceID: "req-12345678", SessionID: "s-abc"}
	a := mapped(t, e)
	if a.ResourceType != "AuditEvent" || a.ID != e.ID || a.Action != "R" || a.Outcome != "0" || a.Recorded != "2026-05-04T10:30:00.123Z" {
		t.Fatalf("header: %+v", a)
	}
	if a.Type.System != sysEventType || a.Type.Code != "rest" || len(a.Subtype) != 1 || a.Subtype[0].Code != "read" || a.Subtype[0].System != sysRestful {
		t.Fatalf("type: %+v %+v", a.Type, a.Subtype)
	}
	if !slices.Equal(a.Meta.Profile, []string{balpProfile + "PatientRead"}) {
		t.Fatalf("profile: %v", a.Meta.Profile)
	}
	if !hasCode(a.PurposeOf, sysActReason, "TREAT") {
		t.Fatalf("purposeOfEvent: %+v", a.PurposeOf)
	}
	u := a.agent(sysParticipate, "IRCP")
	if u < 0 {
		t.Fatalf("no user agent: %+v", a.Agent)
	}
	ua := a.Agent[u]
	if !ua.Requestor || ua.Name != "Dr. Jansen" || ua.Who == nil || ua.Who.Identifier == nil || ua.Who.Identifier.Value != "a-7" ||
		!hasCode(ua.Role, SysRole, "professional") || !slices.Equal(ua.Policy, []string{"care-relationship:rel-9"}) ||
		!hasCode(ua.PurposeOfUse, sysActReason, "TREAT") {
		t.Fatalf("user agent: %+v", ua)
	}
	if o := a.agent("http://terminology.hl7.org/CodeSystem/v3-RoleClass", "PROV"); o < 0 || a.Agent[o].Who.Display != "Praktijk A" || a.Agent[o].Who.Identifier.Value != "t-1" {
		t.Fatalf("organisation agent: %+v", a.Agent)
	}
	// Read: the client is the destination of the data, the server its source.
	cl, sv := a.agent(sysDCM, "110152"), a.agent(sysDCM, "110153")
	if cl < 0 || sv < 0 || a.Agent[cl].Network == nil || a.Agent[cl].Network.Address != "192.0.2.4" || a.Agent[sv].Network.Address != "https://zk.test" {
		t.Fatalf("client/server agents: %+v", a.Agent)
	}
	p := a.entity(sysObjectRole, "1")
	if p < 0 || a.Entity[p].What.Reference != "Patient/p-1" || a.Entity[p].Type.Code != "1" || a.Entity[p].Type.System != sysEntityType {
		t.Fatalf("patient entity: %+v", a.Entity)
	}
	d := a.entity(sysObjectRole, "4")
	if d < 0 || a.Entity[d].What.Reference != "Observation/o-1" || a.Entity[d].Type.Code != "2" {
		t.Fatalf("data entity: %+v", a.Entity)
	}
	found := false
	for _, en := range a.Entity {
		if en.Type != nil && en.Type.System == sysBALPEntity && en.Type.Code == "XrequestId" && en.What.Identifier.Value == "req-12345678" {
			found = true
		}
	}
	if !found || a.Source.Site != "Praktijk A" || a.Source.Observer.Display != "https://zk.test" {
		t.Fatalf("request id / source: %+v %+v", a.Entity, a.Source)
	}
}

// A search is a BALP PatientQuery (action E, search-type) with the request
// base64-encoded in entity[query] (role 24); the client is the source.
// REQ: LOG-1, LOG-5
func TestBALPQuery(t *testing.T) {
	e := Event{ID: "0123456789abcdef0123456789abcdef", Time: balpTime, Action: ActionSearch, Outcome: OutcomeSuccess,
		UserID: "a-7", PatientID: "p-1", Query: "Observation?patient=p-1&code=8867-4", SourceAddr: "192.0.2.4", Purpose: "TREAT"}
	a := mapped(t, e)
	if a.Action != "E" || a.Subtype[0].Code != "search-type" || !slices.Equal(a.Meta.Profile, []string{balpProfile + "PatientQuery"}) {
		t.Fatalf("query: %+v", a)
	}
	q := a.entity(sysObjectRole, "24")
	if q < 0 {
		t.Fatalf("no query entity: %+v", a.Entity)
	}
	raw, err := base64.StdEncoding.DecodeString(a.Entity[q].Query)
	if err != nil || string(raw) != e.Query {
		t.Fatalf("query entity: %q %v", raw, err)
	}
	if a.agent(sysDCM, "110153") < 0 || a.Agent[a.agent(sysDCM, "110153")].Network.Address != "192.0.2.4" {
		t.Fatalf("client must be the source role for a query: %+v", a.Agent)
	}
}

// Emergency access: the declaration is a DICOM Security Alert / Emergency
// Override Started; every event under it carries purposeOfUse ETREAT and
// BTG and the reason on the patient entity.
// REQ: LOG-1, LOG-9
func TestBALPEmergency(t *testing.T) {
	decl := mapped(t, Event{ID: "0123456789abcdef0123456789abcdef", Time: balpTime, Action: ActionEmergency, Outcome: OutcomeSuccess,
		UserID: "a-7", PatientID: "p-1", Emergency: true, EmergencyReason: "collapsed", Purpose: "ETREAT"})
	if decl.Type.System != sysDCM || decl.Type.Code != "110113" || len(decl.Subtype) != 1 || decl.Subtype[0].Code != "110127" || len(decl.Meta.Profile) != 0 {
		t.Fatalf("declaration: %+v %+v %v", decl.Type, decl.Subtype, decl.Meta.Profile)
	}
	read := mapped(t, Event{ID: "0123456789abcdef0123456789abcdef", Time: balpTime, Action: ActionRead, Outcome: OutcomeSuccess,
		UserID: "a-7", PatientID: "p-1", Emergency: true, EmergencyReason: "collapsed", Purpose: "ETREAT", Basis: "emergency:em-1"})
	u := read.Agent[read.agent(sysParticipate, "IRCP")]
	for _, code := range []string{"ETREAT", "BTG"} {
		if !hasCode(read.PurposeOf, sysActReason, code) || !hasCode(u.PurposeOfUse, sysActReason, code) {
			t.Fatalf("purpose %s missing: %+v / %+v", code, read.PurposeOf, u.PurposeOfUse)
		}
	}
	p := read.Entity[read.entity(sysObjectRole, "1")]
	if len(p.Detail) != 1 || p.Detail[0].ValueString != "collapsed" {
		t.Fatalf("reason: %+v", p.Detail)
	}
}

// A denial is outcome 4 with the reason and claims no BALP profile (BALP
// profiles describe successes); a representative's access names the
// represented patient as responsible party and the user as patient
// advocate; access to the log is DICOM Audit Log Used.
// REQ: LOG-1, LOG-5
func TestBALPDenialRepresentationLogRead(t *testing.T) {
	den := mapped(t, Event{ID: "0123456789abcdef0123456789abcdef", Time: balpTime, Action: ActionRead, Outcome: OutcomeDenied,
		UserID: "a-7", PatientID: "p-1", Reason: "no care relationship"})
	if den.Outcome != "4" || den.OutcomeDesc != "no care relationship" || len(den.Meta.Profile) != 0 {
		t.Fatalf("denial: %+v", den)
	}
	rep := mapped(t, Event{ID: "0123456789abcdef0123456789abcdef", Time: balpTime, Action: ActionRead, Outcome: OutcomeSuccess,
		UserID: "a-8", Role: "person", PatientID: "p-2", OnBehalfOf: "p-2", Basis: "representation:rep-1", Purpose: "PATRQT"})
	r := rep.agent(sysParticipate, "RESP")
	if r < 0 || rep.Agent[r].Who.Reference != "Patient/p-2" || !hasCode(rep.Agent[rep.agent(sysParticipate, "IRCP")].Role, sysSCT, "429577009") {
		t.Fatalf("on behalf of: %+v", rep.Agent)
	}
	lr := mapped(t, Event{ID: "0123456789abcdef0123456789abcdef", Time: balpTime, Action: ActionLogRead, Outcome: OutcomeSuccess, UserID: "a-9"})
	if lr.Type.Code != "110101" || lr.Action != "E" {
		t.Fatalf("log read: %+v", lr.Type)
	}
	if f := mapped(t, Event{ID: "x", Time: balpTime, Action: ActionCreate, Outcome: OutcomeFailed}); f.Outcome != "8" || f.Action != "C" {
		t.Fatalf("failure: %+v", f)
	}
}

// A person's consent is a create; collecting data into their own app and
// sharing it are disclosures (DICOM Export, ISO 21089 disclose) with the
// BALP PrivacyDisclosure.Source profile.
// REQ: LOG-8
func TestBALPPersonExchangeActions(t *testing.T) {
	consent := mapped(t, Event{ID: "c", Time: balpTime, Action: ActionConsent, Outcome: OutcomeSuccess, UserID: "a-8", PatientID: "p-1", Purpose: "PATRQT"})
	if consent.Action != "C" || consent.Subtype[0].Code != "create" || !slices.Equal(consent.Meta.Profile, []string{balpProfile + "PatientCreate"}) {
		t.Fatalf("consent: %+v", consent)
	}
	for _, a := range []Action{ActionCollect, ActionShare, ActionExport} {
		d := mapped(t, Event{ID: "d", Time: balpTime, Action: a, Outcome: OutcomeSuccess, UserID: "a-8", PatientID: "p-1", Purpose: "PATRQT"})
		if d.Action != "R" || d.Type.System != sysDCM || d.Type.Code != "110106" || len(d.Subtype) != 1 || d.Subtype[0].Code != "disclose" ||
			!slices.Equal(d.Meta.Profile, []string{balpProfile + "PrivacyDisclosure.Source"}) || !hasCode(d.PurposeOf, sysActReason, "PATRQT") {
			t.Fatalf("%s: %+v", a, d)
		}
	}
}
