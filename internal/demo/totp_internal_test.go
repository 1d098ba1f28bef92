package demo

import (
	"errors"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/onboard"
)

// A 30-second boundary between making the previous step's code and
// checking it (the CI flake): the code is made once more, of the new step.
func TestConfirmPreviousStepAcrossABoundary(t *testing.T) {
	secret := "JBSWY3DPEHPK3PXP"
	c := clock.NewFake(time.Date(2026, 12, 7, 15, 38, 29, 990_000_000, time.UTC)) // 10 ms before a boundary
	var codes []string
	err := confirmPreviousStep(c, secret, func(code string) (bool, error) {
		codes = append(codes, code)
		if len(codes) == 1 {
			c.Advance(40 * time.Millisecond) // the check runs in the next step: two steps back
			return false, nil
		}
		want, err := totp.GenerateCode(secret, c.Now().Add(-30*time.Second))
		return err == nil && code == want, err
	})
	if err != nil || len(codes) != 2 || codes[0] == codes[1] {
		t.Fatalf("confirm: %v after codes %v; want success with a second, new code", err, codes)
	}
	// A code refused twice is refused: no third try.
	n := 0
	err = confirmPreviousStep(c, secret, func(string) (bool, error) { n++; return false, nil })
	if !errors.Is(err, onboard.ErrTOTP) || n != 2 {
		t.Fatalf("refused twice: %v after %d tries", err, n)
	}
}
