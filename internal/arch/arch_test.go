package arch

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// layers is the policy: every package of the module by layer, lowest first.
// A non-test import must point to a strictly lower layer, so packages of one
// layer never import each other (the protocol packages in particular stay
// side by side, mounted by the router). A new package must be placed here.
var layers = [][]string{
	{"internal/arch", "internal/clock", "internal/nlid", "internal/password", "internal/password/gen", "internal/config", "internal/server"},
	{"internal/store", "internal/clockwatch"},
	{"internal/store/storetest", "internal/alert", "internal/keys", "internal/identity", "internal/audit", "internal/fhir"},
	// The one four-eyes mechanism (GOV-1): the owners of settings import it.
	{"internal/change"},
	// access decides; backup exports and restores every table (operations).
	{"internal/access", "internal/backup"},
	{"internal/authn", "internal/record", "internal/pki", "internal/oauth", "internal/sso", "internal/devices"},
	{"internal/principal", "internal/onboard", "internal/docsign", "internal/governance"},
	// Set-up through the same services, and the glue the protocol packages share.
	// compliance reports on governance's registers, beside the glue.
	{"internal/demo", "internal/synth", "internal/httpx", "internal/testkit", "internal/compliance"},
	// Protocols: one package per protocol, none importing another.
	{"internal/fhirapi", "internal/mgmtapi", "internal/web", "internal/oauthapi", "internal/deviceapi"},
	{"internal/router"},
	{"cmd/zorgkluis", "cmd/zkload"},
}

// testOnly packages may be imported by _test.go files only.
var testOnly = []string{"internal/testkit", "internal/store/storetest"}

// readers lists the tables a package reads (SELECT, JOIN) without owning
// them, and why. Writes are the owner's alone, without exception.
var readers = map[string]map[string]string{
	// A decision is one round trip: its queries join the identity rows they
	// decide on instead of asking identity first.
	"access": {
		"tenants":         "an operator request names the patient's organisation",
		"accounts":        "the subject's account must be active and in the tenant",
		"account_roles":   "the subject's account must hold the session's role",
		"patients":        "the patient's tenant, in the decision query",
		"person_patients": "a person's own record, in the decision query",
		// A system's decision (DP-3) reads its registration, patient set and
		// certificate in the same round trip.
		"pki_systems":         "a system's scopes, categories and state, in the decision query",
		"pki_system_patients": "a system's patient set, in the decision query",
		"pki_certificates":    "the presented certificate is current and not revoked, in the decision query",
	},
	"pki": {
		"tenants":  "a CA's organisation name and that the tenant exists",
		"accounts": "a system's responsible person (ID-3) is an active account of the tenant, also at every handshake",
		"patients": "a system's patient set names patients of its tenant",
	},
	"authn": {
		"accounts": "the log-on and session lookups join the account in one round trip",
		"tenants":  "the session lookup names the session's organisation for the access log in the same round trip",
	},
	// The registers read what they give evidence of.
	"governance": {
		"tenants":               "a tenant older than a month without a closed access review is overdue",
		"onboard_tenants":       "a deactivated tenant is not reviewed",
		"access_right_requests": "a review line names the right's approval and whether it was privileged",
		"care_relationships":    "a review line counts the account's current care relationships",
		"sessions":              "a review line's last use is the newest session in that role",
		"alert_security_events": "an incident opened from a security event starts its clock at the event",
	},
	// The compliance report reads the evidence it reports on.
	"compliance": {
		"tenants":          "the reminders of periodic controls go to every tenant",
		"pki_certificates": "certificates near expiry are evidence (NEN 7512 6.3.4), red within 30 days",
	},
	"sso": {
		"accounts": "an upstream identity is linked to, and logs on as, an active account of the provider's tenant only",
	},
	"oauth": {
		"accounts": "an app's token works only while the person who consented is an active account (ID-5), in the token look-up",
	},
	"devices": {
		"accounts": "a paired device works only while its account is active (ID-5), in every look-up; its user's name for the log and the lists",
	},
	"onboard": {
		"patients":      "a person's invitation names a record of the inviting tenant",
		"accounts":      "a role comes with an invitation only while no active account of the tenant holds it",
		"account_roles": "a role comes with an invitation only while no active account of the tenant holds it",
	},
	// backup reads and restores every table generically from the catalog
	// (names never spelt in its SQL); these are the ones it names.
	"backup": {
		"patient_deks": "a shredded patient is never restored; the restore test samples unshredded records",
		"resources":    "the restore test decrypts a sample of the restored records",
	},
}

// seams lists the constructors and types that only named packages may use
// outside tests: the principal seam makes access subjects, access makes
// grants and audit permits.
var seams = []struct {
	pkg, name string
	literal   bool     // a composite literal of the type (else a call of the function)
	allowed   []string // packages (by path) that may; the defining package always may
}{
	{pkg: "internal/access", name: "Subject", literal: true},
	{pkg: "internal/access", name: "Grant", literal: true},
	{pkg: "internal/access", name: "NewSubject", allowed: []string{"internal/principal"}},
	{pkg: "internal/audit", name: "NewPermit", allowed: []string{"internal/access"}},
	{pkg: "internal/audit", name: "Permit", literal: true},
}

// listeners: only the router builds the root mux, and only the router and
// server open listeners or build http.Servers.
var listeners = map[string][]string{
	"NewServeMux": {"internal/router"},
	"Server":      {"internal/router", "internal/server"},
	"Listen":      {"internal/router", "internal/server"},
}

func TestLayout(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range check(t, root) {
		t.Error(v)
	}
}

// TestLayoutCatchesViolations runs the same checks on a small tree that
// breaks each rule once, so a checker that stopped seeing would fail too.
func TestLayoutCatchesViolations(t *testing.T) {
	got := check(t, "testdata/broken")
	want := []string{
		"internal/store imports internal/web",       // upward
		"internal/fhirapi imports internal/mgmtapi", // across
		"internal/record imports internal/testkit",  // test-only
		"internal/web writes care_relationships",    // another owner's table
		"internal/web reads access_teams",           // read without a reason
		"internal/web builds access.Subject",        // outside the seam
		"internal/web calls access.NewSubject",
		"internal/web calls http.NewServeMux",
		"internal/newthing is not in the layer table",
	}
	for _, w := range want {
		if !slices.ContainsFunc(got, func(g string) bool { return strings.Contains(g, w) }) {
			t.Errorf("no violation %q reported; got:\n%s", w, strings.Join(got, "\n"))
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d violations reported, want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
}

type goFile struct {
	pkg  string // module-relative directory, e.g. internal/access
	path string
	test bool
	ast  *ast.File
}

func check(t *testing.T, root string) []string {
	t.Helper()
	mod, err := modulePath(root)
	if err != nil {
		t.Fatal(err)
	}
	files, err := parseTree(root)
	if err != nil {
		t.Fatal(err)
	}
	owners, err := tableOwners(filepath.Join(root, "internal/store/migrations"))
	if err != nil {
		t.Fatal(err)
	}
	if len(owners) == 0 {
		t.Fatal("no tables found in the migrations")
	}
	var out []string
	out = append(out, checkImports(mod, files)...)
	out = append(out, checkTables(owners, files)...)
	out = append(out, checkSeams(mod, files)...)
	sort.Strings(out)
	return slices.Compact(out)
}

func modulePath(root string) (string, error) {
	b, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		return "", err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if m, ok := strings.CutPrefix(strings.TrimSpace(l), "module "); ok {
			return strings.TrimSpace(m), nil
		}
	}
	return "", fmt.Errorf("%s: no module line", root)
}

func parseTree(root string) ([]goFile, error) {
	var out []goFile
	fset := token.NewFileSet()
	for _, top := range []string{"internal", "cmd"} {
		err := filepath.WalkDir(filepath.Join(root, top), func(p string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) {
				return filepath.SkipDir
			}
			if d.IsDir() || !strings.HasSuffix(p, ".go") {
				return nil
			}
			f, err := parser.ParseFile(fset, p, nil, parser.SkipObjectResolution)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(root, filepath.Dir(p))
			out = append(out, goFile{pkg: filepath.ToSlash(rel), path: p, test: strings.HasSuffix(p, "_test.go"), ast: f})
			return nil
		})
		if err != nil && !os.IsNotExist(err) {
			return nil, err
		}
	}
	return out, nil
}

func layerOf(pkg string) int {
	for i, l := range layers {
		if slices.Contains(l, pkg) {
			return i
		}
	}
	return -1
}

func checkImports(mod string, files []goFile) []string {
	var out []string
	for _, f := range files {
		from := layerOf(f.pkg)
		if from < 0 {
			out = append(out, f.pkg+" is not in the layer table")
			continue
		}
		for _, imp := range f.ast.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			to, ok := strings.CutPrefix(path, mod+"/")
			if !ok {
				continue
			}
			if slices.Contains(testOnly, to) && !f.test && f.pkg != to && !slices.Contains(testOnly, f.pkg) {
				out = append(out, fmt.Sprintf("%s imports %s, which is for tests only (%s)", f.pkg, to, f.path))
				continue
			}
			if f.test {
				continue // tests may reach anything they need to set up
			}
			if l := layerOf(to); l < 0 || l >= from {
				out = append(out, fmt.Sprintf("%s imports %s: imports point to a lower layer only (%s)", f.pkg, to, f.path))
			}
		}
	}
	return out
}

var (
	createTable = regexp.MustCompile(`(?i)CREATE TABLE (?:IF NOT EXISTS )?([a-z_][a-z0-9_]*)`)
	dropTable   = regexp.MustCompile(`(?i)DROP TABLE (?:IF EXISTS )?([a-z_][a-z0-9_]*)`)
	writeRef    = regexp.MustCompile(`(?i)\b(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM|ALTER\s+TABLE|TRUNCATE)\s+([a-z_][a-z0-9_]*)`)
	readRef     = regexp.MustCompile(`(?i)\b(?:FROM|JOIN)\s+([a-z_][a-z0-9_]*)`)
)

// tableOwners reads the migrations in order: a file NNNNN_owner_*.sql
// creates tables owned by package owner (in its Up part; a table a later
// migration drops is gone).
func tableOwners(dir string) (map[string]string, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.sql"))
	if err != nil {
		return nil, err
	}
	sort.Strings(paths)
	owners := map[string]string{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		up, _, _ := strings.Cut(string(b), "-- +goose Down")
		_, rest, _ := strings.Cut(strings.TrimSuffix(filepath.Base(p), ".sql"), "_")
		owner, _, _ := strings.Cut(rest, "_")
		for _, m := range dropTable.FindAllStringSubmatch(up, -1) {
			delete(owners, m[1])
		}
		for _, m := range createTable.FindAllStringSubmatch(up, -1) {
			if o, dup := owners[m[1]]; dup && o != owner {
				return nil, fmt.Errorf("table %s created by %s and %s", m[1], o, owner)
			}
			owners[m[1]] = owner
		}
	}
	return owners, nil
}

func checkTables(owners map[string]string, files []goFile) []string {
	var out []string
	for _, f := range files {
		if f.test {
			continue
		}
		pkg := filepath.Base(f.pkg)
		ast.Inspect(f.ast, func(n ast.Node) bool {
			lit, ok := n.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			s, err := strconv.Unquote(lit.Value)
			if err != nil {
				return true
			}
			written := map[string]bool{}
			for _, m := range writeRef.FindAllStringSubmatch(s, -1) {
				if o, ok := owners[m[1]]; ok && o != pkg {
					out = append(out, fmt.Sprintf("%s writes %s, owned by %s (%s)", f.pkg, m[1], o, f.path))
				}
				written[m[1]] = true
			}
			for _, m := range readRef.FindAllStringSubmatch(s, -1) {
				o, ok := owners[m[1]]
				if !ok || o == pkg || written[m[1]] {
					continue
				}
				if _, listed := readers[pkg][m[1]]; !listed {
					out = append(out, fmt.Sprintf("%s reads %s, owned by %s, without a listed reason (%s)", f.pkg, m[1], o, f.path))
				}
			}
			return true
		})
	}
	return out
}

func checkSeams(mod string, files []goFile) []string {
	var out []string
	for _, f := range files {
		if f.test {
			continue
		}
		local := map[string]string{} // import name in this file -> module-relative path
		for _, imp := range f.ast.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			name := filepath.Base(path)
			if imp.Name != nil {
				name = imp.Name.Name
			}
			if rel, ok := strings.CutPrefix(path, mod+"/"); ok {
				local[name] = rel
			} else {
				local[name] = path
			}
		}
		ref := func(e ast.Expr) (pkg, name string, ok bool) {
			sel, ok := e.(*ast.SelectorExpr)
			if !ok {
				return "", "", false
			}
			id, ok := sel.X.(*ast.Ident)
			if !ok || local[id.Name] == "" {
				return "", "", false
			}
			return local[id.Name], sel.Sel.Name, true
		}
		ast.Inspect(f.ast, func(n ast.Node) bool {
			var pkg, name string
			var ok, literal bool
			switch x := n.(type) {
			case *ast.CompositeLit:
				if x.Type == nil || len(x.Elts) == 0 {
					return true // a zero value assembles nothing
				}
				pkg, name, ok = ref(x.Type)
				literal = true
			case *ast.CallExpr:
				pkg, name, ok = ref(x.Fun)
			}
			if !ok {
				return true
			}
			for _, s := range seams {
				if s.pkg == pkg && s.name == name && s.literal == literal && f.pkg != s.pkg && !slices.Contains(s.allowed, f.pkg) {
					verb := "calls"
					if literal {
						verb = "builds"
					}
					out = append(out, fmt.Sprintf("%s %s %s.%s outside its seam (%s)", f.pkg, verb, filepath.Base(pkg), name, f.path))
				}
			}
			if allowed, listed := listeners[name]; listed && (pkg == "net/http" || pkg == "net") && !slices.Contains(allowed, f.pkg) &&
				!strings.HasPrefix(f.pkg, "cmd/zkload") {
				kind := "calls"
				if literal {
					kind = "builds"
				}
				out = append(out, fmt.Sprintf("%s %s %s.%s: the router mounts handlers and opens listeners (%s)", f.pkg, kind, filepath.Base(pkg), name, f.path))
			}
			return true
		})
	}
	return out
}
