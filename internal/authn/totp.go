package authn

import (
	"bytes"
	"context"
	"crypto/subtle"
	"fmt"
	"image/png"
	"strconv"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/keys"
)

// TOTP parameters: SHA-1, 6 digits, 30 s (RFC 6238 defaults) so every
// authenticator app works; one step of clock skew either way.
const (
	totpPeriod = 30
	totpSkew   = 1
)

var totpOpts = totp.ValidateOpts{Period: totpPeriod, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}

// EnrollTOTP creates a TOTP credential for an account and returns the
// otpauth:// URI (for a QR code) and the base32 secret. The secret is stored
// sealed with the account id as associated data.
func (s *Service) EnrollTOTP(ctx context.Context, accountID, accountName string) (uri, secret string, err error) {
	return s.EnrollNamedTOTP(ctx, accountID, accountName, "")
}

// EnrollNamedTOTP is EnrollTOTP with the owner's name for the app; without
// one it is named by its kind and place ("Authenticator-app 2"). A bad name
// is ErrFactorLabel.
func (s *Service) EnrollNamedTOTP(ctx context.Context, accountID, accountName, label string) (uri, secret string, err error) {
	label, err = factorLabel(label, true)
	if err != nil {
		return "", "", err
	}
	if label == "" {
		if label, err = defaultLabel(ctx, s.db, "totp_credentials", "Authenticator-app", accountID); err != nil {
			return "", "", fmt.Errorf("enrol totp: %w", err)
		}
	}
	key, err := totp.Generate(totp.GenerateOpts{
		Issuer: s.settings.Issuer, AccountName: accountName, Period: totpPeriod,
		Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1, Rand: s.rand,
	})
	if err != nil {
		return "", "", fmt.Errorf("enrol totp: %w", err)
	}
	sealed, err := s.sealer.Wrap(ctx, []byte(key.Secret()), keys.TOTPSecretAD(accountID))
	if err != nil {
		return "", "", fmt.Errorf("enrol totp: %w", err)
	}
	var b [16]byte
	if _, err := s.rand.Read(b[:]); err != nil {
		return "", "", fmt.Errorf("enrol totp: %w", err)
	}
	id := fmt.Sprintf("totp-%x", b)
	_, err = s.db.ExecContext(ctx, `INSERT INTO totp_credentials (id, account_id, secret, label, created_at) VALUES ($1, $2, $3, $4, $5)`,
		id, accountID, sealed, label, clock.Micros(s.clock.Now()))
	if err != nil {
		return "", "", fmt.Errorf("enrol totp: %w", err)
	}
	if err := s.factorChanged(ctx, accountID, factorChange{outcome: "factor-enrolled", factor: FactorTOTP, ref: strconv.Quote(label),
		nl: "een authenticator-app toegevoegd", en: "an authenticator app was added"}); err != nil {
		// Unlogged, it must not work: the secret is not handed out, and the
		// credential is revoked as far as the database still answers.
		if _, uerr := s.db.ExecContext(ctx, `UPDATE totp_credentials SET revoked_at = $1 WHERE id = $2`, clock.Micros(s.clock.Now()), id); uerr != nil {
			return "", "", fmt.Errorf("enrol totp: %w (and revoking the unlogged credential %s failed: %v)", err, id, uerr)
		}
		return "", "", fmt.Errorf("enrol totp: %w", err)
	}
	return key.URL(), key.Secret(), nil
}

// verifyTOTP checks code against the account's TOTP credentials. A time step
// is accepted at most once: the step is recorded with a conditional update,
// so a replayed code fails even on another replica.
func (s *Service) verifyTOTP(ctx context.Context, accountID, code string, now time.Time) (bool, error) {
	return s.checkTOTP(ctx, accountID, code, now, false)
}

// checkTOTP is verifyTOTP; with dry set it only computes and records nothing.
func (s *Service) checkTOTP(ctx context.Context, accountID, code string, now time.Time, dry bool) (bool, error) {
	return s.checkTOTPOf(ctx, accountID, "active", code, now, dry)
}

// checkTOTPOf checks code for an account in the given status: "active" for
// log-on, "pending" only for an invited account's enrolment (ConfirmTOTP).
func (s *Service) checkTOTPOf(ctx context.Context, accountID, status, code string, now time.Time, dry bool) (bool, error) {
	if len(code) != 6 {
		return false, nil
	}
	rows, err := s.db.QueryContext(ctx, `SELECT t.id, t.secret, t.last_step FROM totp_credentials t JOIN accounts a ON a.id = t.account_id
		WHERE t.account_id = $1 AND t.revoked_at IS NULL AND a.status = $2`, accountID, status)
	if err != nil {
		return false, fmt.Errorf("totp: %w", err)
	}
	type cred struct {
		id       string
		sealed   []byte
		lastStep int64
	}
	var creds []cred
	for rows.Next() {
		var c cred
		if err := rows.Scan(&c.id, &c.sealed, &c.lastStep); err != nil {
			rows.Close()
			return false, fmt.Errorf("totp: %w", err)
		}
		creds = append(creds, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return false, fmt.Errorf("totp: %w", err)
	}
	current := now.Unix() / totpPeriod
	for _, c := range creds {
		secret, err := s.sealer.Unwrap(ctx, c.sealed, keys.TOTPSecretAD(accountID))
		if err != nil {
			return false, fmt.Errorf("totp: open secret: %w", err)
		}
		for step := current - totpSkew; step <= current+totpSkew; step++ {
			want, err := totp.GenerateCodeCustom(string(secret), time.Unix(step*totpPeriod, 0), totpOpts)
			if err != nil {
				return false, fmt.Errorf("totp: %w", err)
			}
			if subtle.ConstantTimeCompare([]byte(want), []byte(code)) != 1 {
				continue
			}
			if step <= c.lastStep {
				return false, nil // replay of a used code
			}
			if dry {
				return false, nil
			}
			res, err := s.db.ExecContext(ctx, `UPDATE totp_credentials SET last_step = $1 WHERE id = $2 AND last_step < $1`, step, c.id)
			if err != nil {
				return false, fmt.Errorf("totp: %w", err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return false, fmt.Errorf("totp: %w", err)
			}
			return n == 1, nil
		}
	}
	return false, nil
}

// TOTPQRCode renders an otpauth:// URI from EnrollTOTP as a PNG QR code of
// size×size pixels, for the enrolment page (served with no-store: it holds
// the secret).
func TOTPQRCode(uri string, size int) ([]byte, error) {
	if size < 64 || size > 1024 {
		return nil, fmt.Errorf("totp qr: size %d outside 64..1024", size)
	}
	key, err := otp.NewKeyFromURL(uri)
	if err != nil {
		return nil, fmt.Errorf("totp qr: %w", err)
	}
	if key.Type() != "totp" || key.Secret() == "" {
		return nil, fmt.Errorf("totp qr: not an otpauth://totp URI with a secret")
	}
	img, err := key.Image(size, size)
	if err != nil {
		return nil, fmt.Errorf("totp qr: %w", err)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("totp qr: %w", err)
	}
	return buf.Bytes(), nil
}
