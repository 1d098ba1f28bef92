package router_test

import (
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zorgkluis/zorgkluis/internal/router"
	"github.com/zorgkluis/zorgkluis/internal/testkit"
)

type serverOption func(*router.Deps)

// baseURL sets the URL the server names itself by (default https://localhost).
func baseURL(u string) serverOption { return func(d *router.Deps) { d.BaseURL = u } }

// bodyLimit sets the request body limit (default 1 MiB).
func bodyLimit(n int64) serverOption { return func(d *router.Deps) { d.MaxBodyBytes = n } }

// serve starts the root router on the kit's services over TLS on loopback,
// closed when the test ends.
func serve(t testing.TB, k *testkit.Kit, opts ...serverOption) *httptest.Server {
	t.Helper()
	d := router.Deps{DB: k.DB, IDs: k.IDs, Authn: k.Authn, Access: k.Access, Records: k.Records, Audit: k.Audit,
		Index: k.Keys, Clock: k.Clock, Log: k.Log, Metrics: prometheus.NewRegistry(), Version: "test", BaseURL: "https://localhost"}
	for _, f := range opts {
		f(&d)
	}
	h, err := router.New(d)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewTLSServer(h)
	t.Cleanup(srv.Close)
	return srv
}
