package authn

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/identity"
	"github.com/zorgkluis/zorgkluis/internal/store"
)

// WebAuthn security keys and passkeys as a second factor (AUTH-2).
//
// Registration happens in a logged-on session; log-on happens inside a
// log-on attempt, after the password, exactly like a TOTP code: the
// assertion is handed to Complete as the "code" of FactorWebAuthn, so it
// counts only for its own attempt and within the attempt's window (AUTH-1).
//
// Every ceremony's challenge is kept server-side as a SHA-256 hash, bound to
// the attempt or session it was begun for, valid for webauthnCeremonyTTL and
// consumed by its first use, so a replayed response fails.
//
// Log-on uses discoverable credentials (passkeys, resident keys) with an
// empty allow list: the options sent after the password are the same for
// every attempt, so they reveal neither whether the password was right nor
// which keys an account has (AUTH-4). Registration therefore asks for a
// resident key.
//
// User verification (PIN or biometrics on the key) is required when the key
// is the account's only possession factor, that is when the account has no
// authenticator app: the key must then prove who holds it, not only that
// someone does. The options always say "preferred" (so they say nothing
// about the account); the server enforces the requirement on the response.

const (
	webauthnCeremonyTTL = 5 * time.Minute
	webauthnMaxPending  = 5  // unfinished ceremonies per attempt or session
	webauthnMaxKeys     = 20 // registered keys per account
	webauthnMaxResponse = 64 << 10
)

var (
	// ErrWebAuthnOff means the installation has no relying party configured.
	ErrWebAuthnOff = errors.New("security keys are not configured on this installation")
	// ErrWebAuthnCeremony means a registration response did not verify: an
	// unknown, expired or already used challenge, another session's
	// challenge, a bad signature, a wrong origin or missing user verification.
	ErrWebAuthnCeremony = errors.New("the security key response could not be verified; start again")
	// ErrWebAuthnName refuses a bad key name; it is ErrFactorLabel.
	ErrWebAuthnName = ErrFactorLabel
	// ErrWebAuthnTooMany refuses more pending ceremonies or keys than allowed.
	ErrWebAuthnTooMany = errors.New("too many security keys or unfinished registrations")
)

// WebAuthnCredential is a registered security key or passkey.
type WebAuthnCredential struct {
	ID           string // our id, used to remove it
	Name         string // chosen by the user
	AAGUID       string // authenticator model (hex UUID; zero when not disclosed)
	Transports   []string
	UserVerified bool // the key verified its user (PIN, biometrics) at registration
	CreatedAt    time.Time
	LastUsed     time.Time // zero when never used to log on
}

// WebAuthnRelyingParty derives the relying party id and the accepted
// origins. rpID and origin are the configured values (either may be empty);
// base is the URL the server listens on. Without a configured id the host of
// base is used, and a loopback IP address becomes "localhost" (WebAuthn does
// not accept IP addresses). Without a configured origin it is base's scheme
// and port with the relying party id as host.
func WebAuthnRelyingParty(rpID, origin, base string) (string, []string, error) {
	u, err := url.Parse(base)
	if err != nil || u.Host == "" {
		return "", nil, fmt.Errorf("webauthn: base URL %q: not an absolute URL", base)
	}
	if rpID == "" {
		rpID = u.Hostname()
		if ip := net.ParseIP(rpID); ip != nil {
			if !ip.IsLoopback() && !ip.IsUnspecified() {
				return "", nil, fmt.Errorf("webauthn: the server address %s is an IP address; set the relying party id (webauthn-rp-id)", rpID)
			}
			rpID = "localhost"
		}
	}
	rpID = strings.ToLower(rpID)
	if err := protocol.ValidateRPID(rpID); err != nil {
		return "", nil, fmt.Errorf("webauthn: relying party id %q: %w", rpID, err)
	}
	if origin == "" {
		origin = u.Scheme + "://" + rpID
		if p := u.Port(); p != "" && !(u.Scheme == "https" && p == "443") && !(u.Scheme == "http" && p == "80") {
			origin += ":" + p
		}
	}
	return rpID, []string{origin}, nil
}

// EnableWebAuthn configures the relying party. Call it once at start-up,
// before serving; until then FactorWebAuthn is not offered.
func (s *Service) EnableWebAuthn(rpID string, origins []string) error {
	wa, err := webauthn.New(&webauthn.Config{
		RPID:          rpID,
		RPDisplayName: s.settings.Issuer,
		RPOrigins:     origins,
		Timeouts: webauthn.TimeoutsConfig{
			Login:        webauthn.TimeoutConfig{Timeout: 2 * time.Minute, TimeoutUVD: 2 * time.Minute},
			Registration: webauthn.TimeoutConfig{Timeout: 2 * time.Minute, TimeoutUVD: 2 * time.Minute},
		},
	})
	if err != nil {
		return fmt.Errorf("webauthn: %w", err)
	}
	s.wa = wa
	return nil
}

// WebAuthnEnabled reports whether security keys can be used.
func (s *Service) WebAuthnEnabled() bool { return s.wa != nil }

// waUser is an account as go-webauthn sees it.
type waUser struct {
	handle      []byte
	name, shown string
	creds       []webauthn.Credential
	rowIDs      []string // our ids, parallel to creds
	names       []string // their owner's names, for the security officer
	signCounts  []uint32
}

func (u *waUser) WebAuthnID() []byte                         { return u.handle }
func (u *waUser) WebAuthnName() string                       { return u.name }
func (u *waUser) WebAuthnDisplayName() string                { return u.shown }
func (u *waUser) WebAuthnCredentials() []webauthn.Credential { return u.creds }

// userHandle returns the account's random WebAuthn user handle, creating it
// on first use.
func (s *Service) userHandle(ctx context.Context, accountID string) ([]byte, error) {
	var h []byte
	err := s.db.QueryRowContext(ctx, `SELECT user_handle FROM webauthn_users WHERE account_id = $1`, accountID).Scan(&h)
	if err == nil {
		return h, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("webauthn user handle: %w", err)
	}
	h = make([]byte, 32)
	if _, err := io.ReadFull(s.rand, h); err != nil {
		return nil, fmt.Errorf("webauthn user handle: %w", err)
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO webauthn_users (account_id, user_handle) VALUES ($1, $2)`, accountID, h)
	if store.IsUniqueViolation(err) { // a concurrent request created it
		err = s.db.QueryRowContext(ctx, `SELECT user_handle FROM webauthn_users WHERE account_id = $1`, accountID).Scan(&h)
	}
	if err != nil {
		return nil, fmt.Errorf("webauthn user handle: %w", err)
	}
	return h, nil
}

// loadUser reads an active account's handle and usable credentials.
func (s *Service) loadUser(ctx context.Context, q store.Querier, acc identity.Account) (*waUser, error) {
	u := &waUser{name: acc.Username, shown: acc.DisplayName}
	if u.shown == "" {
		u.shown = acc.Username
	}
	err := q.QueryRowContext(ctx, `SELECT user_handle FROM webauthn_users WHERE account_id = $1`, acc.ID).Scan(&u.handle)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("webauthn user: %w", err)
	}
	rows, err := q.QueryContext(ctx, `SELECT id, credential_id, public_key, attestation_type, attestation_format, aaguid, transports, flags, sign_count, name
		FROM webauthn_credentials WHERE account_id = $1 AND revoked_at IS NULL ORDER BY created_at, id`, acc.ID)
	if err != nil {
		return nil, fmt.Errorf("webauthn credentials: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var c webauthn.Credential
		var id, transports, name string
		var flags, count int64
		if err := rows.Scan(&id, &c.ID, &c.PublicKey, &c.AttestationType, &c.AttestationFormat, &c.Authenticator.AAGUID, &transports, &flags, &count, &name); err != nil {
			return nil, fmt.Errorf("webauthn credentials: %w", err)
		}
		for _, t := range strings.Fields(transports) {
			c.Transport = append(c.Transport, protocol.AuthenticatorTransport(t))
		}
		c.Flags = webauthn.CredentialFlagsFromMsgpByte(byte(flags))
		c.Authenticator.SignCount = uint32(count)
		u.creds = append(u.creds, c)
		u.rowIDs = append(u.rowIDs, id)
		u.names = append(u.names, name)
		u.signCounts = append(u.signCounts, uint32(count))
	}
	return u, rows.Err()
}

// hasTOTP reports whether the account has a usable authenticator app.
func (s *Service) hasTOTP(ctx context.Context, q store.Querier, accountID string) (bool, error) {
	var n int64
	if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM totp_credentials WHERE account_id = $1 AND revoked_at IS NULL`, accountID).Scan(&n); err != nil {
		return false, fmt.Errorf("webauthn: %w", err)
	}
	return n > 0, nil
}

func (s *Service) challenge() (protocol.URLEncodedBase64, error) {
	b := make([]byte, 32)
	if _, err := io.ReadFull(s.rand, b); err != nil {
		return nil, fmt.Errorf("webauthn challenge: %w", err)
	}
	return b, nil
}

func challengeHash(challenge string) []byte {
	h := sha256.Sum256([]byte("webauthn\x00" + challenge))
	return h[:]
}

// storeCeremony keeps a ceremony's session data under its challenge hash.
// The challenge itself is blanked: the response brings it back.
func (s *Service) storeCeremony(ctx context.Context, purpose, ref, accountID string, sd *webauthn.SessionData, expires time.Time) error {
	now := s.clock.Now()
	h := challengeHash(sd.Challenge)
	stored := *sd
	stored.Challenge = ""
	data, err := json.Marshal(stored)
	if err != nil {
		return fmt.Errorf("webauthn ceremony: %w", err)
	}
	return s.db.Tx(ctx, func(tx *store.Tx) error {
		// Old ceremonies are of no use to anyone; clear them on the way.
		if _, err := tx.ExecContext(ctx, `DELETE FROM webauthn_ceremonies WHERE expires_at < $1`, clock.Micros(now.Add(-time.Hour))); err != nil {
			return fmt.Errorf("webauthn ceremony: %w", err)
		}
		var pending int64
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM webauthn_ceremonies WHERE ref = $1 AND used_at IS NULL AND expires_at > $2`,
			ref, clock.Micros(now)).Scan(&pending); err != nil {
			return fmt.Errorf("webauthn ceremony: %w", err)
		}
		if pending >= webauthnMaxPending {
			return ErrWebAuthnTooMany
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO webauthn_ceremonies (challenge_hash, purpose, ref, account_id, session_data, created_at, expires_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`, h, purpose, ref, nullable(accountID), string(data), clock.Micros(now), clock.Micros(expires)); err != nil {
			return fmt.Errorf("webauthn ceremony: %w", err)
		}
		return nil
	})
}

// takeCeremony consumes the ceremony for challenge, if it was begun for
// (purpose, ref), has not expired and was not used. ok is false otherwise.
func (s *Service) takeCeremony(ctx context.Context, purpose, ref, challenge string, now time.Time) (sd webauthn.SessionData, ok bool, err error) {
	h := challengeHash(challenge)
	var data string
	err = s.db.Tx(ctx, func(tx *store.Tx) error {
		err := tx.QueryRowContext(ctx, `SELECT session_data FROM webauthn_ceremonies WHERE challenge_hash = $1 AND purpose = $2 AND ref = $3
			AND used_at IS NULL AND expires_at > $4`, h, purpose, ref, clock.Micros(now)).Scan(&data)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `UPDATE webauthn_ceremonies SET used_at = $1 WHERE challenge_hash = $2 AND used_at IS NULL`, clock.Micros(now), h)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		ok = err == nil && n == 1
		return err
	})
	if err != nil {
		return sd, false, fmt.Errorf("webauthn ceremony: %w", err)
	}
	if !ok {
		return sd, false, nil
	}
	if err := json.Unmarshal([]byte(data), &sd); err != nil {
		return sd, false, fmt.Errorf("webauthn ceremony: %w", err)
	}
	sd.Challenge = challenge
	return sd, true, nil
}

func registrationRef(sess Session) string { return "register:" + sess.AccountID + ":" + sess.ID }

// BeginWebAuthnRegistration starts adding a key to the session's account
// and returns the PublicKeyCredentialCreationOptions as JSON
// ({"publicKey": {...}}) for navigator.credentials.create.
func (s *Service) BeginWebAuthnRegistration(ctx context.Context, sess Session) ([]byte, error) {
	if s.wa == nil {
		return nil, ErrWebAuthnOff
	}
	acc, err := s.ids.Account(ctx, sess.AccountID)
	if err != nil {
		return nil, fmt.Errorf("webauthn registration: %w", err)
	}
	handle, err := s.userHandle(ctx, acc.ID)
	if err != nil {
		return nil, err
	}
	u, err := s.loadUser(ctx, s.db, acc)
	if err != nil {
		return nil, err
	}
	u.handle = handle
	if len(u.creds) >= webauthnMaxKeys {
		return nil, ErrWebAuthnTooMany
	}
	totp, err := s.hasTOTP(ctx, s.db, acc.ID)
	if err != nil {
		return nil, err
	}
	uv := protocol.VerificationPreferred
	if !totp {
		uv = protocol.VerificationRequired // it will be the only possession factor
	}
	excl := make([]protocol.CredentialDescriptor, 0, len(u.creds))
	for _, c := range u.creds {
		excl = append(excl, c.Descriptor())
	}
	ch, err := s.challenge()
	if err != nil {
		return nil, err
	}
	rk := true
	creation, sd, err := s.wa.BeginRegistration(u,
		webauthn.WithAuthenticatorSelection(protocol.AuthenticatorSelection{
			RequireResidentKey: &rk, ResidentKey: protocol.ResidentKeyRequirementRequired, UserVerification: uv,
		}),
		webauthn.WithExclusions(excl),
		webauthn.WithConveyancePreference(protocol.PreferNoAttestation),
		func(o *protocol.PublicKeyCredentialCreationOptions) error { o.Challenge = ch; return nil },
	)
	if err != nil {
		return nil, fmt.Errorf("webauthn registration: %w", err)
	}
	if err := s.storeCeremony(ctx, "register", registrationRef(sess), acc.ID, sd, s.clock.Now().Add(webauthnCeremonyTTL)); err != nil {
		return nil, err
	}
	out, err := json.Marshal(creation)
	if err != nil {
		return nil, fmt.Errorf("webauthn registration: %w", err)
	}
	return out, nil
}

// FinishWebAuthnRegistration checks the authenticator's response to a
// challenge of this same session and stores the new key under name.
func (s *Service) FinishWebAuthnRegistration(ctx context.Context, sess Session, name string, response []byte, source string) (WebAuthnCredential, error) {
	if s.wa == nil {
		return WebAuthnCredential{}, ErrWebAuthnOff
	}
	name, err := factorLabel(name, true)
	if err != nil {
		return WebAuthnCredential{}, err
	}
	acc, err := s.ids.Account(ctx, sess.AccountID)
	if err != nil {
		return WebAuthnCredential{}, fmt.Errorf("webauthn registration: %w", err)
	}
	if name == "" {
		if name, err = defaultLabel(ctx, s.db, "webauthn_credentials", "Beveiligingssleutel", acc.ID); err != nil {
			return WebAuthnCredential{}, fmt.Errorf("webauthn registration: %w", err)
		}
	}
	ev := event{accountID: acc.ID, tenantID: acc.TenantID, username: acc.Username, source: source, factor: FactorWebAuthn}
	refuse := func(reason string) (WebAuthnCredential, error) {
		ev.outcome, ev.reason = "enrol-denied", reason
		if err := s.recordEvent(ctx, ev); err != nil {
			return WebAuthnCredential{}, fmt.Errorf("webauthn registration: %w", err)
		}
		return WebAuthnCredential{}, ErrWebAuthnCeremony
	}
	if len(response) > webauthnMaxResponse {
		return refuse("response too large")
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(response)
	if err != nil {
		return refuse("unreadable response")
	}
	now := s.clock.Now()
	sd, ok, err := s.takeCeremony(ctx, "register", registrationRef(sess), parsed.Response.CollectedClientData.Challenge, now)
	if err != nil {
		return WebAuthnCredential{}, err
	}
	if !ok {
		return refuse("unknown, expired or used challenge")
	}
	u, err := s.loadUser(ctx, s.db, acc)
	if err != nil {
		return WebAuthnCredential{}, err
	}
	cred, err := s.wa.CreateCredential(u, sd, parsed)
	if err != nil {
		return refuse("verification failed")
	}
	totp, err := s.hasTOTP(ctx, s.db, acc.ID)
	if err != nil {
		return WebAuthnCredential{}, err
	}
	if !totp && !cred.Flags.UserVerified {
		return refuse("no user verification") // it would be the only possession factor
	}
	id, err := s.newID()
	if err != nil {
		return WebAuthnCredential{}, err
	}
	id = "wa-" + id
	transports := make([]string, 0, len(cred.Transport))
	for _, t := range cred.Transport {
		transports = append(transports, string(t))
	}
	aaguid := cred.Authenticator.AAGUID
	if aaguid == nil {
		aaguid = []byte{}
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO webauthn_credentials (id, account_id, credential_id, public_key, attestation_type, attestation_format,
		aaguid, transports, flags, user_verified, sign_count, name, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
		id, acc.ID, cred.ID, cred.PublicKey, cred.AttestationType, cred.AttestationFormat, aaguid, strings.Join(transports, " "),
		int64(cred.Flags.MsgpByte()), cred.Flags.UserVerified, int64(cred.Authenticator.SignCount), name, clock.Micros(now))
	if store.IsUniqueViolation(err) {
		return refuse("credential already registered")
	}
	if err != nil {
		return WebAuthnCredential{}, fmt.Errorf("webauthn registration: %w", err)
	}
	if err := s.factorChanged(ctx, acc.ID, factorChange{outcome: "factor-enrolled", factor: FactorWebAuthn, ref: strconv.Quote(name),
		nl: "een beveiligingssleutel of passkey toegevoegd", en: "a security key or passkey was added", source: source}); err != nil {
		if _, uerr := s.db.ExecContext(ctx, `UPDATE webauthn_credentials SET revoked_at = $1 WHERE id = $2`, clock.Micros(s.clock.Now()), id); uerr != nil {
			return WebAuthnCredential{}, fmt.Errorf("webauthn registration: %w (and revoking the unlogged key %s failed: %v)", err, id, uerr)
		}
		return WebAuthnCredential{}, fmt.Errorf("webauthn registration: %w", err)
	}
	return WebAuthnCredential{ID: id, Name: name, AAGUID: formatAAGUID(aaguid), Transports: transports,
		UserVerified: cred.Flags.UserVerified, CreatedAt: now}, nil
}

func formatAAGUID(b []byte) string {
	if len(b) != 16 {
		return hex.EncodeToString(b)
	}
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// WebAuthnCredentials lists the account's usable keys, oldest first.
func (s *Service) WebAuthnCredentials(ctx context.Context, accountID string) ([]WebAuthnCredential, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, name, aaguid, transports, user_verified, created_at, last_used_at
		FROM webauthn_credentials WHERE account_id = $1 AND revoked_at IS NULL ORDER BY created_at, id`, accountID)
	if err != nil {
		return nil, fmt.Errorf("webauthn credentials: %w", err)
	}
	defer rows.Close()
	var out []WebAuthnCredential
	for rows.Next() {
		var c WebAuthnCredential
		var aaguid []byte
		var transports string
		var created int64
		var used sql.NullInt64
		if err := rows.Scan(&c.ID, &c.Name, &aaguid, &transports, &c.UserVerified, &created, &used); err != nil {
			return nil, fmt.Errorf("webauthn credentials: %w", err)
		}
		c.AAGUID, c.Transports, c.CreatedAt = formatAAGUID(aaguid), strings.Fields(transports), clock.FromMicros(created)
		if used.Valid {
			c.LastUsed = clock.FromMicros(used.Int64)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// RemoveWebAuthn revokes a key, unless it is the account's last strong
// factor (AUTH-2).
func (s *Service) RemoveWebAuthn(ctx context.Context, accountID, credentialID, source string) error {
	acc, err := s.ids.Account(ctx, accountID)
	if err != nil {
		return fmt.Errorf("remove webauthn: %w", err)
	}
	ev := event{accountID: acc.ID, tenantID: acc.TenantID, username: acc.Username, source: source, factor: FactorWebAuthn}
	var name string
	err = s.db.Tx(ctx, func(tx *store.Tx) error {
		var uv bool
		err := tx.QueryRowContext(ctx, `SELECT user_verified, name FROM webauthn_credentials WHERE id = $1 AND account_id = $2 AND revoked_at IS NULL`,
			credentialID, accountID).Scan(&uv, &name)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("remove webauthn: %w", identity.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("remove webauthn: %w", err)
		}
		n, err := s.strongFactors(ctx, tx, accountID)
		if err != nil {
			return err
		}
		if uv { // only keys that verify their user count as strong on their own
			n--
		}
		if n < 1 {
			return ErrLastStrongFactor
		}
		if _, err := tx.ExecContext(ctx, `UPDATE webauthn_credentials SET revoked_at = $1 WHERE id = $2 AND account_id = $3 AND revoked_at IS NULL`,
			clock.Micros(s.clock.Now()), credentialID, accountID); err != nil {
			return fmt.Errorf("remove webauthn: %w", err)
		}
		return nil
	})
	switch {
	case err == nil:
		if err := s.factorChanged(ctx, acc.ID, factorChange{outcome: "factor-removed", factor: FactorWebAuthn, ref: strconv.Quote(name),
			nl: "een beveiligingssleutel of passkey verwijderd", en: "a security key or passkey was removed", source: source}); err != nil {
			return fmt.Errorf("remove webauthn: %w", err)
		}
	case errors.Is(err, ErrLastStrongFactor):
		ev.outcome, ev.reason = "remove-denied", "last strong factor"
		if err := s.recordEvent(ctx, ev); err != nil {
			return fmt.Errorf("remove webauthn: %w", err)
		}
	}
	return err
}

// webauthnStrong counts the account's keys that are strong on their own:
// those that verified their user.
func webauthnStrong(ctx context.Context, q store.Querier, accountID string) (int, error) {
	var n int64
	if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM webauthn_credentials WHERE account_id = $1 AND revoked_at IS NULL AND user_verified = $2`,
		accountID, true).Scan(&n); err != nil {
		return 0, fmt.Errorf("strong factors: %w", err)
	}
	return int(n), nil
}

// BeginWebAuthnLogon returns the PublicKeyCredentialRequestOptions as JSON
// ({"publicKey": {...}}) for navigator.credentials.get, bound to the log-on
// attempt. The options are the same kind for every attempt, whatever the
// account or the password (AUTH-4); an unknown or finished attempt gets
// ErrLogonFailed.
func (s *Service) BeginWebAuthnLogon(ctx context.Context, attemptToken string) ([]byte, error) {
	if s.wa == nil {
		return nil, ErrWebAuthnOff
	}
	now := s.clock.Now()
	h := hashToken(attemptToken)
	var accountID sql.NullString
	var expires int64
	err := s.db.QueryRowContext(ctx, `SELECT account_id, expires_at FROM login_attempts WHERE id_hash = $1 AND used_at IS NULL AND expires_at > $2`,
		h, clock.Micros(now)).Scan(&accountID, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrLogonFailed
	}
	if err != nil {
		return nil, fmt.Errorf("webauthn log-on: %w", err)
	}
	ch, err := s.challenge()
	if err != nil {
		return nil, err
	}
	assertion, sd, err := s.wa.BeginDiscoverableLogin(webauthn.WithUserVerification(protocol.VerificationPreferred), webauthn.WithChallenge(ch))
	if err != nil {
		return nil, fmt.Errorf("webauthn log-on: %w", err)
	}
	until := now.Add(webauthnCeremonyTTL)
	if end := clock.FromMicros(expires); end.Before(until) {
		until = end // never outlives its attempt
	}
	if err := s.storeCeremony(ctx, "logon", hexHash(h), accountID.String, sd, until); err != nil {
		if errors.Is(err, ErrWebAuthnTooMany) {
			return nil, ErrLogonFailed
		}
		return nil, err
	}
	out, err := json.Marshal(assertion)
	if err != nil {
		return nil, fmt.Errorf("webauthn log-on: %w", err)
	}
	return out, nil
}

// verifyWebAuthn checks an assertion (the JSON of a PublicKeyCredential) as
// the second factor of the attempt attemptRef for the account. The
// challenge must be one begun for this attempt and is consumed. With dry
// set (the first factor failed) it checks at the same cost but changes no
// credential and raises nothing.
func (s *Service) verifyWebAuthn(ctx context.Context, accountID, response, attemptRef string, now time.Time, dry bool) (bool, error) {
	if s.wa == nil || len(response) > webauthnMaxResponse {
		return false, nil
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes([]byte(response))
	if err != nil {
		return false, nil
	}
	sd, ok, err := s.takeCeremony(ctx, "logon", attemptRef, parsed.Response.CollectedClientData.Challenge, now)
	if err != nil || !ok {
		return false, err // replayed, expired, or begun for another attempt
	}
	acc, err := s.ids.Account(ctx, accountID)
	if errors.Is(err, identity.ErrNotFound) && dry {
		return false, nil // the dry check of an attempt for an unknown user name
	}
	if err != nil {
		return false, fmt.Errorf("webauthn log-on: %w", err)
	}
	if !acc.Active {
		return false, nil
	}
	u, err := s.loadUser(ctx, s.db, acc)
	if err != nil || len(u.handle) == 0 || len(u.creds) == 0 {
		return false, err
	}
	totp, err := s.hasTOTP(ctx, s.db, accountID)
	if err != nil {
		return false, err
	}
	if !totp {
		sd.UserVerification = protocol.VerificationRequired // the key is the only possession factor
	}
	// The user handle in the response must be this attempt's account: a
	// key of another account does not complete this log-on (AUTH-1).
	handler := func(_, userHandle []byte) (webauthn.User, error) {
		if !bytes.Equal(userHandle, u.handle) {
			return nil, errors.New("the key belongs to another account")
		}
		return u, nil
	}
	cred, err := s.wa.ValidateDiscoverableLogin(handler, sd, parsed)
	if err != nil {
		return false, nil
	}
	idx := -1
	for i, c := range u.creds {
		if bytes.Equal(c.ID, cred.ID) {
			idx = i
		}
	}
	if idx < 0 || dry {
		return false, nil
	}
	if cred.Authenticator.CloneWarning {
		// The counter went back: two copies of the key may exist. Refuse,
		// and tell the security officer (AUTH-4).
		return false, s.securityEvent(ctx, "webauthn-sign-count", event{accountID: acc.ID, tenantID: acc.TenantID, username: acc.Username, factor: FactorWebAuthn},
			fmt.Sprintf("security key %q: signature counter %d not above the stored %d; the key may be cloned",
				u.names[idx], parsed.Response.AuthenticatorData.Counter, u.signCounts[idx]))
	}
	res, err := s.db.ExecContext(ctx, `UPDATE webauthn_credentials SET sign_count = $1, flags = $2, last_used_at = $3
		WHERE id = $4 AND sign_count = $5 AND revoked_at IS NULL`,
		int64(cred.Authenticator.SignCount), int64(cred.Flags.MsgpByte()), clock.Micros(now), u.rowIDs[idx], int64(u.signCounts[idx]))
	if err != nil {
		return false, fmt.Errorf("webauthn log-on: %w", err)
	}
	n, err := res.RowsAffected()
	return err == nil && n == 1, err
}
