package record

import (
	"context"
	"fmt"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/audit"
)

// SearchParams narrows a search within one patient.
type SearchParams struct {
	Type   string
	Offset int // index of the first match to return
	Count  int // page size, 0..1000; 0 returns only the total
	Query  string
	// Match decides on an opened, current resource; nil matches all.
	Match func(Resource) bool
}

// Page is one page of search results.
type Page struct {
	Resources []Resource
	Total     int // matches over all pages
}

// currentQuery selects the newest version of each resource of a patient,
// newest change first. One pass over the patient's rows with a window
// function: a correlated MAX(version) subquery per row made PostgreSQL
// scan the patient's rows once per row (quadratic) when statistics were
// fresh.
const currentQuery = `SELECT type, id, version, patient_id, deleted, categories, last_updated, body FROM (
	SELECT r.type, r.id, r.version, r.patient_id, r.deleted, r.categories, r.last_updated, r.body,
		ROW_NUMBER() OVER (PARTITION BY r.type, r.id ORDER BY r.version DESC) AS rn
	FROM resources r WHERE r.tenant_id = $1 AND r.patient_id = $2 %s) c
	WHERE rn = 1
	ORDER BY last_updated DESC, type, id`

// searchQuery and everythingQuery are currentQuery for one type ($3) and
// for every type: constant texts, so prepared once (store.Stmt).
var (
	searchQuery     = fmt.Sprintf(currentQuery, "AND r.type = $3")
	everythingQuery = fmt.Sprintf(currentQuery, "")
)

// Search returns one page of the current, non-deleted resources of one type
// of the grant's patient that Match accepts, and logs the search (one event
// for this patient, naming the resources on the page) durably before
// returning them. Resources of categories the grant does not allow are
// left out as if they did not exist.
//
// Search values (codes, dates, categories of the content) are not stored
// in the clear, so Search opens every current resource of this patient and
// type and filters in memory. That costs one AES-GCM open per resource
// (about a microsecond per kilobyte) and the rows' transfer: for the
// thousands of resources one patient has, milliseconds. It never reaches
// beyond one patient, because every search is per patient.
func (s *Store) Search(ctx context.Context, g access.Grant, p SearchParams) (Page, error) {
	if err := check(g, access.Search); err != nil {
		return Page{}, err
	}
	if p.Count < 0 || p.Count > 1000 || p.Offset < 0 {
		return Page{}, fmt.Errorf("search: page size %d or offset %d out of range", p.Count, p.Offset)
	}
	match := p.Match
	if match == nil {
		match = func(Resource) bool { return true }
	}
	rows, err := s.db.Stmt(searchQuery).QueryContext(ctx, g.TenantID(), g.PatientID(), p.Type)
	if err != nil {
		return Page{}, fmt.Errorf("search: %w", err)
	}
	all, err := s.collect(ctx, g, rows, false, match)
	if err != nil {
		return Page{}, s.logFailure(ctx, g, audit.ActionSearch, p.Type, err)
	}
	page := Page{Total: len(all)}
	if p.Offset < len(all) {
		page.Resources = all[p.Offset:min(len(all), p.Offset+p.Count)]
	}
	if err := s.logRead(ctx, g, audit.ActionSearch, p.Query, page.Resources...); err != nil {
		return Page{}, err
	}
	return page, nil
}

// Everything returns every current, non-deleted resource of the grant's
// patient that the grant's categories allow (DP-7: no more than the role
// needs), under an export grant, and logs the export durably first.
func (s *Store) Everything(ctx context.Context, g access.Grant) ([]Resource, error) {
	if err := check(g, access.Export); err != nil {
		return nil, err
	}
	rows, err := s.db.Stmt(everythingQuery).QueryContext(ctx, g.TenantID(), g.PatientID())
	if err != nil {
		return nil, fmt.Errorf("everything: %w", err)
	}
	all, err := s.collect(ctx, g, rows, false, func(Resource) bool { return true })
	if err != nil {
		return nil, s.logFailure(ctx, g, audit.ActionExport, "Patient/"+g.PatientID()+"/$everything", err)
	}
	if err := s.logRead(ctx, g, audit.ActionExport, "$everything", all...); err != nil {
		return nil, err
	}
	return all, nil
}
