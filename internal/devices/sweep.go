package devices

import (
	"context"
	"fmt"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/clock"
)

// Sweep deletes what can never be used again: pairing codes, challenges,
// wipe nonces and tokens a day past their expiry. Devices stay until they
// acknowledge their wipe; the access log keeps every step.
func (s *Service) Sweep(ctx context.Context) error {
	n := clock.Micros(s.clock.Now().Add(-24 * time.Hour))
	for _, q := range []string{
		`DELETE FROM devices_pairings WHERE expires_at < $1`,
		`DELETE FROM devices_challenges WHERE expires_at < $1`,
		`DELETE FROM devices_tokens WHERE expires_at < $1`,
	} {
		if _, err := s.db.ExecContext(ctx, q, n); err != nil {
			return fmt.Errorf("devices sweep: %w", err)
		}
	}
	return nil
}
