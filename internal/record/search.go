package record

import (
	"cmp"
	"context"
	"fmt"
	"slices"

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

// versionsQuery selects every version of a patient's resources in the
// patient index's own order (type, id, version), and current keeps the
// newest of each: no window function and no sort in the database. A
// correlated MAX(version) subquery per row made PostgreSQL scan the
// patient's rows once per row (quadratic) when statistics were fresh; a
// ROW_NUMBER() window cost SQLite two sorters per search.
const versionsQuery = `SELECT type, id, version, patient_id, deleted, categories, last_updated, body FROM resources r
	WHERE r.tenant_id = $1 AND r.patient_id = $2 %s ORDER BY r.type, r.id, r.version`

// searchQuery and everythingQuery are versionsQuery for one type ($3) and
// for every type: constant texts, so prepared once (store.Stmt).
var (
	searchQuery     = fmt.Sprintf(versionsQuery, "AND r.type = $3")
	everythingQuery = fmt.Sprintf(versionsQuery, "")
)

// current keeps the newest version of each resource among rows ordered by
// (type, id, version), newest change first (then type, id).
func current(rows []sealedRow) []sealedRow {
	out := rows[:0]
	for i, x := range rows {
		if i+1 < len(rows) && rows[i+1].r.Type == x.r.Type && rows[i+1].r.ID == x.r.ID {
			continue // a newer version follows
		}
		out = append(out, x)
	}
	slices.SortFunc(out, func(a, b sealedRow) int {
		if c := cmp.Compare(b.updated, a.updated); c != 0 {
			return c
		}
		if c := cmp.Compare(a.r.Type, b.r.Type); c != 0 {
			return c
		}
		return cmp.Compare(a.r.ID, b.r.ID)
	})
	return out
}

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
	all, err := s.collect(ctx, g, rows, false, true, match)
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
	all, err := s.collect(ctx, g, rows, false, true, func(Resource) bool { return true })
	if err != nil {
		return nil, s.logFailure(ctx, g, audit.ActionExport, "Patient/"+g.PatientID()+"/$everything", err)
	}
	if err := s.logRead(ctx, g, audit.ActionExport, "$everything", all...); err != nil {
		return nil, err
	}
	return all, nil
}
