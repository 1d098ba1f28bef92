package authn

import (
	"bytes"
	"context"
	"image/png"
	"net/url"
	"testing"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/identity"
	"github.com/zorgkluis/zorgkluis/internal/password"
	"github.com/zorgkluis/zorgkluis/internal/store/storetest"
)

// REQ: AUTH-2
// TOTP enrolment gives an otpauth URI with the RFC 6238 app parameters and
// a QR code of it as PNG; the seed is stored sealed, never in clear.
func TestTOTPEnrolmentQR(t *testing.T) {
	db := storetest.SQLite(t)
	f := newFixture(t, db, password.TestParams())
	ctx := context.Background()
	u := f.addUser(t, "qr.user", identity.KindPerson, 3, false, string(access.RolePerson))
	uri, secret, err := f.svc.EnrollTOTP(ctx, u.id, u.name)
	if err != nil {
		t.Fatal(err)
	}
	p, err := url.Parse(uri)
	if err != nil || p.Scheme != "otpauth" || p.Host != "totp" {
		t.Fatalf("uri %q", uri)
	}
	q := p.Query()
	if q.Get("secret") != secret || q.Get("digits") != "6" || q.Get("period") != "30" || q.Get("algorithm") != "SHA1" || q.Get("issuer") != "zorgkluis" {
		t.Fatalf("uri parameters %v", q)
	}
	pngBytes, err := TOTPQRCode(uri, 256)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(pngBytes))
	if err != nil || img.Bounds().Dx() != 256 {
		t.Fatalf("png: %v %v", err, img)
	}
	if _, err := TOTPQRCode("https://example.invalid", 256); err == nil {
		t.Fatal("non-otpauth URI rendered")
	}
	var stored []byte
	if err := db.QueryRowContext(ctx, `SELECT secret FROM totp_credentials WHERE account_id = $1`, u.id).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(stored, []byte(secret)) {
		t.Fatal("TOTP seed stored in clear")
	}
}
