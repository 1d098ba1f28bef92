package compliance

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/alert"
	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/keys"
	"github.com/zorgkluis/zorgkluis/internal/store"
)

// Entry is what a tenant says about one control.
type Entry struct {
	ControlID     string     `json:"control_id"`
	Applicable    bool       `json:"applicable"`
	Justification string     `json:"justification,omitempty"` // why not applicable
	AuditMethod   string     `json:"audit_method,omitempty"`
	Responsible   string     `json:"responsible,omitempty"`
	Notes         string     `json:"notes,omitempty"`
	LastDone      *time.Time `json:"last_done_at,omitempty"`
	UpdatedBy     string     `json:"updated_by,omitempty"`
	Updated       *time.Time `json:"updated_at,omitempty"`
	Documents     []Document `json:"documents"`
}

// Document is an evidence document attached to a control (its content is
// sealed; Document returns it).
type Document struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	ContentType string    `json:"content_type"`
	Size        int64     `json:"size"`
	SHA256      string    `json:"sha256"`
	UploadedBy  string    `json:"uploaded_by"`
	Uploaded    time.Time `json:"uploaded_at"`
}

// Update is an edit of a control's entry; nil fields stay as they are.
type Update struct {
	Applicable    *bool
	Justification *string
	AuditMethod   *string
	Responsible   *string
	Notes         *string
	// Done records that a periodic control was carried out at this time
	// (a penetration test, a self-assessment): its next due date follows.
	Done *time.Time
}

// entries reads the tenant's entries, by control id, with their documents.
func (s *Service) entries(ctx context.Context, tenantID string) (map[string]Entry, error) {
	out := map[string]Entry{}
	rows, err := s.c.DB.QueryContext(ctx, `SELECT control_id, applicable, justification, audit_method, responsible, notes, last_done_at, updated_by, updated_at
		FROM compliance_controls WHERE tenant_id = $1`, tenantID)
	if err != nil {
		return nil, fmt.Errorf("controls register: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var e Entry
		var done sql.NullInt64
		var updated int64
		if err := rows.Scan(&e.ControlID, &e.Applicable, &e.Justification, &e.AuditMethod, &e.Responsible, &e.Notes, &done, &e.UpdatedBy, &updated); err != nil {
			return nil, fmt.Errorf("controls register: %w", err)
		}
		if done.Valid {
			t := clock.FromMicros(done.Int64)
			e.LastDone = &t
		}
		u := clock.FromMicros(updated)
		e.Updated = &u
		out[e.ControlID] = e
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("controls register: %w", err)
	}
	drows, err := s.c.DB.QueryContext(ctx, `SELECT id, control_id, name, content_type, size, sha256, uploaded_by, uploaded_at FROM compliance_documents
		WHERE tenant_id = $1 ORDER BY uploaded_at`, tenantID)
	if err != nil {
		return nil, fmt.Errorf("controls register: %w", err)
	}
	defer drows.Close()
	for drows.Next() {
		var d Document
		var control string
		var at int64
		if err := drows.Scan(&d.ID, &control, &d.Name, &d.ContentType, &d.Size, &d.SHA256, &d.UploadedBy, &at); err != nil {
			return nil, fmt.Errorf("controls register: %w", err)
		}
		d.Uploaded = clock.FromMicros(at)
		e, ok := out[control]
		if !ok {
			e = Entry{ControlID: control, Applicable: true}
		}
		e.Documents = append(e.Documents, d)
		out[control] = e
	}
	return out, drows.Err()
}

// Register returns every control with the tenant's entry (a control never
// edited is applicable, with nothing said yet).
func (s *Service) Register(ctx context.Context, actor access.Subject) ([]Control, map[string]Entry, error) {
	if err := officerOrAdmin(actor); err != nil {
		return nil, nil, err
	}
	es, err := s.entries(ctx, actor.TenantID())
	return s.controls, es, err
}

// Entry returns one control and the tenant's entry for it.
func (s *Service) Entry(ctx context.Context, actor access.Subject, controlID string) (Control, Entry, error) {
	if err := officerOrAdmin(actor); err != nil {
		return Control{}, Entry{}, err
	}
	c, ok := s.byID[controlID]
	if !ok {
		return Control{}, Entry{}, ErrNotFound
	}
	es, err := s.entries(ctx, actor.TenantID())
	if err != nil {
		return Control{}, Entry{}, err
	}
	e, ok := es[controlID]
	if !ok {
		e = Entry{ControlID: controlID, Applicable: true}
	}
	if e.Documents == nil {
		e.Documents = []Document{}
	}
	return c, e, nil
}

// UpdateEntry edits the tenant's entry of a control, in the access log.
func (s *Service) UpdateEntry(ctx context.Context, actor access.Subject, controlID string, u Update) (Entry, error) {
	if err := officerOrAdmin(actor); err != nil {
		return Entry{}, err
	}
	if _, ok := s.byID[controlID]; !ok {
		return Entry{}, ErrNotFound
	}
	for _, f := range []struct {
		name string
		v    *string
		max  int
	}{{"justification", u.Justification, 2000}, {"audit_method", u.AuditMethod, 2000}, {"responsible", u.Responsible, 200}, {"notes", u.Notes, 4000}} {
		if f.v != nil {
			if err := text(f.name, *f.v, f.max); err != nil {
				return Entry{}, err
			}
		}
	}
	now := s.c.Clock.Now()
	if u.Done != nil && u.Done.After(now) {
		return Entry{}, &InvalidError{Field: "done", Reason: "not in the future"}
	}
	err := s.c.DB.Tx(ctx, func(tx *store.Tx) error {
		if err := ensureRow(ctx, tx, actor.TenantID(), controlID, actor.AccountID(), now); err != nil {
			return err
		}
		var sets []string
		args := []any{actor.TenantID(), controlID, actor.AccountID(), clock.Micros(now)}
		set := func(col string, v any) {
			args = append(args, v)
			sets = append(sets, fmt.Sprintf("%s = $%d", col, len(args)))
		}
		if u.Applicable != nil {
			set("applicable", *u.Applicable)
		}
		for _, f := range []struct {
			col string
			v   *string
		}{{"justification", u.Justification}, {"audit_method", u.AuditMethod}, {"responsible", u.Responsible}, {"notes", u.Notes}} {
			if f.v != nil {
				set(f.col, *f.v)
			}
		}
		if u.Done != nil {
			set("last_done_at", clock.Micros(*u.Done))
		}
		q := `UPDATE compliance_controls SET updated_by = $3, updated_at = $4`
		if len(sets) > 0 {
			q += ", " + strings.Join(sets, ", ")
		}
		if _, err := tx.ExecContext(ctx, q+` WHERE tenant_id = $1 AND control_id = $2`, args...); err != nil {
			return fmt.Errorf("update control: %w", err)
		}
		what := "control " + controlID + " updated"
		if u.Done != nil {
			what += ", done " + u.Done.UTC().Format(time.RFC3339)
		}
		_, err := s.c.Audit.AppendIn(ctx, tx, event(actor, "Control/"+controlID, what))
		return err
	})
	if err != nil {
		return Entry{}, err
	}
	_, e, err := s.Entry(ctx, actor, controlID)
	return e, err
}

func ensureRow(ctx context.Context, q store.Querier, tenantID, controlID, by string, now time.Time) error {
	var n int
	if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM compliance_controls WHERE tenant_id = $1 AND control_id = $2`, tenantID, controlID).Scan(&n); err != nil {
		return fmt.Errorf("controls register: %w", err)
	}
	if n > 0 {
		return nil
	}
	_, err := q.ExecContext(ctx, `INSERT INTO compliance_controls (tenant_id, control_id, updated_by, updated_at) VALUES ($1, $2, $3, $4)`,
		tenantID, controlID, by, clock.Micros(now))
	if err != nil && !store.IsUniqueViolation(err) {
		return fmt.Errorf("controls register: %w", err)
	}
	return nil
}

// MaxDocument is the largest evidence document accepted.
const MaxDocument = 5 << 20

// documentsKey names the tenant's data key for evidence documents: a key
// under the tenant's key like a patient's, under an id no patient has
// (patient ids never begin with "~").
const documentsKey = "~compliance-documents"

// ErrTooLarge and ErrContentType refuse an upload.
var (
	ErrTooLarge    = fmt.Errorf("compliance: a document is at most %d bytes", MaxDocument)
	ErrContentType = errors.New("compliance: a document is a PDF, an Office or OpenDocument file, or a PNG, JPEG, GIF or WebP image, and its content must be what its name says")
)

// Attach stores an evidence document for a control: at most MaxDocument
// bytes, its type sniffed from the content and matched with the name's
// extension (an executable named .pdf is refused), sealed with the tenant's
// key, in the access log with its SHA-256.
func (s *Service) Attach(ctx context.Context, actor access.Subject, controlID, name string, r io.Reader) (Document, error) {
	if err := officerOrAdmin(actor); err != nil {
		return Document{}, err
	}
	if _, ok := s.byID[controlID]; !ok {
		return Document{}, ErrNotFound
	}
	name = path.Base(strings.ReplaceAll(strings.TrimSpace(name), `\`, "/"))
	if name == "" || name == "." || name == "/" {
		return Document{}, &InvalidError{Field: "name", Reason: "required"}
	}
	if err := text("name", name, 200); err != nil {
		return Document{}, err
	}
	body, err := io.ReadAll(io.LimitReader(r, MaxDocument+1))
	if err != nil {
		return Document{}, fmt.Errorf("read document: %w", err)
	}
	if len(body) > MaxDocument {
		return Document{}, ErrTooLarge
	}
	ct, err := Sniff(name, body)
	if err != nil {
		return Document{}, err
	}
	id, err := s.newID("doc-")
	if err != nil {
		return Document{}, err
	}
	sum := sha256.Sum256(body)
	h := hex.EncodeToString(sum[:])
	// Sealed before the write transaction: the first seal may create the
	// tenant's documents key, a write of its own.
	sealed, err := s.c.Keys.Seal(ctx, actor.TenantID(), documentsKey, body, keys.DocumentAD(actor.TenantID(), id, h))
	if err != nil {
		return Document{}, fmt.Errorf("seal document: %w", err)
	}
	now := s.c.Clock.Now()
	d := Document{ID: id, Name: name, ContentType: ct, Size: int64(len(body)), SHA256: h, UploadedBy: actor.AccountID(), Uploaded: now}
	err = s.c.DB.Tx(ctx, func(tx *store.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO compliance_documents (id, tenant_id, control_id, name, content_type, size, sha256, sealed, uploaded_by, uploaded_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`, id, actor.TenantID(), controlID, name, ct, d.Size, h, sealed, actor.AccountID(), clock.Micros(now)); err != nil {
			return fmt.Errorf("store document: %w", err)
		}
		_, err := s.c.Audit.AppendIn(ctx, tx, event(actor, "Control/"+controlID, fmt.Sprintf("evidence document %s attached: %s, %d bytes, sha256 %s", id, ct, d.Size, h)))
		return err
	})
	if err != nil {
		return Document{}, err
	}
	return d, nil
}

// Document returns an evidence document's metadata and content, opened
// with the tenant's key and checked against its SHA-256.
func (s *Service) Document(ctx context.Context, actor access.Subject, id string) (Document, []byte, error) {
	if err := officerOrAdmin(actor); err != nil {
		return Document{}, nil, err
	}
	var d Document
	var sealed []byte
	var at int64
	err := s.c.DB.QueryRowContext(ctx, `SELECT id, name, content_type, size, sha256, sealed, uploaded_by, uploaded_at FROM compliance_documents
		WHERE id = $1 AND tenant_id = $2`, id, actor.TenantID()).Scan(&d.ID, &d.Name, &d.ContentType, &d.Size, &d.SHA256, &sealed, &d.UploadedBy, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return Document{}, nil, ErrNotFound
	}
	if err != nil {
		return Document{}, nil, fmt.Errorf("read document: %w", err)
	}
	d.Uploaded = clock.FromMicros(at)
	body, err := s.c.Keys.Open(ctx, actor.TenantID(), documentsKey, sealed, keys.DocumentAD(actor.TenantID(), d.ID, d.SHA256))
	if err != nil {
		return Document{}, nil, fmt.Errorf("open document: %w", err)
	}
	if sum := sha256.Sum256(body); hex.EncodeToString(sum[:]) != d.SHA256 {
		return Document{}, nil, fmt.Errorf("document %s: content does not match its hash", id)
	}
	// Who opened which evidence is in the log, durably, before the
	// content leaves (LOG-3), as its upload is.
	ev := event(actor, "DocumentReference/"+d.ID, "evidence document "+d.ID+" opened, sha256 "+d.SHA256)
	ev.Action = audit.ActionRead
	if _, err := s.c.Audit.Append(ctx, ev); err != nil {
		return Document{}, nil, fmt.Errorf("document %s: access log: %w", id, err)
	}
	return d, body, nil
}

// types maps an accepted extension to the content type its content must
// sniff as.
var types = map[string]string{
	".pdf":  "application/pdf",
	".png":  "image/png",
	".jpg":  "image/jpeg",
	".jpeg": "image/jpeg",
	".gif":  "image/gif",
	".webp": "image/webp",
	".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
	".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
	".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
	".odt":  "application/vnd.oasis.opendocument.text",
	".ods":  "application/vnd.oasis.opendocument.spreadsheet",
	".odp":  "application/vnd.oasis.opendocument.presentation",
	".doc":  "application/msword",
	".xls":  "application/vnd.ms-excel",
	".ppt":  "application/vnd.ms-powerpoint",
}

// ooxmlDir is the directory an OOXML package of each type keeps its main
// part in.
var ooxmlDir = map[string]string{".docx": "word/", ".xlsx": "xl/", ".pptx": "ppt/"}

var oleMagic = []byte{0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1}

// Sniff returns the content type of an evidence document from its content,
// which must agree with the extension of name; anything else is
// ErrContentType.
func Sniff(name string, body []byte) (string, error) {
	ext := strings.ToLower(path.Ext(name))
	want, ok := types[ext]
	if !ok || len(body) == 0 {
		return "", ErrContentType
	}
	switch ext {
	case ".docx", ".xlsx", ".pptx":
		if !zipHas(body, func(f *zip.File) bool { return f.Name == "[Content_Types].xml" }) ||
			!zipHas(body, func(f *zip.File) bool { return strings.HasPrefix(f.Name, ooxmlDir[ext]) }) {
			return "", ErrContentType
		}
	case ".odt", ".ods", ".odp":
		// An OpenDocument package names its type in a first, stored entry.
		if !bytes.HasPrefix(body, []byte("PK\x03\x04")) || len(body) < 38+len(want) || string(body[30:38]) != "mimetype" || string(body[38:38+len(want)]) != want {
			return "", ErrContentType
		}
	case ".doc", ".xls", ".ppt":
		if !bytes.HasPrefix(body, oleMagic) {
			return "", ErrContentType
		}
	default:
		if http.DetectContentType(body) != want {
			return "", ErrContentType
		}
	}
	return want, nil
}

func zipHas(body []byte, match func(*zip.File) bool) bool {
	zr, err := zip.NewReader(bytes.NewReader(body), int64(len(body)))
	if err != nil {
		return false
	}
	for _, f := range zr.File {
		if match(f) {
			return true
		}
	}
	return false
}

// Due is a periodic control's next due date from the last time it was done
// (zero last: due now, never done).
func Due(period string, last, now time.Time) time.Time {
	if last.IsZero() {
		return now
	}
	return last.Add(periods[period])
}

// Remind raises a "control-due" security event for every applicable
// periodic control of every tenant with a register or a review that is due
// within RemindBefore or overdue, once per due date. It returns how many
// it raised.
func (s *Service) Remind(ctx context.Context) (int, error) {
	rows, err := s.c.DB.QueryContext(ctx, `SELECT id FROM tenants`)
	if err != nil {
		return 0, fmt.Errorf("control reminders: %w", err)
	}
	var tenants []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, fmt.Errorf("control reminders: %w", err)
		}
		tenants = append(tenants, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("control reminders: %w", err)
	}
	now := s.c.Clock.Now()
	facts, err := s.facts(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, t := range tenants {
		es, err := s.entries(ctx, t)
		if err != nil {
			return n, err
		}
		ev, err := s.tenantEvidence(ctx, t, facts, false)
		if err != nil {
			return n, err
		}
		for _, c := range s.controls {
			e, ok := es[c.ID]
			if c.Period == "" || (ok && !e.Applicable) {
				continue
			}
			due := Due(c.Period, lastDone(c, e, ev), now)
			if due.Sub(now) > RemindBefore {
				continue
			}
			raised, err := s.remindOnce(ctx, t, c, due, now)
			if err != nil {
				return n, err
			}
			if raised {
				n++
			}
		}
	}
	return n, nil
}

// remindOnce raises the reminder of one due date unless it was raised for
// it already (reminded_at at or after the due date's reminder window).
func (s *Service) remindOnce(ctx context.Context, tenant string, c Control, due, now time.Time) (bool, error) {
	raised := false
	err := s.c.DB.Tx(ctx, func(tx *store.Tx) error {
		if err := ensureRow(ctx, tx, tenant, c.ID, "system:compliance", now); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `UPDATE compliance_controls SET reminded_at = $1 WHERE tenant_id = $2 AND control_id = $3
			AND (reminded_at IS NULL OR reminded_at < $4)`, clock.Micros(now), tenant, c.ID, clock.Micros(due.Add(-RemindBefore)))
		if err != nil {
			return fmt.Errorf("control reminder: %w", err)
		}
		if k, _ := res.RowsAffected(); k == 0 {
			return nil
		}
		raised = true
		if s.c.Alerts == nil {
			return nil
		}
		detail := fmt.Sprintf("%s %s (%s) is due %s", c.Ref, c.Title, c.Period, due.UTC().Format("2006-01-02"))
		if !due.After(now) {
			detail = fmt.Sprintf("%s %s (%s) is overdue since %s", c.Ref, c.Title, c.Period, due.UTC().Format("2006-01-02"))
		}
		_, err = s.c.Alerts.Raise(ctx, tx, alert.Entry{TenantID: tenant, Kind: "control-due", AccountID: "system:compliance", Ref: c.ID, Detail: detail})
		return err
	})
	return raised, err
}
