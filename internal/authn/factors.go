package authn

import (
	"context"
	crand "crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base32"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/change"
	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/identity"
	"github.com/zorgkluis/zorgkluis/internal/store"
)

// FactorWebAuthn is a WebAuthn security key or passkey (webauthn.go).
const FactorWebAuthn = "webauthn"

// ErrLastStrongFactor refuses removing the only strong second factor.
var ErrLastStrongFactor = errors.New("this is the last strong second factor; enrol another one first")

// ErrWeakFactorRefused means SMS or e-mail cannot be used: the tenant
// switched weak factors off, or the account has no strong factor.
var ErrWeakFactorRefused = errors.New("SMS and e-mail codes are not available for this account")

// assurance is NEN 7512 Tabel 6 applied to the registration method
// (Tabel 5, 1..4) and the factors of one log-on (AUTH-6):
//
//	means used                          reg. 1  reg. 2  reg. 3  reg. 4
//	none                                Laag    Laag    Laag    Laag
//	password only (geheime kennis)      Laag    Midden  Midden  Midden
//	password + TOTP (token, combined)   Laag    Midden  Hoog    Hoog
//	password + WebAuthn (token, CWA-
//	  like key, combined)               Laag    Midden  Hoog    Zeer Hoog
//	password + SMS/e-mail/recovery code Laag    Midden  Midden  Midden
//	upstream log-on (SSO) + its proven
//	  second factor, or + local factor  as password + TOTP (or + that factor)
//
// TOTP stays Hoog at registration 4: a TOTP seed is not a CWA 14169 token
// issued through a watertight procedure. SMS and e-mail codes and recovery
// codes prove possession only weakly (a phone number or mailbox can be
// taken over; a printed code can be copied), so they never exceed Midden,
// and health data, which needs Hoog, takes TOTP or WebAuthn.
func assurance(registrationMethod int, factors []string) access.Level {
	// An upstream log-on (FactorSSO) stands for the knowledge factor; its
	// proof of a second factor counts as a TOTP would: the platform cannot
	// tell a security key from an app behind the provider's amr.
	password := slices.Contains(factors, "pwd") || slices.Contains(factors, FactorSSO)
	second := ""
	if slices.Contains(factors, FactorUpstreamMFA) {
		second = FactorTOTP
	}
	for _, f := range []string{FactorWebAuthn, FactorTOTP, FactorSMS, FactorEmail, FactorRecovery} {
		if second != "" {
			break
		}
		if slices.Contains(factors, f) {
			second = f
			break
		}
	}
	switch {
	case !password && second == "":
		return access.Laag
	case registrationMethod <= 1:
		return access.Laag
	case registrationMethod == 2:
		return access.Midden
	case !password || second == "":
		return access.Midden // one factor only
	case second == FactorWebAuthn && registrationMethod >= 4:
		return access.ZeerHoog
	case second == FactorWebAuthn || second == FactorTOTP:
		return access.Hoog
	default:
		return access.Midden
	}
}

func (s *Service) assuranceFor(ctx context.Context, acc identity.Account, factors []string) (access.Level, error) {
	return assurance(acc.RegistrationMethod, factors), nil
}

func hexHash(h []byte) string { return hex.EncodeToString(h) }

// strongFactors counts the account's usable TOTP credentials and the
// security keys that verify their user.
func (s *Service) strongFactors(ctx context.Context, q store.Querier, accountID string) (int, error) {
	var n int64
	if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM totp_credentials WHERE account_id = $1 AND revoked_at IS NULL`, accountID).Scan(&n); err != nil {
		return 0, fmt.Errorf("strong factors: %w", err)
	}
	k, err := webauthnStrong(ctx, q, accountID)
	return int(n) + k, err
}

// RemoveTOTP revokes a TOTP credential, unless it is the account's last
// strong factor (AUTH-2). The account holder is told and the change logged.
func (s *Service) RemoveTOTP(ctx context.Context, accountID, credentialID string) error {
	var label string
	err := s.db.Tx(ctx, func(tx *store.Tx) error {
		n, err := s.strongFactors(ctx, tx, accountID)
		if err != nil {
			return err
		}
		if n <= 1 {
			return ErrLastStrongFactor
		}
		err = tx.QueryRowContext(ctx, `SELECT label FROM totp_credentials WHERE id = $1 AND account_id = $2 AND revoked_at IS NULL`, credentialID, accountID).Scan(&label)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("remove totp: %w", identity.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("remove totp: %w", err)
		}
		res, err := tx.ExecContext(ctx, `UPDATE totp_credentials SET revoked_at = $1 WHERE id = $2 AND account_id = $3 AND revoked_at IS NULL`,
			clock.Micros(s.clock.Now()), credentialID, accountID)
		if err != nil {
			return fmt.Errorf("remove totp: %w", err)
		}
		if k, _ := res.RowsAffected(); k != 1 {
			return fmt.Errorf("remove totp: %w", identity.ErrNotFound)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := s.factorChanged(ctx, accountID, factorChange{outcome: "factor-removed", factor: FactorTOTP, ref: strconv.Quote(label),
		nl: "een authenticator-app verwijderd", en: "an authenticator app was removed"}); err != nil {
		return fmt.Errorf("remove totp: %w", err)
	}
	return nil
}

// TOTPCredentials lists the ids of the account's usable TOTP credentials.
func (s *Service) TOTPCredentials(ctx context.Context, accountID string) ([]string, error) {
	apps, err := s.TOTPApps(ctx, accountID)
	ids := make([]string, 0, len(apps))
	for _, a := range apps {
		ids = append(ids, a.ID)
	}
	return ids, err
}

// TOTPApp is a usable authenticator app of an account.
type TOTPApp struct {
	ID        string // our id, for the remove and rename forms only
	Label     string // the owner's name for it
	CreatedAt time.Time
}

// TOTPApps lists the account's usable authenticator apps, oldest first.
func (s *Service) TOTPApps(ctx context.Context, accountID string) ([]TOTPApp, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, label, created_at FROM totp_credentials WHERE account_id = $1 AND revoked_at IS NULL ORDER BY created_at, id`, accountID)
	if err != nil {
		return nil, fmt.Errorf("totp credentials: %w", err)
	}
	defer rows.Close()
	var out []TOTPApp
	for rows.Next() {
		var a TOTPApp
		var created int64
		if err := rows.Scan(&a.ID, &a.Label, &created); err != nil {
			return nil, fmt.Errorf("totp credentials: %w", err)
		}
		a.CreatedAt = clock.FromMicros(created)
		out = append(out, a)
	}
	return out, rows.Err()
}

// FactorLabelMax is the longest name of a factor, in characters.
const FactorLabelMax = 64

// ErrFactorLabel refuses a factor's name that is too long or holds control
// characters (which would let a name break a log line).
var ErrFactorLabel = errors.New("a factor's name has 1 to 64 characters and no control characters")

// factorLabel is the owner's name for a factor, trimmed; an empty one is
// allowed only where a default takes its place (allowEmpty).
func factorLabel(label string, allowEmpty bool) (string, error) {
	label = strings.TrimSpace(label)
	if !utf8.ValidString(label) || utf8.RuneCountInString(label) > FactorLabelMax || label == "" && !allowEmpty {
		return "", ErrFactorLabel
	}
	for _, r := range label {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return "", ErrFactorLabel
		}
	}
	return label, nil
}

// defaultLabel names a factor enrolled without a name by its kind and its
// place among the account's factors of that kind, as migration 00150 named
// the existing ones.
func defaultLabel(ctx context.Context, q store.Querier, table, kind, accountID string) (string, error) {
	var n int64
	if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+table+` WHERE account_id = $1`, accountID).Scan(&n); err != nil {
		return "", fmt.Errorf("factor name: %w", err)
	}
	return fmt.Sprintf("%s %d", kind, n+1), nil
}

// RenameFactor gives one of the account's own usable factors (FactorTOTP or
// FactorWebAuthn) a new name, and logs the change with both names. Another
// account's factor is not found.
func (s *Service) RenameFactor(ctx context.Context, accountID, factor, id, label, source string) error {
	label, err := factorLabel(label, false)
	if err != nil {
		return err
	}
	table, column := "totp_credentials", "label"
	switch factor {
	case FactorTOTP:
	case FactorWebAuthn:
		table, column = "webauthn_credentials", "name"
	default:
		return fmt.Errorf("rename factor: kind %q: %w", factor, identity.ErrNotFound)
	}
	acc, err := s.ids.Account(ctx, accountID)
	if err != nil {
		return fmt.Errorf("rename factor: %w", err)
	}
	var old string
	err = s.db.QueryRowContext(ctx, `SELECT `+column+` FROM `+table+` WHERE id = $1 AND account_id = $2 AND revoked_at IS NULL`, id, accountID).Scan(&old)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("rename factor: %w", identity.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("rename factor: %w", err)
	}
	if old == label {
		return nil
	}
	set := func(from, to string) error {
		_, err := s.db.ExecContext(ctx, `UPDATE `+table+` SET `+column+` = $1 WHERE id = $2 AND account_id = $3 AND `+column+` = $4`, to, id, accountID, from)
		return err
	}
	if err := set(old, label); err != nil {
		return fmt.Errorf("rename factor: %w", err)
	}
	if source == "" {
		source = audit.SourceFrom(ctx).Addr
	}
	ev := event{accountID: acc.ID, tenantID: acc.TenantID, username: acc.Username, source: source, factor: factor,
		outcome: "factor-renamed", reason: fmt.Sprintf("renamed %q to %q", old, label)}
	if err := s.recordEvent(ctx, ev); err != nil {
		// Unlogged, the change must not stand (LOG-3).
		if uerr := set(label, old); uerr != nil {
			return fmt.Errorf("rename factor: %w (and restoring the old name failed: %v)", err, uerr)
		}
		return fmt.Errorf("rename factor: %w", err)
	}
	return nil
}

// TenantAuthSettings are a tenant's choices about log-on.
type TenantAuthSettings struct {
	WeakFactors    bool          // SMS and e-mail codes allowed (default true)
	PasswordMaxAge time.Duration // periodic password expiry; 0 = off (default)
}

// TenantSettings returns the tenant's log-on settings, defaults when unset.
func (s *Service) TenantSettings(ctx context.Context, tenantID string) (TenantAuthSettings, error) {
	t := TenantAuthSettings{WeakFactors: true}
	if tenantID == "" {
		return t, nil
	}
	var age int64
	err := s.db.QueryRowContext(ctx, `SELECT weak_factors, password_max_age FROM tenant_auth_settings WHERE tenant_id = $1`, tenantID).Scan(&t.WeakFactors, &age)
	if errors.Is(err, sql.ErrNoRows) {
		return t, nil
	}
	if err != nil {
		return t, fmt.Errorf("tenant auth settings: %w", err)
	}
	t.PasswordMaxAge = time.Duration(age) * time.Second
	return t, nil
}

// ErrNoSender refuses switching weak factors on where no sender for SMS or
// e-mail codes is configured: they could never be delivered.
var ErrNoSender = errors.New("SMS and e-mail codes need a configured sender (smtp-addr or sms-webhook)")

// SetTenantSettings stores a tenant's log-on settings directly: set-up
// and tests. An admin's change goes through ProposeTenantSettings (four
// eyes, GOV-1). Switching weak factors off takes effect at the next code
// sent or checked; switching them on needs a configured sender.
func (s *Service) SetTenantSettings(ctx context.Context, tenantID string, t TenantAuthSettings) error {
	if err := s.checkTenantSettings(t); err != nil {
		return err
	}
	return s.db.Tx(ctx, func(tx *store.Tx) error { return writeTenantSettings(ctx, tx, tenantID, t) })
}

// ErrSettingsInvalid: a password expiry outside 0 (off) or 30..730 days.
var ErrSettingsInvalid = errors.New("password_max_age: 0 (off) or 30 to 730 days")

func (s *Service) checkTenantSettings(t TenantAuthSettings) error {
	if t.WeakFactors && !s.canSend(FactorSMS) && !s.canSend(FactorEmail) {
		return ErrNoSender
	}
	if t.PasswordMaxAge != 0 && (t.PasswordMaxAge < 30*24*time.Hour || t.PasswordMaxAge > 730*24*time.Hour) {
		return ErrSettingsInvalid
	}
	return nil
}

func writeTenantSettings(ctx context.Context, tx *store.Tx, tenantID string, t TenantAuthSettings) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM tenant_auth_settings WHERE tenant_id = $1`, tenantID); err != nil {
		return fmt.Errorf("tenant auth settings: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO tenant_auth_settings (tenant_id, weak_factors, password_max_age) VALUES ($1, $2, $3)`,
		tenantID, t.WeakFactors, int64(t.PasswordMaxAge/time.Second)); err != nil {
		return fmt.Errorf("tenant auth settings: %w", err)
	}
	return nil
}

// ChangeTenantSettings is the kind of four-eyes change (GOV-1) of a
// tenant's log-on settings: the weak-factor switch and password expiry.
const ChangeTenantSettings = "authn.tenant-settings"

type settingsChange struct {
	WeakFactors       bool  `json:"weak_factors"`
	PasswordMaxAgeSec int64 `json:"password_max_age_seconds"`
}

// ErrNoChanges: the service was built without the four-eyes service.
var ErrNoChanges = errors.New("authn: no four-eyes service configured for settings changes")

// ProposeTenantSettings proposes new log-on settings for by's tenant; they
// take effect when another application admin approves the returned change
// request. The caller has checked by's role.
func (s *Service) ProposeTenantSettings(ctx context.Context, by change.Actor, t TenantAuthSettings) (change.Request, error) {
	if s.settings.Changes == nil {
		return change.Request{}, ErrNoChanges
	}
	if by.TenantID == "" {
		return change.Request{}, fmt.Errorf("log-on settings are an organisation's: %w", change.ErrInvalid)
	}
	if err := s.checkTenantSettings(t); err != nil {
		return change.Request{}, err
	}
	summary := fmt.Sprintf("log-on settings: SMS and e-mail codes allowed %t, password expiry %s", t.WeakFactors, "off")
	if t.PasswordMaxAge > 0 {
		summary = fmt.Sprintf("log-on settings: SMS and e-mail codes allowed %t, password expiry after %d days", t.WeakFactors, int(t.PasswordMaxAge/(24*time.Hour)))
	}
	var req change.Request
	err := s.db.Tx(ctx, func(tx *store.Tx) error {
		var err error
		req, err = s.settings.Changes.Propose(ctx, tx, by, change.Proposal{Kind: ChangeTenantSettings, Summary: summary,
			Payload: settingsChange{WeakFactors: t.WeakFactors, PasswordMaxAgeSec: int64(t.PasswordMaxAge / time.Second)}})
		return err
	})
	return req, err
}

func (s *Service) registerChanges() {
	s.settings.Changes.Register(ChangeTenantSettings, change.Handler{
		Approvers: []string{string(access.RoleAppAdmin)},
		Apply: func(ctx context.Context, tx *store.Tx, r change.Request, by change.Actor) error {
			var p settingsChange
			if err := json.Unmarshal(r.Payload, &p); err != nil {
				return fmt.Errorf("settings change: %w", err)
			}
			t := TenantAuthSettings{WeakFactors: p.WeakFactors, PasswordMaxAge: time.Duration(p.PasswordMaxAgeSec) * time.Second}
			if err := s.checkTenantSettings(t); err != nil {
				// The sender may have been removed since the proposal.
				return fmt.Errorf("%w: %w", err, change.ErrInapplicable)
			}
			return writeTenantSettings(ctx, tx, r.TenantID, t)
		},
	})
}

// weakAllowed: SMS and e-mail only beside a strong factor, and only when
// the tenant has not switched them off (AUTH-2).
func (s *Service) weakAllowed(ctx context.Context, accountID string) (bool, error) {
	if !s.canSend(FactorSMS) && !s.canSend(FactorEmail) {
		return false, nil
	}
	acc, err := s.ids.Account(ctx, accountID)
	if err != nil {
		return false, fmt.Errorf("weak factors: %w", err)
	}
	t, err := s.TenantSettings(ctx, acc.TenantID)
	if err != nil || !t.WeakFactors {
		return false, err
	}
	n, err := s.strongFactors(ctx, s.db, accountID)
	return n > 0, err
}

// Recovery codes: ten one-time codes of 10 base32 symbols (50 bits each),
// stored as SHA-256; their entropy makes a slow hash unnecessary.
const recoveryCount = 10

var recoveryEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

func normalizeRecovery(code string) string {
	return strings.ToUpper(strings.NewReplacer("-", "", " ", "").Replace(code))
}

// NewRecoveryCodes replaces the account's recovery codes with fresh ones and
// returns them, shown to the user once. The account holder is told and the
// change logged; when the log write fails the codes are not handed out.
func (s *Service) NewRecoveryCodes(ctx context.Context, accountID string) ([]string, error) {
	codes := make([]string, recoveryCount)
	now := clock.Micros(s.clock.Now())
	err := s.db.Tx(ctx, func(tx *store.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE recovery_codes SET used_at = $1 WHERE account_id = $2 AND used_at IS NULL`, now, accountID); err != nil {
			return fmt.Errorf("recovery codes: %w", err)
		}
		for i := range codes {
			var b [7]byte
			if _, err := io.ReadFull(s.rand, b[:]); err != nil {
				return fmt.Errorf("recovery codes: %w", err)
			}
			raw := recoveryEncoding.EncodeToString(b[:])[:10]
			codes[i] = raw[:5] + "-" + raw[5:]
			id, err := s.newID()
			if err != nil {
				return err
			}
			sum := sha256.Sum256([]byte(raw))
			if _, err := tx.ExecContext(ctx, `INSERT INTO recovery_codes (id, account_id, code_hash, created_at) VALUES ($1, $2, $3, $4)`,
				id, accountID, sum[:], now); err != nil {
				return fmt.Errorf("recovery codes: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := s.factorChanged(ctx, accountID, factorChange{outcome: "factor-enrolled", factor: FactorRecovery, ref: fmt.Sprintf("%d codes, the previous ones revoked", recoveryCount),
		nl: "een nieuwe set herstelcodes gemaakt (de vorige werken niet meer)", en: "a new set of recovery codes was made (the previous ones no longer work)"}); err != nil {
		return nil, fmt.Errorf("recovery codes: %w", err)
	}
	return codes, nil
}

// useRecoveryCode consumes a matching unused code; a second use fails.
func (s *Service) useRecoveryCode(ctx context.Context, accountID, code string, now time.Time) (bool, error) {
	sum := sha256.Sum256([]byte(normalizeRecovery(code)))
	res, err := s.db.ExecContext(ctx, `UPDATE recovery_codes SET used_at = $1 WHERE account_id = $2 AND code_hash = $3 AND used_at IS NULL`,
		clock.Micros(now), accountID, sum[:])
	if err != nil {
		return false, fmt.Errorf("recovery code: %w", err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// Codes sent by SMS or e-mail: 8 digits, single use, CodeTTL (5 min), at
// most maxCodeTries wrong tries. A log-on code belongs to its attempt, whose
// Complete is itself single use.
const (
	codeDigits         = 8
	maxCodeTries       = 3
	maxCodesPerAttempt = 3
)

func (s *Service) newCode() (string, error) {
	n, err := randInt(s.rand, 100_000_000)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%0*d", codeDigits, n), nil
}

func randInt(r io.Reader, max int64) (int64, error) {
	n, err := crand.Int(r, big.NewInt(max))
	if err != nil {
		return 0, fmt.Errorf("random code: %w", err)
	}
	return n.Int64(), nil
}

func codeHash(purpose, ref, code string) []byte {
	sum := sha256.Sum256([]byte(purpose + "\x00" + ref + "\x00" + code))
	return sum[:]
}

// issueCode stores a fresh code and sends it.
func (s *Service) issueCode(ctx context.Context, accountID, purpose, ref, channel, address string) error {
	code, err := s.newCode()
	if err != nil {
		return err
	}
	id, err := s.newID()
	if err != nil {
		return err
	}
	now := s.clock.Now()
	if _, err := s.db.ExecContext(ctx, `INSERT INTO auth_codes (id, account_id, purpose, ref, channel, code_hash, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, id, accountID, purpose, ref, channel, codeHash(purpose, ref, code),
		clock.Micros(now), clock.Micros(now.Add(s.settings.CodeTTL))); err != nil {
		return fmt.Errorf("issue code: %w", err)
	}
	msg := fmt.Sprintf("Uw zorgkluis-code is %s. Deel deze code met niemand. / Your zorgkluis code is %s. Never share it.", code, code)
	if err := s.settings.Sender.Send(ctx, Message{Channel: channel, To: address, Subject: "zorgkluis code", Body: msg}); err != nil {
		return fmt.Errorf("issue code: %w", err)
	}
	return nil
}

// useCode checks a code for (purpose, ref), consuming it on success and
// counting wrong tries.
func (s *Service) useCode(ctx context.Context, accountID, purpose, ref, channel, code string, now time.Time) (bool, error) {
	ok := false
	err := s.db.Tx(ctx, func(tx *store.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT id, code_hash FROM auth_codes WHERE account_id = $1 AND purpose = $2 AND ref = $3 AND channel = $4
			AND used_at IS NULL AND expires_at > $5 AND attempts < $6`, accountID, purpose, ref, channel, clock.Micros(now), maxCodeTries)
		if err != nil {
			return err
		}
		type row struct {
			id string
			h  []byte
		}
		var rs []row
		for rows.Next() {
			var r row
			if err := rows.Scan(&r.id, &r.h); err != nil {
				rows.Close()
				return err
			}
			rs = append(rs, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		want := codeHash(purpose, ref, code)
		for _, r := range rs {
			if subtle.ConstantTimeCompare(r.h, want) == 1 {
				res, err := tx.ExecContext(ctx, `UPDATE auth_codes SET used_at = $1 WHERE id = $2 AND used_at IS NULL`, clock.Micros(now), r.id)
				if err != nil {
					return err
				}
				n, _ := res.RowsAffected()
				ok = n == 1
				return nil
			}
		}
		_, err = tx.ExecContext(ctx, `UPDATE auth_codes SET attempts = attempts + 1 WHERE account_id = $1 AND purpose = $2 AND ref = $3 AND used_at IS NULL`,
			accountID, purpose, ref)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("check code: %w", err)
	}
	return ok, nil
}

// SendLogonCode sends an SMS or e-mail code for a log-on attempt. It answers
// nil whatever the account, so it reveals nothing (AUTH-4); a code goes out
// only when the attempt's password was right, the account has a verified
// address for the channel, a strong factor, and its tenant allows weak
// factors.
func (s *Service) SendLogonCode(ctx context.Context, attemptToken, channel string) error {
	if channel != FactorSMS && channel != FactorEmail || !s.canSend(channel) {
		return nil
	}
	h := hashToken(attemptToken)
	var accountID sql.NullString
	var firstOK bool
	err := s.db.QueryRowContext(ctx, `SELECT account_id, first_ok FROM login_attempts WHERE id_hash = $1 AND used_at IS NULL AND expires_at > $2`,
		h, clock.Micros(s.clock.Now())).Scan(&accountID, &firstOK)
	if errors.Is(err, sql.ErrNoRows) || err == nil && (!accountID.Valid || !firstOK) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("send code: %w", err)
	}
	ok, err := s.weakAllowed(ctx, accountID.String)
	if err != nil || !ok {
		return err
	}
	// At most maxCodesPerAttempt messages per attempt: no SMS bombing.
	var sent int64
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM auth_codes WHERE ref = $1`, hexHash(h)).Scan(&sent); err != nil {
		return fmt.Errorf("send code: %w", err)
	}
	if sent >= maxCodesPerAttempt {
		return nil
	}
	var addr string
	err = s.db.QueryRowContext(ctx, `SELECT address FROM contact_factors WHERE account_id = $1 AND channel = $2 AND verified_at IS NOT NULL AND revoked_at IS NULL
		ORDER BY verified_at DESC LIMIT 1`, accountID.String, channel).Scan(&addr)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("send code: %w", err)
	}
	return s.issueCode(ctx, accountID.String, "logon", hexHash(h), channel, addr)
}

// AddContact starts enrolment of a phone number (FactorSMS) or e-mail
// address (FactorEmail): it sends a code there and returns the contact id
// to confirm with. Weak factors need a strong one first (AUTH-2).
func (s *Service) AddContact(ctx context.Context, accountID, channel, address string) (string, error) {
	if channel != FactorSMS && channel != FactorEmail {
		return "", fmt.Errorf("add contact: unknown channel %q", channel)
	}
	address = strings.TrimSpace(address)
	if address == "" || len(address) > 254 {
		return "", errors.New("add contact: address must be 1 to 254 characters")
	}
	ok, err := s.weakAllowed(ctx, accountID)
	if err != nil {
		return "", err
	}
	if !ok || !s.canSend(channel) {
		return "", ErrWeakFactorRefused
	}
	id, err := s.newID()
	if err != nil {
		return "", err
	}
	id = "c-" + id
	if _, err := s.db.ExecContext(ctx, `INSERT INTO contact_factors (id, account_id, channel, address, created_at) VALUES ($1, $2, $3, $4, $5)`,
		id, accountID, channel, address, clock.Micros(s.clock.Now())); err != nil {
		return "", fmt.Errorf("add contact: %w", err)
	}
	if err := s.issueCode(ctx, accountID, "verify", id, channel, address); err != nil {
		return "", err
	}
	return id, nil
}

// ConfirmContact verifies a contact with the code sent to it.
func (s *Service) ConfirmContact(ctx context.Context, accountID, contactID, code string) (bool, error) {
	var channel string
	err := s.db.QueryRowContext(ctx, `SELECT channel FROM contact_factors WHERE id = $1 AND account_id = $2 AND revoked_at IS NULL`, contactID, accountID).Scan(&channel)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("confirm contact: %w", err)
	}
	now := s.clock.Now()
	ok, err := s.useCode(ctx, accountID, "verify", contactID, channel, code, now)
	if err != nil || !ok {
		return false, err
	}
	if _, err := s.db.ExecContext(ctx, `UPDATE contact_factors SET verified_at = $1 WHERE id = $2`, clock.Micros(now), contactID); err != nil {
		return false, fmt.Errorf("confirm contact: %w", err)
	}
	what := map[string][2]string{FactorSMS: {"een telefoonnummer voor sms-codes toegevoegd", "a phone number for SMS codes was added"},
		FactorEmail: {"een e-mailadres voor codes toegevoegd", "an e-mail address for codes was added"}}[channel]
	if err := s.factorChanged(ctx, accountID, factorChange{outcome: "factor-enrolled", factor: channel, ref: contactID, nl: what[0], en: what[1]}); err != nil {
		// Unlogged, the address must not count as a factor.
		if _, uerr := s.db.ExecContext(ctx, `UPDATE contact_factors SET verified_at = NULL WHERE id = $1`, contactID); uerr != nil {
			return false, fmt.Errorf("confirm contact: %w (and the unlogged contact %s is still verified: %v)", err, contactID, uerr)
		}
		return false, fmt.Errorf("confirm contact: %w", err)
	}
	return true, nil
}
