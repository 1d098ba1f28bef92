package main

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/store/storetest"
	"github.com/zorgkluis/zorgkluis/internal/testkit"
)

// TestRevocationAcrossReplicas: two servers share one PostgreSQL database
// (and the data directory's keys). A certificate revoked through one is
// refused by the other at the next handshake without a restart, and the
// other closes the revoked certificate's open connection within a second.
// REQ: DP-3
func TestRevocationAcrossReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two servers")
	}
	bin := buildBinary(t)
	data := t.TempDir()
	env := []string{"ZK_DATABASE_URL=" + storetest.PostgresURL(t), "ZK_MASTER_KEY=" + testkit.MasterKey}
	api1, api2 := freeAddr(t), freeAddr(t)
	one := startServerArgs(t, bin, data, []string{"--demo", "--api-addr", api1}, env...)
	two := startServerArgs(t, bin, data, []string{"--demo", "--api-addr", api2}, env...) // --demo: the same self-signed certificate; the data exist
	cred := readCreds(t, data)
	c := client()
	smit := logon(t, c, one.base, demoUser(t, cred, "beheer.smit"))
	visser := logon(t, c, two.base, demoUser(t, cred, "beheer.visser"))
	code, b, _ := do(t, c, "POST", one.base+"/api/v1/pki/requests", smit, map[string]string{"kind": "intermediate"})
	var req struct{ ID string }
	json.Unmarshal(b, &req)
	if code, b, _ = do(t, c, "POST", two.base+"/api/v1/pki/requests/"+req.ID+"/approve", visser, nil); code != 200 {
		t.Fatalf("approve on the other replica: %d %s", code, b)
	}
	code, b, _ = do(t, c, "POST", one.base+"/api/v1/pki/systems", smit, map[string]any{"name": "Lab", "responsible_id": demoUser(t, cred, "dr.jansen").AccountID,
		"scopes": []string{"read"}, "categories": []string{"*"}})
	var sys struct{ ID string }
	json.Unmarshal(b, &sys)
	dir := t.TempDir()
	key, csr := opensslCSR(t, dir, "lab")
	code, b, _ = do(t, c, "POST", one.base+"/api/v1/pki/systems/"+sys.ID+"/certificates", smit, map[string]any{"csr": csr})
	if code != 201 {
		t.Fatalf("issue: %d %s", code, b)
	}
	var cert struct {
		Serial   string `json:"serial"`
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
	// An open connection to the second replica, used once.
	conn, err := tls.Dial("tcp", api2, &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{pair}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET /fhir/Patient/"+cred.PatientID+" HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(bufioReader(conn), nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("read over the open connection: %v %v", resp, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()

	if code, b, _ = do(t, c, "POST", one.base+"/api/v1/pki/certificates/"+cert.Serial+"/revoke", smit, nil); code != 200 {
		t.Fatalf("revoke: %d %s", code, b)
	}
	revokedAt := time.Now()
	// The second replica closes the open connection within a second.
	conn.SetReadDeadline(revokedAt.Add(time.Second))
	n, err := conn.Read(make([]byte, 1))
	if err == nil || n > 0 || strings.Contains(err.Error(), "timeout") {
		t.Fatalf("the revoked certificate's connection is still open after a second: %d %v", n, err)
	}
	// And refuses the next handshake, like the first.
	for _, api := range []string{api2, api1} {
		if exit, out := curlCert(t, "https://"+api+"/fhir/Patient/"+cred.PatientID, certPath, key); exit == 0 {
			t.Fatalf("%s accepted the revoked certificate:\n%s", api, out)
		}
	}
	two.stop(t)
	one.stop(t)
}

func bufioReader(r io.Reader) *bufio.Reader { return bufio.NewReader(r) }
