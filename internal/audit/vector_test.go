package audit

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/store/storetest"
)

// The test vector's key is public on purpose: it signs nothing real.
const (
	vectorSignerKey   = "PRIVATE+KEY+zorgkluis.example/audit+6a3438ce+AQcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcH"
	vectorVerifierKey = "zorgkluis.example/audit+6a3438ce+AepKbGPinFIKvvVQexMuxfmVR3auvr57kkIe6mkURtIs"
	vectorFile        = "testdata/proof-vectors.json"
)

type proofVectors struct {
	Comment     string        `json:"comment"`
	VerifierKey string        `json:"verifierKey"`
	Valid       []ProofBundle `json:"valid"`
}

// countingReader yields 0, 1, 2, ... so event ids are reproducible.
type countingReader struct{ n byte }

func (r *countingReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = r.n
		r.n++
	}
	return len(p), nil
}

// The proof format is fixed by vectors checked into the repository; an
// auditor's own checker (docs/audit-proofs.md) can be tested against them.
// Regenerate with ZK_WRITE_VECTORS=1 only when the format changes on
// purpose.
// REQ: LOG-2
func TestProofVectors(t *testing.T) {
	if os.Getenv("ZK_WRITE_VECTORS") == "1" {
		writeVectors(t)
	}
	raw, err := os.ReadFile(vectorFile)
	if err != nil {
		t.Fatal(err)
	}
	var v proofVectors
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	if v.VerifierKey != vectorVerifierKey || len(v.Valid) == 0 {
		t.Fatalf("vector file: key %q, %d proofs", v.VerifierKey, len(v.Valid))
	}
	for _, b := range v.Valid {
		if _, err := CheckProof(b, v.VerifierKey); err != nil {
			t.Errorf("vector for position %d: %v", b.Position, err)
		}
	}
}

func writeVectors(t *testing.T) {
	ctx := context.Background()
	signer, err := note.NewSigner(vectorSignerKey)
	if err != nil {
		t.Fatal(err)
	}
	db := storetest.SQLite(t)
	l := New(db, clock.NewFake(testStart), &countingReader{}, WithSigner(signer))
	defer l.Close()
	var ids []string
	for i := range 5 {
		e := event("t-example", "p-example", "u-example")
		e.Time = testStart.Add(time.Duration(i) * time.Second)
		out, err := l.Append(ctx, e)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, out[0].ID)
	}
	if _, err := l.Sequence(ctx); err != nil {
		t.Fatal(err)
	}
	v := proofVectors{
		Comment:     "Inclusion proofs of a five-event tree; check each with CheckProof or the algorithm in docs/audit-proofs.md. The key is a test key.",
		VerifierKey: vectorVerifierKey,
	}
	for _, i := range []int{0, 2, 4} {
		b, err := l.Proof(ctx, ids[i])
		if err != nil {
			t.Fatal(err)
		}
		v.Valid = append(v.Valid, b)
	}
	out, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(vectorFile), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(vectorFile, append(out, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

// The checker printed in docs/audit-proofs.md, which shares no code with
// this package, accepts the vectors and rejects a moved event.
// REQ: LOG-2
func TestDocumentedCheckerAcceptsVectors(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed")
	}
	doc, err := os.ReadFile("../../docs/audit-proofs.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "```python\n")
	script, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("no python block in docs/audit-proofs.md")
	}
	dir := t.TempDir()
	checker := filepath.Join(dir, "check_proof.py")
	if err := os.WriteFile(checker, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(py, checker, vectorFile, vectorVerifierKey).CombinedOutput()
	if strings.Contains(string(out), "No module named 'cryptography'") {
		t.Skip("python3-cryptography not installed")
	}
	if err != nil || strings.Count(string(out), "OK ") != 3 {
		t.Fatalf("documented checker on the vectors: %v\n%s", err, out)
	}
	raw, _ := os.ReadFile(vectorFile)
	var v proofVectors
	json.Unmarshal(raw, &v)
	bad := v.Valid[1]
	bad.Position = 3
	badFile := filepath.Join(dir, "bad.json")
	j, _ := json.Marshal(bad)
	os.WriteFile(badFile, j, 0o644)
	if out, err := exec.Command(py, checker, badFile, vectorVerifierKey).CombinedOutput(); err == nil {
		t.Fatalf("documented checker accepted a moved event:\n%s", out)
	}
}
