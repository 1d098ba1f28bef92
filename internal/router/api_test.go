package router_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/zorgkluis/zorgkluis/internal/authn"
	"github.com/zorgkluis/zorgkluis/internal/identity"
	"github.com/zorgkluis/zorgkluis/internal/store"
	"github.com/zorgkluis/zorgkluis/internal/store/storetest"
	"github.com/zorgkluis/zorgkluis/internal/testkit"
)

// foundationServer wires the API like cmd/zorgkluis does, on db, behind the
// same header and body-limit middleware, with one known account.
func foundationServer(t *testing.T, db *store.DB) (*httptest.Server, *authn.Service, string) {
	t.Helper()
	ctx := context.Background()
	k := testkit.New(t, db)
	ids, an := k.IDs, k.Authn
	ten, err := ids.CreateTenant(ctx, identity.Tenant{Name: "T"})
	if err != nil {
		t.Fatal(err)
	}
	acc, err := ids.CreateAccount(ctx, identity.Account{TenantID: ten.ID, Kind: identity.KindProfessional, Username: "known", DisplayName: "K", RegistrationMethod: 3})
	if err != nil {
		t.Fatal(err)
	}
	if err := an.SetPassword(ctx, acc.ID, "a perfectly fine passphrase", false); err != nil {
		t.Fatal(err)
	}
	return serve(t, k, bodyLimit(4096)), an, acc.ID
}

func call(t *testing.T, srv *httptest.Server, method, path, body string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// Bad input gets a clear 4xx in the right format, never a 500.
func TestBadInputGetsClear4xx(t *testing.T) {
	srv, _, _ := foundationServer(t, storetest.SQLite(t))
	cases := []struct {
		method, path, body string
		code               int
		ctype              string
	}{
		{"POST", "/api/v1/logon", "{not json", 400, "application/problem+json"},
		{"POST", "/api/v1/logon", `{"username":"a","password":"b","extra":1}`, 400, "application/problem+json"},
		{"POST", "/api/v1/logon", `{"username":"` + strings.Repeat("x", 5000) + `"}`, 413, "application/problem+json"},
		{"GET", "/api/v1/nothing", "", 404, "application/problem+json"},
		{"GET", "/api/v1/session", "", 401, "application/problem+json"},
		{"GET", "/fhir/Patient/abc", "", 401, "application/fhir+json; charset=utf-8"},
		{"GET", "/fhir/Nonsense/1", "", 404, "application/fhir+json; charset=utf-8"},
		{"GET", "/fhir/Patient/abc", "", 401, "application/fhir+json; charset=utf-8"},
	}
	for _, tc := range cases {
		resp, b := call(t, srv, tc.method, tc.path, tc.body)
		if resp.StatusCode != tc.code || resp.Header.Get("Content-Type") != tc.ctype {
			t.Errorf("%s %s: %d %q; want %d %q (%s)", tc.method, tc.path, resp.StatusCode, resp.Header.Get("Content-Type"), tc.code, tc.ctype, b)
		}
		if strings.HasPrefix(tc.ctype, "application/fhir+json") && !bytes.Contains(b, []byte(`"OperationOutcome"`)) {
			t.Errorf("%s: FHIR error is not an OperationOutcome: %s", tc.path, b)
		}
	}
}

// REQ: AUTH-4 — the log-on answers the same for an unknown user, a wrong
// password and a right password until the second factor; the failure is
// one generic message; the warning banner comes first.
func TestLogonSaysNothingUntilTheEnd(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		srv, _, _ := foundationServer(t, db)
		shape := func(user, pw string) (int, []string) {
			resp, b := call(t, srv, "POST", "/api/v1/logon", `{"username":"`+user+`","password":"`+pw+`"}`)
			var m map[string]any
			json.Unmarshal(b, &m)
			var keys []string
			for k := range m {
				keys = append(keys, k)
			}
			if !strings.Contains(m["warning"].(string), "bevoegde") {
				t.Fatalf("no warning banner: %s", b)
			}
			return resp.StatusCode, keys
		}
		c1, k1 := shape("nobody", "whatever")
		c2, k2 := shape("known", "wrong password")
		c3, k3 := shape("known", "a perfectly fine passphrase")
		if c1 != 200 || c2 != 200 || c3 != 200 || len(k1) != len(k2) || len(k2) != len(k3) {
			t.Fatalf("first step differs: %d%v %d%v %d%v", c1, k1, c2, k2, c3, k3)
		}
		var bodies []string
		for _, user := range []string{"nobody", "known"} {
			_, b := call(t, srv, "POST", "/api/v1/logon", `{"username":"`+user+`","password":"wrong"}`)
			var a struct{ Attempt string }
			json.Unmarshal(b, &a)
			resp, b := call(t, srv, "POST", "/api/v1/logon/totp", `{"attempt":"`+a.Attempt+`","code":"123456"}`)
			if resp.StatusCode != 401 {
				t.Fatalf("second step for %s: %d", user, resp.StatusCode)
			}
			var p map[string]any
			json.Unmarshal(b, &p)
			delete(p, "instance")
			out, _ := json.Marshal(p)
			bodies = append(bodies, string(out))
		}
		if bodies[0] != bodies[1] {
			t.Fatalf("failures differ:\n%s\n%s", bodies[0], bodies[1])
		}
		if strings.Contains(bodies[0], "password") && !strings.Contains(bodies[0], "Check your details") {
			t.Fatalf("failure names the wrong part: %s", bodies[0])
		}
	})
}

func TestReadiness(t *testing.T) {
	db := storetest.SQLite(t)
	srv, _, _ := foundationServer(t, db)
	if resp, b := call(t, srv, "GET", "/readyz", ""); resp.StatusCode != 200 {
		t.Fatalf("readyz: %d %s", resp.StatusCode, b)
	}
	if resp, _ := call(t, srv, "GET", "/healthz", ""); resp.StatusCode != 200 {
		t.Fatalf("healthz: %d", resp.StatusCode)
	}
	db.Close()
	if resp, b := call(t, srv, "GET", "/readyz", ""); resp.StatusCode != 503 || !bytes.Contains(b, []byte("unreachable")) {
		t.Fatalf("readyz with the database gone: %d %s; want 503", resp.StatusCode, b)
	}
}

// Every response carries a request id; a valid client-supplied one is kept.
func TestRequestIDs(t *testing.T) {
	srv, _, _ := foundationServer(t, storetest.SQLite(t))
	resp, _ := call(t, srv, "GET", "/healthz", "", "X-Request-Id", "client-chosen-id-1")
	if resp.Header.Get("X-Request-Id") != "client-chosen-id-1" {
		t.Fatalf("request id not kept: %q", resp.Header.Get("X-Request-Id"))
	}
	resp, _ = call(t, srv, "GET", "/healthz", "", "X-Request-Id", "bad id with spaces")
	if id := resp.Header.Get("X-Request-Id"); id == "" || strings.Contains(id, " ") {
		t.Fatalf("invalid request id echoed: %q", id)
	}
}
