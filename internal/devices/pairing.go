package devices

import (
	"context"
	"database/sql"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/store"
)

// Pairing is a new pairing code, shown to the user once.
type Pairing struct {
	Code    string    `json:"code"` // ZKP-XXXX-…: 160 random bits in base32, for typing
	URI     string    `json:"uri"`  // what the QR code holds: the server and the code
	Expires time.Time `json:"expires_at"`
}

// codeBytes is the randomness of a pairing code: 160 bits, 32 base32
// characters, still typeable on a phone.
const codeBytes = 20

// NewPairing makes a one-time pairing code for the subject's own session:
// the device that redeems it acts as this account, in this role, at this
// assurance. base is the server's public URL, for the QR code.
func (s *Service) NewPairing(ctx context.Context, subj access.Subject, base string) (Pairing, error) {
	switch subj.Kind() {
	case access.KindPerson, access.KindProfessional, access.KindStaff:
	default:
		return Pairing{}, refuse(http.StatusForbidden, "Forbidden", "only a logged-on user's session pairs a device")
	}
	if subj.AccountID() == "" || subj.Role() == "" {
		return Pairing{}, refuse(http.StatusForbidden, "Forbidden", "choose a role first")
	}
	b := make([]byte, codeBytes)
	if _, err := io.ReadFull(s.rand, b); err != nil {
		return Pairing{}, fmt.Errorf("devices: randomness: %w", err)
	}
	raw := base32.StdEncoding.EncodeToString(b)
	groups := make([]string, 0, len(raw)/4)
	for i := 0; i < len(raw); i += 4 {
		groups = append(groups, raw[i:i+4])
	}
	code := "ZKP-" + strings.Join(groups, "-")
	now := s.clock.Now()
	p := Pairing{Code: code, Expires: now.Add(PairingTTL),
		URI: "zorgkluis-pair:?" + url.Values{"server": {base}, "code": {code}}.Encode()}
	err := s.db.Tx(ctx, func(tx *store.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO devices_pairings (hash, tenant_id, account_id, role, assurance, on_behalf_of, created_at, expires_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, hash(normalCode(code)), subj.TenantID(), subj.AccountID(), string(subj.Role()),
			int64(subj.Assurance()), subj.OnBehalfOf(), clock.Micros(now), clock.Micros(p.Expires)); err != nil {
			return fmt.Errorf("devices: store pairing code: %w", err)
		}
		return s.append(ctx, tx, actorEvent(subj, "", "pairing-code"))
	})
	if err != nil {
		return Pairing{}, err
	}
	return p, nil
}

// normalCode is the form a code is hashed in: upper case, without the
// prefix, dashes and spaces, so "zkp-abcd efgh" is the same code.
func normalCode(c string) string {
	c = strings.ToUpper(strings.TrimSpace(c))
	c = strings.TrimPrefix(c, "ZKP")
	return strings.NewReplacer("-", "", " ", "").Replace(c)
}

// PairRequest is what a device sends to redeem a code.
type PairRequest struct {
	Code       string          `json:"code"`
	PublicKey  json.RawMessage `json:"public_key,omitempty"`      // a JWK (kty EC, crv P-256)
	PublicSPKI string          `json:"public_key_spki,omitempty"` // or base64 of the SubjectPublicKeyInfo DER
	PIN        string          `json:"pin"`
	Name       string          `json:"name"` // e.g. "iPhone van Sanne"
}

// Paired is the answer to a redeemed code.
type Paired struct {
	DeviceID       string `json:"device_id"`
	PINIdleSeconds int    `json:"pin_idle_seconds"`
}

var errCode = refuse(http.StatusBadRequest, "Pairing refused", "the pairing code is unknown, expired or used")

// Pair redeems a pairing code: the device is registered with its public key
// and a verifier of its PIN, acting as the account that made the code.
// An unknown, expired or used code gets one answer.
func (s *Service) Pair(ctx context.Context, req PairRequest) (Paired, error) {
	key, err := parseKey(req.PublicKey, req.PublicSPKI)
	if err != nil {
		return Paired{}, err
	}
	if err := checkPIN(req.PIN); err != nil {
		return Paired{}, err
	}
	name := strings.TrimSpace(req.Name)
	if name == "" || len(name) > 100 || !utf8.ValidString(name) || strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return Paired{}, refuse(http.StatusBadRequest, "Invalid name", "name must be 1 to 100 bytes of text on one line")
	}
	code := normalCode(req.Code)
	if len(code) != 32 {
		return Paired{}, errCode
	}
	now := s.clock.Now()
	var p struct {
		tenant, account, role, onBehalf string
		level, expires                  int64
		used                            sql.NullInt64
	}
	err = s.db.QueryRowContext(ctx, `SELECT tenant_id, account_id, role, assurance, on_behalf_of, expires_at, used_at FROM devices_pairings WHERE hash = $1`,
		hash(code)).Scan(&p.tenant, &p.account, &p.role, &p.level, &p.onBehalf, &p.expires, &p.used)
	if errors.Is(err, sql.ErrNoRows) {
		return Paired{}, errCode
	}
	if err != nil {
		return Paired{}, fmt.Errorf("devices: read pairing code: %w", err)
	}
	d := &row{tenantID: p.tenant, accountID: p.account, role: access.Role(p.role), assurance: access.Level(p.level), onBehalfOf: p.onBehalf}
	if p.used.Valid || p.expires <= clock.Micros(now) {
		return Paired{}, s.refused(ctx, d, "pair", "the pairing code is expired or used", errCode)
	}
	// The verifier is made before the write transaction: argon2id takes a
	// while, and SQLite has one writer.
	pinHash, err := s.hasher.Hash(ctx, req.PIN)
	if err != nil {
		return Paired{}, fmt.Errorf("devices: hash PIN: %w", err)
	}
	id, err := s.random(16)
	if err != nil {
		return Paired{}, err
	}
	d.id, d.name = "dev-"+id, name
	err = s.db.Tx(ctx, func(tx *store.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE devices_pairings SET used_at = $2 WHERE hash = $1 AND used_at IS NULL AND expires_at > $2
			AND EXISTS (SELECT 1 FROM accounts a WHERE a.id = devices_pairings.account_id AND a.status = 'active')`, hash(code), clock.Micros(now))
		if err != nil {
			return fmt.Errorf("devices: spend pairing code: %w", err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return errCode
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO devices (id, tenant_id, account_id, role, assurance, on_behalf_of, name, public_key, pin_hash,
			status, created_at, last_active_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'active', $10, $10)`,
			d.id, d.tenantID, d.accountID, string(d.role), int64(d.assurance), d.onBehalfOf, name, key, pinHash, clock.Micros(now)); err != nil {
			return fmt.Errorf("devices: store device: %w", err)
		}
		return s.append(ctx, tx, d.event("pair", audit.OutcomeSuccess, ""))
	})
	if err != nil {
		return Paired{}, err
	}
	return Paired{DeviceID: d.id, PINIdleSeconds: int(PINIdle / time.Second)}, nil
}

// checkPIN refuses a PIN that is not 5 to 12 digits, or one anyone would
// try first (one digit repeated, a run up or down).
func checkPIN(pin string) error {
	if len(pin) < 5 || len(pin) > 12 || strings.ContainsFunc(pin, func(r rune) bool { return r < '0' || r > '9' }) {
		return refuse(http.StatusBadRequest, "Invalid PIN", "the PIN must be 5 to 12 digits")
	}
	same, up, down := true, true, true
	for i := 1; i < len(pin); i++ {
		same = same && pin[i] == pin[0]
		up = up && pin[i] == pin[i-1]+1
		down = down && pin[i] == pin[i-1]-1
	}
	if same || up || down {
		return refuse(http.StatusBadRequest, "Invalid PIN", "choose a PIN that is not one digit repeated or a run such as 12345")
	}
	return nil
}

// refused logs a refused step of a known device or pairing and returns e.
func (s *Service) refused(ctx context.Context, d *row, step, reason string, e *Error) error {
	if err := s.append(ctx, s.db, d.event(step, audit.OutcomeFailed, reason)); err != nil {
		return err
	}
	return e
}
