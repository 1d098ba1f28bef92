package web

import (
	"context"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"

	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/identity"
	"github.com/zorgkluis/zorgkluis/internal/nlid"
)

// The security officer's log search (LOG-5): by the patient's BSN and the
// user's user name, the words an officer has from a complaint or an
// incident, never by internal ids. The BSN is POSTed and resolved through
// its blind index to the patient's opaque id, which is all the search's URL
// and its own log line carry; the results name patients (by their person
// account, else by the name record keeps, given for the lines the reading
// released) and bases, actions and outcomes in words.

type auditData struct {
	Patient, User, Action, From, To, Emergency string
	// PatientName names the patient searched for; "" when unknown.
	PatientName string
	Actions     []audit.Action
	Events      []audit.Event
	// Names are the patients' names by id (patientNames): the person
	// account's, else record's display name; absent when there is none.
	Names map[string]string
	// AnyEmergency is set when a result line used emergency access: the
	// emergency column is shown only then.
	AnyEmergency bool
	Searched     bool
	Problem      string       // a locale key: why the search could not run
	Query        template.URL // the filter as an encoded query string, for the links
	AllPatients  template.URL // the same search without the patient
	Next         string       // cursor of the next page
}

// auditPageSize is the number of lines one search page shows.
const auditPageSize = 200

// auditFilter reads the search: patient (an opaque id, set by a BSN
// lookup), user (a user name of the organisation or a platform operator),
// period (Dutch days, to inclusive), action and emergency. Values that do
// not parse are dropped from the filter and the form alike, so what is
// shown is what was searched; a user name nobody has sets Problem.
func (s *server) auditFilter(ctx context.Context, c *sessionCtx, q url.Values) (audit.Search, auditData, error) {
	d := auditData{Patient: strings.TrimSpace(q.Get("patient")), User: strings.TrimSpace(q.Get("user")), Action: q.Get("action"),
		From: q.Get("from"), To: q.Get("to"), Emergency: q.Get("emergency"),
		Actions: []audit.Action{audit.ActionRead, audit.ActionSearch, audit.ActionCreate, audit.ActionUpdate, audit.ActionDelete,
			audit.ActionExport, audit.ActionEmergency, audit.ActionLogRead}}
	if d.Patient != "" && !audit.ValidSearchID(d.Patient) {
		d.Patient = ""
	}
	f := audit.Search{TenantID: c.subject.TenantID(), PatientID: d.Patient, Limit: auditPageSize}
	if d.User != "" {
		id, err := s.logUser(ctx, c, d.User)
		switch {
		case errors.Is(err, identity.ErrNotFound):
			d.Problem = "sec.au.nouser"
		case err != nil:
			return audit.Search{}, auditData{}, err
		default:
			f.UserID = id
		}
	}
	if slices.Contains(d.Actions, audit.Action(d.Action)) {
		f.Action = audit.Action(d.Action)
	} else {
		d.Action = ""
	}
	if t, ok := parseDay(d.From); ok {
		f.From, d.From = t, t.Format(layoutDay)
	} else {
		d.From = ""
	}
	if t, ok := parseDay(d.To); ok {
		f.To, d.To = t.AddDate(0, 0, 1), t.Format(layoutDay)
	} else {
		d.To = ""
	}
	switch d.Emergency {
	case "yes", "no":
		b := d.Emergency == "yes"
		f.Emergency = &b
	default:
		d.Emergency = ""
	}
	if cur, err := audit.ParseCursor(q.Get("after")); err == nil {
		f.After = cur
	}
	v := url.Values{}
	for k, val := range map[string]string{"patient": d.Patient, "user": d.User, "action": d.Action, "from": d.From, "to": d.To, "emergency": d.Emergency} {
		if val != "" {
			v.Set(k, val)
		}
	}
	d.Query = template.URL(v.Encode()) // url.Values.Encode escapes every value
	v.Del("patient")
	v.Set("search", "1")
	d.AllPatients = template.URL(v.Encode())
	// The patient's name is given only with the search's lines, under its
	// logged reading (nameLines), never for an id typed into the URL.
	return f, d, nil
}

// logUser finds the account a user name names for the officer's search:
// one of the officer's organisation, or a platform operator (whose attempts
// are in the organisation's log, AZ-6). Another organisation's user is
// answered like a name nobody has.
func (s *server) logUser(ctx context.Context, c *sessionCtx, username string) (string, error) {
	a, err := s.d.IDs.AccountByUsername(ctx, username)
	if err == nil && a.TenantID != "" && a.TenantID != c.subject.TenantID() {
		err = identity.ErrNotFound
	}
	if err != nil {
		return "", err
	}
	return a.ID, nil
}

// accountName is the name of the person account whose own record the
// patient is; "" for a patient without one.
func (s *server) accountName(ctx context.Context, patientID string) (string, error) {
	a, err := s.d.IDs.PatientPerson(ctx, patientID)
	if errors.Is(err, identity.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return a.DisplayName, nil
}

// patientNames names patients on the officer's pages: by their person
// account's name when they have one (the registry's; no record is read),
// else by the display name record keeps beside the record, which it gives
// only for the patients the readings of the log released (record.Store.
// PatientNames; the readings' log-read events cover the showing). A
// patient with neither is absent.
func (s *server) patientNames(ctx context.Context, rds []*audit.Reading, ids ...string) (map[string]string, error) {
	var recorded map[string]string
	if len(rds) > 0 && s.d.Records != nil {
		var err error
		if recorded, err = s.d.Records.PatientNames(ctx, rds...); err != nil {
			return nil, err
		}
	}
	out := map[string]string{}
	for _, id := range ids {
		if _, done := out[id]; done || id == "" {
			continue
		}
		name, err := s.accountName(ctx, id)
		if err != nil {
			return nil, err
		}
		if name == "" {
			name = recorded[id]
		}
		if name != "" {
			out[id] = name
		}
	}
	return out, nil
}

// maxQueueNames bounds the log readings one queue page makes to name its
// patients; patients beyond it are shown without a name.
const maxQueueNames = 200

// queueNames names the patients of an officer's queue (emergency accesses,
// operator requests), whose lines are not the log's: each patient is named
// under a reading of the log for that patient (one line, not shown), so
// that its log-read event, durable before the name is given, records that
// the officer saw whose record the queue concerns, as the BSN lookup's
// reading does.
func (s *server) queueNames(r *http.Request, c *sessionCtx, ids []string) (map[string]string, error) {
	var distinct []string
	seen := map[string]bool{}
	for _, id := range ids {
		if id != "" && !seen[id] && len(distinct) < maxQueueNames {
			seen[id] = true
			distinct = append(distinct, id)
		}
	}
	rds := make([]*audit.Reading, len(distinct))
	errs := make([]error, len(distinct))
	// Concurrent readings share the log's group commits.
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i, id := range distinct {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			rd, err := s.readLog(r, c, audit.Search{PatientID: id, Limit: 1}, "names=1")
			if err == nil {
				_, err = rd.Each(r.Context(), func(audit.Event) error { return nil })
			}
			rds[i], errs[i] = rd, err
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	// Only the patients read for above are named (no reading, no name).
	return s.patientNames(r.Context(), rds, distinct...)
}

func (s *server) auditSearch(w http.ResponseWriter, r *http.Request, c *sessionCtx) {
	f, d, err := s.auditFilter(r.Context(), c, r.URL.Query())
	if err != nil {
		s.failed(w, r, err)
		return
	}
	code := http.StatusOK
	if d.Problem != "" {
		code = http.StatusBadRequest
	} else if r.URL.Query().Has("search") {
		d.Searched = true
		rd, err := s.readLog(r, c, f, d.Query)
		if err != nil {
			s.readFailed(w, r, err)
			return
		}
		if _, err := rd.Each(r.Context(), func(e audit.Event) error { d.Events = append(d.Events, e); return nil }); err != nil {
			s.failed(w, r, err)
			return
		}
		d.Next = rd.Next().String()
		if err := s.nameLines(r.Context(), &d, rd); err != nil {
			s.failed(w, r, err)
			return
		}
	}
	s.render(w, r, code, "audit", s.page(w, r, c, "sec.au.title", &d))
}

// nameLines names the patients of the lines rd released (and the patient
// searched for) and notes whether any line used emergency access.
func (s *server) nameLines(ctx context.Context, d *auditData, rd *audit.Reading) error {
	ids := []string{d.Patient}
	for _, e := range d.Events {
		d.AnyEmergency = d.AnyEmergency || e.Emergency
		ids = append(ids, e.PatientID)
	}
	names, err := s.patientNames(ctx, []*audit.Reading{rd}, ids...)
	if err != nil {
		return err
	}
	d.Names = names
	if d.Patient != "" {
		d.PatientName = names[d.Patient]
	}
	return nil
}

// auditFind is the search form's POST: a BSN in it is resolved through the
// blind index to the patient's id, and the browser is sent to the search
// with that id, so that the BSN is in no URL, history or log line. Without
// a BSN the patient already chosen (a hidden field) stays.
func (s *server) auditFind(w http.ResponseWriter, r *http.Request, c *sessionCtx) {
	q := url.Values{}
	for _, k := range []string{"patient", "user", "action", "from", "to", "emergency"} {
		if v := strings.TrimSpace(r.PostFormValue(k)); v != "" {
			q.Set(k, v)
		}
	}
	problem := ""
	if bsn := strings.ReplaceAll(strings.TrimSpace(r.PostFormValue("bsn")), " ", ""); bsn != "" {
		pid, err := s.patientByBSN(r.Context(), c, bsn)
		if err == nil || errors.Is(err, identity.ErrNotFound) {
			// Whether a BSN is registered is personal data: the lookup is
			// logged here, found or not, not by the page the redirect
			// leads to (LOG-1).
			if _, lerr := s.readLog(r, c, audit.Search{PatientID: pid, Limit: 1}, template.URL("lookup=bsn")); lerr != nil {
				s.readFailed(w, r, lerr)
				return
			}
		}
		switch {
		case errors.Is(err, errBadBSN):
			problem = "sec.au.badbsn"
		case errors.Is(err, identity.ErrNotFound):
			problem = "sec.au.nobsn"
		case err != nil:
			s.failed(w, r, err)
			return
		default:
			q.Set("patient", pid)
		}
	}
	if problem != "" {
		q.Del("patient")
		_, d, err := s.auditFilter(r.Context(), c, q)
		if err != nil {
			s.failed(w, r, err)
			return
		}
		d.Problem = problem
		s.render(w, r, http.StatusBadRequest, "audit", s.page(w, r, c, "sec.au.title", &d))
		return
	}
	q.Set("search", "1")
	http.Redirect(w, r, "/security/audit?"+q.Encode(), http.StatusSeeOther)
}

var errBadBSN = errors.New("not a BSN")

// patientByBSN finds the organisation's patient with bsn through its blind
// index (identity.ErrNotFound: none).
func (s *server) patientByBSN(ctx context.Context, c *sessionCtx, bsn string) (string, error) {
	if s.d.Index == nil || !nlid.ValidBSN(bsn) {
		return "", errBadBSN
	}
	idx, err := s.d.Index.BlindIndex(ctx, c.subject.TenantID(), "bsn", bsn)
	if err != nil {
		return "", err
	}
	return s.d.IDs.PatientByBSNIndex(ctx, c.subject.TenantID(), idx)
}
