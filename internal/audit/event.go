// Package audit owns the NEN 7513 access log.
//
// It promises:
//   - An event returned by Append or AppendIn (once the caller's transaction
//     commits) is durably stored (LOG-3); callers release health data only
//     after that.
//   - Every stored event becomes a leaf of its tenant's RFC 6962 Merkle tree
//     and is covered by the next signed checkpoint, typically within a second
//     (Sequence, RunSequencer). Verify recomputes every tree from the stored
//     events and names any edited, deleted, reordered or inserted event
//     (LOG-2); Proof and CheckProof give a single event an inclusion proof
//     that anyone with the public key can check.
//   - There is no code path that updates or deletes an event or its tree
//     position (on PostgreSQL the database refuses it too, with the grants
//     in docs/audit-proofs.md). Only the sequencing queue and checkpoints
//     older than the newest of their day are deleted, and, after their
//     retention (LOG-6), events by Purge: it marks the leaf purged and
//     deletes the row but keeps every hash, and Verify accepts a purged
//     position only when the checkpoint that first covered it is older
//     than the shortest retention. Legal holds (PlaceHold) keep lines
//     beyond it.
//
// The leaf of an event is its canonical JSON (Event.Canonical), exactly as
// stored in audit_events.body; the other columns of that table are copies
// for querying, and Verify checks them against the body.
package audit

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// Action is the NEN 7513 event type, with the FHIR AuditEvent action code it
// maps to in the comment.
type Action string

const (
	ActionRead      Action = "read"              // R
	ActionSearch    Action = "search"            // E, one event per patient in the results
	ActionCreate    Action = "create"            // C, create a record or add data
	ActionUpdate    Action = "update"            // U
	ActionDelete    Action = "delete"            // D
	ActionExport    Action = "export"            // R, copy to another system or medium
	ActionPrint     Action = "print"             // R
	ActionAssignID  Action = "assign-identifier" // C
	ActionEmergency Action = "emergency-access"  // E, emergency procedure started (break the glass)
	ActionLogRead   Action = "log-read"          // E, access to the log itself
	ActionConsent   Action = "consent"           // C, a person gives or withdraws consent for an exchange (LOG-8)
	ActionCollect   Action = "collect"           // R, a person collects data into their own app (LOG-8)
	ActionShare     Action = "share"             // R, a person shares data with another party (LOG-8)
	ActionLogon     Action = "logon"             // E, authentication events (technical log)
	ActionExchange  Action = "exchange"          // E, a step of a MedMij exchange (chain log); Query names the step
)

// ActionCertificate (E): a tenant's CA issued or revoked a certificate
// (DP-3). Resources names it ("Certificate/<serial>"), Query says what
// happened and the SHA-256 of its DER, so the tenant's tree proves every
// certificate ever issued for it.
const ActionCertificate Action = "certificate"

// ActionDevice (E): a step in a paired device's life (AUTH-7): pairing,
// authentication, a wrong PIN, the lock, the unlink and the wipe's
// acknowledgement. Query names the step, Device the device.
const ActionDevice Action = "device"

// ActionEvidence (E): a technical fact an auditor's control rests on,
// logged by the part of the system that established it (GOV-3): a restore
// test (backup), an `audit verify` run, the clock's offset (serve, from
// clockwatch), the security settings in force at start. Query is
// "<fact> <detail>", e.g. "restore-test ok backup-...", so that
// internal/compliance finds the newest of each and gives its inclusion
// proof.
const ActionEvidence Action = "evidence"

// The evidence facts: the first word of an ActionEvidence event's Query.
const (
	FactRestoreTest = "restore-test" // backup: a backup restored into a scratch database and checked
	FactAuditVerify = "audit-verify" // zorgkluis audit verify: every tree recomputed, every checkpoint checked
	FactClock       = "clock-offset" // serve: the clock's offset from NTP time (clockwatch)
	FactSettings    = "settings"     // serve: the security settings in force, at start
)

// Evidence returns base as the evidence event of fact: success when ok,
// failed otherwise, with detail after the fact's name in Query.
func Evidence(base Event, fact string, ok bool, detail string) Event {
	base.Action, base.Outcome, base.Query = ActionEvidence, OutcomeSuccess, fact+" "+detail
	if !ok {
		base.Outcome = OutcomeFailed
	}
	return base
}

// Outcome of the event.
type Outcome string

const (
	OutcomeSuccess Outcome = "success" // FHIR 0
	OutcomeDenied  Outcome = "denied"  // FHIR 4: refused by access control
	OutcomeFailed  Outcome = "failed"  // FHIR 8
)

// Kind is the log an event belongs to; retention is set per kind (LOG-6).
type Kind string

const (
	KindAccess    Kind = "access"    // NEN 7513 access log: kept at least 5 years
	KindTechnical Kind = "technical" // log-on and other technical events: default 1 year
	KindChain     Kind = "chain"     // MedMij chain log: 24 to 36 months, counts only afterwards
)

// KindOf returns the log kind of an action.
func KindOf(a Action) Kind {
	switch a {
	case ActionLogon:
		return KindTechnical
	case ActionExchange:
		return KindChain
	default:
		return KindAccess
	}
}

// Event is one line of the access log, with every field LOG-1 and NEN 7513
// ask for. The JSON form is canonical: it is what is stored and hashed.
type Event struct {
	ID      string    `json:"id"`
	Time    time.Time `json:"time"` // UTC, from the synchronised clock
	Action  Action    `json:"action"`
	Outcome Outcome   `json:"outcome"`
	Kind    Kind      `json:"kind,omitempty"` // filled from Action when empty

	// Who: the user, the session's role, the organisation, and on whose
	// behalf the user acted (representation).
	TenantID     string `json:"tenantId"` // the organisation; "" for platform events
	Organisation string `json:"organisation,omitempty"`
	UserID       string `json:"userId"`
	UserName     string `json:"userName,omitempty"`
	Role         string `json:"role,omitempty"`
	OnBehalfOf   string `json:"onBehalfOf,omitempty"`
	Assurance    string `json:"assurance,omitempty"`
	// PrincipalKind is the kind of credential holder (person, professional,
	// staff, system, device, app); Scopes what an OAuth token was granted
	// (empty for a session). Both are omitted when empty.
	PrincipalKind string   `json:"principalKind,omitempty"`
	Scopes        []string `json:"scopes,omitempty"`
	// Responsible is the natural person answerable for a principal that is
	// not one (a system's responsible account, ID-3), as "id name"; omitted
	// when empty.
	Responsible string `json:"responsible,omitempty"`

	// Why: the authorisation basis (NEN 7513 autorisatieProtocol /
	// behandelrelatieProtocol), purpose of use, emergency flag and reason.
	Basis           string `json:"basis,omitempty"`
	Purpose         string `json:"purpose,omitempty"`
	Emergency       bool   `json:"emergency"`
	EmergencyReason string `json:"emergencyReason,omitempty"`
	Reason          string `json:"reason,omitempty"` // why a request was denied or failed

	// What: the patient and the data touched.
	PatientID string   `json:"patientId,omitempty"`
	Resources []string `json:"resources,omitempty"` // "Type/id" or "Type/id/_history/v"
	Query     string   `json:"query,omitempty"`     // search parameters, for search events

	// Where from: application, device, network address, trace and session.
	SourceAddr string `json:"sourceAddr,omitempty"`
	SourceApp  string `json:"sourceApp,omitempty"`
	Device     string `json:"device,omitempty"`
	TraceID    string `json:"traceId,omitempty"`
	SessionID  string `json:"sessionId,omitempty"` // a hash prefix of the session, never the token
}

// Canonical returns the bytes that are stored and hashed for e.
func (e Event) Canonical() ([]byte, error) {
	e.Time = e.Time.UTC().Truncate(time.Microsecond)
	return json.Marshal(e)
}

// newID returns a 128-bit event id whose first 48 bits are the event time in
// milliseconds, so ids sort roughly by time: appends then land at the end of
// the primary-key index instead of all over it, which keeps group commits
// fast.
func newID(t time.Time, r io.Reader) (string, error) {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(t.UnixMilli())<<16)
	if _, err := io.ReadFull(r, b[6:]); err != nil {
		return "", fmt.Errorf("event id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// Source describes where a request came from; the HTTP layer puts it in the
// context so every event of the request carries it.
type Source struct {
	Addr      string
	App       string
	Device    string
	TraceID   string
	SessionID string
}

type sourceKey struct{}

// WithSource returns a context carrying s.
func WithSource(ctx context.Context, s Source) context.Context {
	return context.WithValue(ctx, sourceKey{}, s)
}

// SourceFrom returns the Source in ctx, if any.
func SourceFrom(ctx context.Context) Source {
	s, _ := ctx.Value(sourceKey{}).(Source)
	return s
}
