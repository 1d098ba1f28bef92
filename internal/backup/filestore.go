package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Store is where backups are kept. Dir is the one implementation here; an
// S3-compatible object store fits the same four calls (not built yet).
type Store interface {
	// Put stores r under name; a name appears in List only once complete.
	Put(ctx context.Context, name string, r io.Reader) (int64, error)
	Open(ctx context.Context, name string) (io.ReadCloser, error)
	// List returns the stored names, sorted.
	List(ctx context.Context) ([]string, error)
	Remove(ctx context.Context, name string) error
}

// Dir stores backups as files in a directory.
type Dir string

func (d Dir) path(name string) (string, error) {
	if name == "" || strings.ContainsAny(name, `/\`) || strings.HasPrefix(name, ".") {
		return "", fmt.Errorf("backup name %q", name)
	}
	return filepath.Join(string(d), name), nil
}

// Put writes to a hidden temporary file, syncs it and renames it into place.
func (d Dir) Put(ctx context.Context, name string, r io.Reader) (int64, error) {
	p, err := d.path(name)
	if err != nil {
		return 0, err
	}
	if err := os.MkdirAll(string(d), 0o700); err != nil {
		return 0, fmt.Errorf("backup directory: %w", err)
	}
	tmp := filepath.Join(string(d), "."+name+".partial")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return 0, fmt.Errorf("backup file: %w", err)
	}
	n, err := io.Copy(f, ctxReader{ctx, r})
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, p)
	}
	if err != nil {
		os.Remove(tmp)
		return 0, fmt.Errorf("write backup %s: %w", name, err)
	}
	if dir, err := os.Open(string(d)); err == nil {
		_ = dir.Sync() // the rename durable too
		dir.Close()
	}
	return n, nil
}

func (d Dir) Open(_ context.Context, name string) (io.ReadCloser, error) {
	p, err := d.path(name)
	if err != nil {
		return nil, err
	}
	return os.Open(p)
}

func (d Dir) List(context.Context) ([]string, error) {
	es, err := os.ReadDir(string(d))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("backup directory: %w", err)
	}
	var out []string
	for _, e := range es {
		if !e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			out = append(out, e.Name())
		}
	}
	slices.Sort(out)
	return out, nil
}

func (d Dir) Remove(_ context.Context, name string) error {
	p, err := d.path(name)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// ctxReader stops a copy when ctx ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
