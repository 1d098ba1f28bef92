package main

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestAPIListenerFigures measures, on the real server (SQLite, demo data),
// mutual-TLS handshakes per second on the API listener and authorised
// reads per second over it (one kept-alive connection per worker), as a
// ratio to the same read with a bearer token over the public listener in
// the same run. A figure, not a pass mark: it runs only with ZK_BENCH=1
// (each measurement is testing.Benchmark's, about a second), e.g.
//
//	ZK_BENCH=1 go test -run TestAPIListenerFigures -v ./cmd/zorgkluis
func TestAPIListenerFigures(t *testing.T) {
	if os.Getenv("ZK_BENCH") != "1" {
		t.Skip("set ZK_BENCH=1 for the API listener's figures")
	}
	bin := buildBinary(t)
	data := t.TempDir()
	apiAddr := freeAddr(t)
	srv := startServerArgs(t, bin, data, []string{"--demo", "--api-addr", apiAddr, "--log-level", "error"})
	cred := readCreds(t, data)
	c := client()
	smit := logon(t, c, srv.base, demoUser(t, cred, "beheer.smit"))
	visser := logon(t, c, srv.base, demoUser(t, cred, "beheer.visser"))
	jansen := demoUser(t, cred, "dr.jansen")
	bearer := logon(t, c, srv.base, jansen)
	_, b, _ := do(t, c, "POST", srv.base+"/api/v1/pki/requests", smit, map[string]string{"kind": "intermediate"})
	var req struct{ ID string }
	json.Unmarshal(b, &req)
	do(t, c, "POST", srv.base+"/api/v1/pki/requests/"+req.ID+"/approve", visser, nil)
	_, b, _ = do(t, c, "POST", srv.base+"/api/v1/pki/systems", smit, map[string]any{"name": "Lab", "responsible_id": jansen.AccountID,
		"scopes": []string{"read"}, "categories": []string{"*"}})
	var sys struct{ ID string }
	json.Unmarshal(b, &sys)
	dir := t.TempDir()
	key, csr := opensslCSR(t, dir, "lab")
	_, b, _ = do(t, c, "POST", srv.base+"/api/v1/pki/systems/"+sys.ID+"/certificates", smit, map[string]any{"csr": csr})
	var cert struct {
		PEM      string `json:"certificate_pem"`
		ChainPEM string `json:"chain_pem"`
	}
	json.Unmarshal(b, &cert)
	certPath := filepath.Join(dir, "lab.pem")
	os.WriteFile(certPath, []byte(cert.PEM+cert.ChainPEM), 0o600)
	pair, err := tls.LoadX509KeyPair(certPath, key)
	if err != nil {
		t.Fatal(err)
	}
	mtls := &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{pair}}
	read := func(client *http.Client, url, token string) func(b *testing.B) {
		return func(b *testing.B) {
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req, _ := http.NewRequest("GET", url, nil)
					if token != "" {
						req.Header.Set("Authorization", "Bearer "+token)
					}
					resp, err := client.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						b.Errorf("status %d", resp.StatusCode)
						return
					}
				}
			})
		}
	}
	path := "/fhir/Patient/" + cred.PatientID
	pool := func(conf *tls.Config) *http.Client {
		return &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: conf, MaxIdleConnsPerHost: 64}}
	}
	bearerRead := testing.Benchmark(read(pool(&tls.Config{InsecureSkipVerify: true}), srv.base+path, bearer))
	mtlsRead := testing.Benchmark(read(pool(mtls), "https://"+apiAddr+path, ""))
	handshake := testing.Benchmark(func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				conn, err := tls.Dial("tcp", apiAddr, mtls)
				if err != nil {
					b.Error(err)
					return
				}
				conn.Close()
			}
		})
	})
	perSec := func(r testing.BenchmarkResult) float64 { return float64(r.N) / r.T.Seconds() }
	report := fmt.Sprintf("mTLS handshakes/s %.0f; authorised reads/s over the API listener %.0f, over the bearer listener %.0f; ratio API/bearer %.2f",
		perSec(handshake), perSec(mtlsRead), perSec(bearerRead), perSec(mtlsRead)/perSec(bearerRead))
	t.Log(report)
	fmt.Println(report)
}
