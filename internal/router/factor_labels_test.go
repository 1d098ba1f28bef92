package router_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/store"
	"github.com/zorgkluis/zorgkluis/internal/store/storetest"
)

// REQ: AUTH-2
// The API names authenticator apps as their owner does: an optional label
// at enrolment, a 400 problem for a bad one, PATCH to rename (the owner's
// own factors only; another id is 404), and the list carries the labels.
func TestAPIFactorLabels(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		srv, an, accID := foundationServer(t, db)
		ctx := context.Background()
		_, secret, err := an.EnrollTOTP(ctx, accID, "known")
		if err != nil {
			t.Fatal(err)
		}
		c := func(method, path, body string, hdr ...string) (int, []byte) {
			resp, b := call(t, srv, method, path, body, hdr...)
			return resp.StatusCode, b
		}
		auth := []string{"Authorization", "Bearer " + apiLogon(t, c, secret, time.Now())}

		for _, body := range []string{`{"label":"a\u0007b"}`, `{"label":"` + strings.Repeat("x", 65) + `"}`, `{"label":"ok","x":1}`} {
			if st, b := c("POST", "/api/v1/factors/totp", body, auth...); st != 400 || !strings.Contains(string(b), `"status":400`) {
				t.Errorf("enrol with %s: %d %s", body, st, b)
			}
		}
		if st, b := c("POST", "/api/v1/factors/totp", `{"label":" Telefoon werk "}`, auth...); st != 201 {
			t.Fatalf("enrol with a label: %d %s", st, b)
		}
		list := func() []struct{ ID, Label string } {
			st, b := c("GET", "/api/v1/factors", "", auth...)
			var m struct {
				Apps []struct{ ID, Label string } `json:"totp_apps"`
			}
			if st != 200 || json.Unmarshal(b, &m) != nil {
				t.Fatalf("list: %d %s", st, b)
			}
			return m.Apps
		}
		apps := list()
		if len(apps) != 2 || apps[0].Label != "Authenticator-app 1" || apps[1].Label != "Telefoon werk" {
			t.Fatalf("apps %+v", apps)
		}
		if st, b := c("PATCH", "/api/v1/factors/totp/"+apps[0].ID, `{"label":"line\nbreak"}`, auth...); st != 400 {
			t.Errorf("rename with a newline: %d %s", st, b)
		}
		if st, b := c("PATCH", "/api/v1/factors/totp/totp-not-mine", `{"label":"Van mij"}`, auth...); st != 404 {
			t.Errorf("rename of an unknown factor: %d %s", st, b)
		}
		if st, b := c("PATCH", "/api/v1/factors/totp/"+apps[0].ID, `{"label":"Oude telefoon"}`); st != 401 {
			t.Errorf("rename without a session: %d %s", st, b)
		}
		if st, b := c("PATCH", "/api/v1/factors/totp/"+apps[0].ID, `{"label":"Oude telefoon"}`, auth...); st != 204 {
			t.Fatalf("rename: %d %s", st, b)
		}
		if apps = list(); apps[0].Label != "Oude telefoon" {
			t.Fatalf("after rename: %+v", apps)
		}
	})
}
