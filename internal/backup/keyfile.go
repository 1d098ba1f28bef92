package backup

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"filippo.io/age"
)

// Backups are encrypted with age (X25519) to every recipient in the
// recipients file: the installation's own backup key, whose identity the
// server keeps to restore-test each backup, and any offline key the
// operators add (one "age1..." per line, # comments allowed). The backup
// key is not a data key: a backup holds the database as it is, with every
// health record still sealed under the patient keys, and never the master
// key, which must be kept apart (docs/operations.md).

// IdentityFile and RecipientsFile are the default names in the data directory.
const (
	IdentityFile   = "backup-identity.txt"
	RecipientsFile = "backup-recipients.txt"
)

// Keys are the loaded backup keys.
type Keys struct {
	Recipients []age.Recipient
	Identities []age.Identity // empty when the identity file is kept elsewhere
	Public     []string       // the recipients as text, for the manifest
}

// LoadKeys reads the recipients file and, when present, the identity file.
// When neither exists it creates both (identity 0600), like the master key
// on a first start, and reports created: the operator must copy the
// identity somewhere safe.
func LoadKeys(identityPath, recipientsPath string) (k Keys, created bool, err error) {
	_, errI := os.Stat(identityPath)
	_, errR := os.Stat(recipientsPath)
	if errors.Is(errI, fs.ErrNotExist) && errors.Is(errR, fs.ErrNotExist) {
		if err := createKeys(identityPath, recipientsPath); err != nil {
			return Keys{}, false, err
		}
		created = true
	}
	rb, err := os.ReadFile(recipientsPath)
	if err != nil {
		return Keys{}, false, fmt.Errorf("backup recipients: %w", err)
	}
	k.Recipients, err = age.ParseRecipients(bytes.NewReader(rb))
	if err != nil {
		return Keys{}, false, fmt.Errorf("backup recipients %s: %w", recipientsPath, err)
	}
	for _, l := range strings.Split(string(rb), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			k.Public = append(k.Public, l)
		}
	}
	if ib, err := os.ReadFile(identityPath); err == nil {
		if k.Identities, err = age.ParseIdentities(bytes.NewReader(ib)); err != nil {
			return Keys{}, false, fmt.Errorf("backup identity %s: %w", identityPath, err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return Keys{}, false, fmt.Errorf("backup identity: %w", err)
	}
	return k, created, nil
}

// LoadIdentities reads an age identity file (for restore).
func LoadIdentities(path string) ([]age.Identity, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("backup identity: %w", err)
	}
	ids, err := age.ParseIdentities(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("backup identity %s: %w", path, err)
	}
	return ids, nil
}

func createKeys(identityPath, recipientsPath string) error {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		return fmt.Errorf("backup key: %w", err)
	}
	pub := id.Recipient().String()
	for _, dir := range []string{filepath.Dir(identityPath), filepath.Dir(recipientsPath)} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("backup key: %w", err)
		}
	}
	ident := fmt.Sprintf("# zorgkluis backup identity: decrypts the backups. Keep a copy offline, apart from the master key.\n# public key: %s\n%s\n", pub, id.String())
	if err := writeExclusive(identityPath, []byte(ident), 0o600); err != nil {
		return err
	}
	recips := fmt.Sprintf("# zorgkluis encrypts every backup to each age recipient below (one per line).\n# Add an offline key (age-keygen) so a backup can be read without this server.\n%s\n", pub)
	return writeExclusive(recipientsPath, []byte(recips), 0o644)
}

func writeExclusive(path string, b []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("backup key: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("backup key: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("backup key: %w", err)
	}
	return f.Close()
}
