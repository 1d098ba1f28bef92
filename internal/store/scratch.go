package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// Scratch makes an empty database beside the one at rawURL, for a restore
// test: a new SQLite file in dir, or a new schema in the same PostgreSQL
// database (the connecting role needs CREATE there). drop removes it.
func Scratch(ctx context.Context, rawURL, dir string) (scratchURL string, drop func() error, err error) {
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "zk_scratch_" + hex.EncodeToString(b[:])
	if !strings.HasPrefix(rawURL, "postgres://") && !strings.HasPrefix(rawURL, "postgresql://") {
		d, err := os.MkdirTemp(dir, name)
		if err != nil {
			return "", nil, fmt.Errorf("scratch database: %w", err)
		}
		return filepath.Join(d, "scratch.db"), func() error { return os.RemoveAll(d) }, nil
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", nil, errors.New("scratch database: malformed URL") // may hold a password: not repeated
	}
	admin, err := Open(ctx, rawURL)
	if err != nil {
		return "", nil, err
	}
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+name); err != nil {
		admin.Close()
		return "", nil, fmt.Errorf("scratch database: %w", err)
	}
	q := u.Query()
	q.Set("search_path", name)
	u.RawQuery = q.Encode()
	return u.String(), func() error {
		defer admin.Close()
		_, err := admin.ExecContext(context.WithoutCancel(ctx), "DROP SCHEMA "+name+" CASCADE")
		return err
	}, nil
}
