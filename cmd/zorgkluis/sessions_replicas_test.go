package main

import (
	"testing"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/store/storetest"
	"github.com/zorgkluis/zorgkluis/internal/testkit"
)

// Two real servers on one PostgreSQL database keep sessions in memory: a
// session read on both, then logged off (and, with a second session, "log
// off everywhere") on one, is refused there at once and on the other within
// a second.
// REQ: AUTH-4
func TestSessionsAcrossReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two servers")
	}
	bin := buildBinary(t)
	data := t.TempDir()
	env := []string{"ZK_DATABASE_URL=" + storetest.PostgresURL(t), "ZK_MASTER_KEY=" + testkit.MasterKey}
	one := startServerArgs(t, bin, data, []string{"--demo"}, env...)
	two := startServerArgs(t, bin, data, []string{"--demo"}, env...) // the data exist: the second replica only serves
	cred := readCreds(t, data)
	c := client()
	read := func(base, tok string) int {
		code, _, _ := do(t, c, "GET", base+"/fhir/Patient/"+cred.PatientID, tok, nil)
		return code
	}
	for _, end := range []string{"/api/v1/logoff", "/api/v1/logoff/all"} {
		tok := logon(t, c, one.base, demoUser(t, cred, "dr.jansen"))
		for _, base := range []string{one.base, two.base, one.base, two.base} {
			if code := read(base, tok); code != 200 {
				t.Fatalf("read before %s: %d", end, code)
			}
		}
		if code, b, _ := do(t, c, "POST", one.base+end, tok, nil); code/100 != 2 {
			t.Fatalf("%s: %d %s", end, code, b)
		}
		if code := read(one.base, tok); code != 401 {
			t.Fatalf("after %s the same replica answered %d", end, code)
		}
		start := time.Now()
		code := 0
		for i := 0; i < 200 && time.Since(start) < time.Second; i++ {
			if code = read(two.base, tok); code == 401 {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if code != 401 {
			t.Fatalf("after %s the other replica still answered %d after %v", end, code, time.Since(start))
		}
		t.Logf("%s: the other replica refused after %v", end, time.Since(start).Round(time.Millisecond))
	}
}
