package audit

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/tlog"
)

// Checkpoint is the signed statement "tenant T's tree had Size leaves with
// root hash Root at Time". Its text is a C2SP tlog checkpoint
// (https://c2sp.org/tlog-checkpoint) with one extension line:
//
//	<origin>
//	<size, decimal>
//	<root hash, standard base64>
//	time <RFC 3339 UTC>
//
// signed as a note (golang.org/x/mod/sumdb/note) with Ed25519. The origin is
// "<key name>/tenant/<tenant id, URL path-escaped>", or "<key name>/platform"
// for the platform tree.
type Checkpoint struct {
	Origin string
	Size   int64
	Root   tlog.Hash
	Time   time.Time
}

// Origin returns the checkpoint origin of tenantID's tree under a key name.
func Origin(keyName, tenantID string) string {
	if tenantID == "" {
		return keyName + "/platform"
	}
	return keyName + "/tenant/" + url.PathEscape(tenantID)
}

// TenantOf returns the tenant whose tree the origin names.
func TenantOf(origin string) (string, error) {
	if strings.HasSuffix(origin, "/platform") && !strings.Contains(origin, "/tenant/") {
		return "", nil
	}
	i := strings.LastIndex(origin, "/tenant/")
	if i < 0 {
		return "", fmt.Errorf("checkpoint origin %q names no tree", origin)
	}
	t, err := url.PathUnescape(origin[i+len("/tenant/"):])
	if err != nil || t == "" {
		return "", fmt.Errorf("checkpoint origin %q: bad tenant", origin)
	}
	return t, nil
}

// Text returns the checkpoint body that is signed.
func (c Checkpoint) Text() string {
	return fmt.Sprintf("%s\n%d\n%s\ntime %s\n", c.Origin, c.Size,
		base64.StdEncoding.EncodeToString(c.Root[:]), c.Time.UTC().Format(time.RFC3339Nano))
}

// ParseCheckpoint parses a checkpoint body (the text of an opened note).
func ParseCheckpoint(text string) (Checkpoint, error) {
	if !strings.HasSuffix(text, "\n") {
		return Checkpoint{}, errors.New("checkpoint: text must end in a newline")
	}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(lines) < 3 {
		return Checkpoint{}, errors.New("checkpoint: fewer than three lines")
	}
	var c Checkpoint
	c.Origin = lines[0]
	if c.Origin == "" {
		return Checkpoint{}, errors.New("checkpoint: empty origin")
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 || strconv.FormatInt(size, 10) != lines[1] {
		return Checkpoint{}, fmt.Errorf("checkpoint: bad tree size %q", lines[1])
	}
	c.Size = size
	root, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(root) != tlog.HashSize {
		return Checkpoint{}, fmt.Errorf("checkpoint: bad root hash %q", lines[2])
	}
	c.Root = tlog.Hash(root)
	for _, ext := range lines[3:] {
		if v, ok := strings.CutPrefix(ext, "time "); ok {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return Checkpoint{}, fmt.Errorf("checkpoint: bad time %q", v)
			}
			c.Time = t.UTC()
		}
	}
	return c, nil
}
