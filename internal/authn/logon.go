package authn

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/alert"
	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/identity"
	"github.com/zorgkluis/zorgkluis/internal/store"
)

// Factor kinds a user may pick for the second step.
const (
	FactorTOTP     = "totp"
	FactorRecovery = "recovery"
	FactorSMS      = "sms"
	FactorEmail    = "email"
)

// FactorKinds is the choice offered after the first step. It depends only on
// the platform's configuration, never on the account, so it says nothing
// about whether the user name exists or what it has enrolled (AUTH-4). A
// kind the account lacks simply fails like a wrong code.
func (s *Service) FactorKinds() []string {
	kinds := []string{FactorTOTP, FactorRecovery}
	for _, ch := range []string{FactorSMS, FactorEmail} {
		if s.canSend(ch) {
			kinds = append(kinds, ch)
		}
	}
	if s.wa != nil {
		kinds = append(kinds, FactorWebAuthn)
	}
	return kinds
}

// gate is the brute-force verdict for a user name and source address.
type gate struct {
	blocked  bool
	reason   string
	nameFail int // counted failures of the user name in the window
	srcFail  int // failures from the source in the window
}

// check decides whether an attempt may be evaluated. It runs the same
// queries whether or not the user name exists.
func (s *Service) check(ctx context.Context, username, source string, now time.Time) (gate, error) {
	set := s.settings
	since := clock.Micros(now.Add(-set.FailureWindow))
	var g gate
	// Trusted source: a recent success of this name from this address.
	var trusted int64
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM auth_events WHERE username = $1 AND source = $2 AND outcome = 'success' AND created_at > $3`,
		username, source, clock.Micros(now.Add(-set.TrustedSourceAge))).Scan(&trusted); err != nil {
		return g, fmt.Errorf("log-on throttle: %w", err)
	}
	// Failures after the last success count; older ones are forgiven.
	var lastOK sql.NullInt64
	if err := s.db.QueryRowContext(ctx, `SELECT MAX(created_at) FROM auth_events WHERE username = $1 AND outcome = 'success'`, username).Scan(&lastOK); err != nil {
		return g, fmt.Errorf("log-on throttle: %w", err)
	}
	if lastOK.Valid && lastOK.Int64 > since {
		since = lastOK.Int64
	}
	var n int64
	var lastFail sql.NullInt64
	var err error
	if trusted > 0 {
		err = s.db.QueryRowContext(ctx, `SELECT COUNT(*), MAX(created_at) FROM auth_events WHERE username = $1 AND source = $2 AND outcome = 'failure' AND created_at > $3`,
			username, source, since).Scan(&n, &lastFail)
	} else {
		err = s.db.QueryRowContext(ctx, `SELECT COUNT(*), MAX(created_at) FROM auth_events WHERE username = $1 AND outcome = 'failure' AND created_at > $2`,
			username, since).Scan(&n, &lastFail)
	}
	if err != nil {
		return g, fmt.Errorf("log-on throttle: %w", err)
	}
	g.nameFail = int(n)
	var sn int64
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM auth_events WHERE source = $1 AND outcome = 'failure' AND created_at > $2`,
		source, clock.Micros(now.Add(-set.FailureWindow))).Scan(&sn); err != nil {
		return g, fmt.Errorf("log-on throttle: %w", err)
	}
	g.srcFail = int(sn)
	switch {
	case g.nameFail >= set.LockAfter:
		g.blocked, g.reason = true, "locked"
	case g.srcFail >= set.SourceLockAfter:
		g.blocked, g.reason = true, "source-locked"
	case g.nameFail >= set.ThrottleAfter && lastFail.Valid:
		wait := throttleDelay(set, g.nameFail)
		if now.Before(clock.FromMicros(lastFail.Int64).Add(wait)) {
			g.blocked, g.reason = true, "throttled"
		}
	}
	return g, nil
}

// throttleDelay is the spacing required after n failures: ThrottleBase at
// ThrottleAfter, doubling per failure, never more than the failure window.
func throttleDelay(set Settings, n int) time.Duration {
	d := set.ThrottleBase
	for i := set.ThrottleAfter; i < n && d < set.FailureWindow; i++ {
		d *= 2
	}
	return min(d, set.FailureWindow)
}

// Begin is the first step of a log-on. It always returns an attempt token
// unless the system itself fails; whether the password was right is kept
// server-side with the attempt.
func (s *Service) Begin(ctx context.Context, username, password, source string) (string, error) {
	now := s.clock.Now()
	uname := identity.NormalizeUsername(username)
	if len(uname) > 128 {
		uname = uname[:128]
	}
	g, err := s.check(ctx, uname, source, now)
	if err != nil {
		return "", err
	}
	var accountID any
	firstOK := false
	reason := "password"
	acc, err := s.ids.AccountByUsername(ctx, uname)
	switch {
	case err == nil && acc.Active && !g.blocked:
		pc, qerr := s.passwordCredential(ctx, acc.ID)
		if qerr != nil && !errors.Is(qerr, sql.ErrNoRows) {
			return "", fmt.Errorf("log-on: %w", qerr)
		}
		if pc.hash == "" {
			_ = s.hasher.VerifyDummy(ctx, password)
		} else {
			ok, _, verr := s.hasher.Verify(ctx, pc.hash, password)
			if verr != nil && ctx.Err() != nil {
				return "", fmt.Errorf("log-on: %w", ctx.Err())
			}
			firstOK = ok && verr == nil
			if firstOK && pc.mustChange && pc.expiresAt.Valid && now.After(clock.FromMicros(pc.expiresAt.Int64)) {
				firstOK, reason = false, "temporary-password-expired" // ID-6
			}
		}
		accountID = acc.ID
	case err == nil || errors.Is(err, identity.ErrNotFound):
		// Unknown, deactivated or blocked: do the same work as a real check.
		if _, qerr := s.passwordCredential(ctx, uname); qerr != nil && !errors.Is(qerr, sql.ErrNoRows) {
			return "", fmt.Errorf("log-on: %w", qerr)
		}
		_ = s.hasher.VerifyDummy(ctx, password)
		switch {
		case g.blocked:
			reason = g.reason
		case err == nil:
			reason = "inactive-account"
		default:
			reason = "unknown-account"
		}
		if err == nil {
			accountID = acc.ID
		}
	default:
		return "", fmt.Errorf("log-on: %w", err)
	}
	tok, h, err := s.token()
	if err != nil {
		return "", err
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO login_attempts (id_hash, account_id, first_ok, source, created_at, expires_at, username)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, h, accountID, firstOK, source, clock.Micros(now), clock.Micros(now.Add(s.settings.AttemptTTL)), uname)
	if err != nil {
		return "", fmt.Errorf("log-on: store attempt: %w", err)
	}
	// Exactly one event per first step, whatever happened, so the writes
	// cost the same on every path.
	ev := event{username: uname, source: source, factor: "password"}
	if id, ok := accountID.(string); ok {
		ev.accountID, ev.tenantID = id, acc.TenantID
	}
	switch {
	case firstOK:
		ev.outcome = "first-factor"
	case g.blocked:
		ev.outcome, ev.reason = "blocked", g.reason // logged, not counted
	default:
		ev.outcome, ev.reason = "failure", reason
	}
	if err := s.recordEvent(ctx, ev); err != nil {
		return "", fmt.Errorf("log-on: %w", err)
	}
	if ev.outcome == "failure" {
		if err := s.alertOnBurst(ctx, ev, g); err != nil {
			return "", fmt.Errorf("log-on: %w", err)
		}
	}
	return tok, nil
}

type passwordCred struct {
	hash       string
	mustChange bool
	expiresAt  sql.NullInt64
	changedAt  int64
}

func (s *Service) passwordCredential(ctx context.Context, accountID string) (passwordCred, error) {
	var pc passwordCred
	err := s.db.QueryRowContext(ctx, `SELECT hash, must_change, expires_at, changed_at FROM password_credentials WHERE account_id = $1`, accountID).
		Scan(&pc.hash, &pc.mustChange, &pc.expiresAt, &pc.changedAt)
	return pc, err
}

// CompleteTOTP is Complete with a TOTP code. username is no longer needed
// (the attempt remembers it) and is ignored.
func (s *Service) CompleteTOTP(ctx context.Context, attemptToken, code, source, username string) (string, Session, error) {
	return s.Complete(ctx, attemptToken, FactorTOTP, code, source)
}

// Complete is the second step: the attempt token from Begin and a second
// factor of kind factor (FactorTOTP, FactorRecovery, FactorSMS, FactorEmail,
// FactorWebAuthn with the key's response as code).
// The attempt is consumed whatever the outcome: a second factor only ever
// counts for the attempt it was given with (AUTH-1). On success it returns
// a new session token; the session carries the previous successful log-on
// and the failures since.
func (s *Service) Complete(ctx context.Context, attemptToken, factor, code, source string) (string, Session, error) {
	now := s.clock.Now()
	var accountID sql.NullString
	var firstOK bool
	var uname, first string
	h := hashToken(attemptToken)
	err := s.db.Tx(ctx, func(tx *store.Tx) error {
		err := tx.QueryRowContext(ctx, `SELECT account_id, first_ok, username, first_factor FROM login_attempts
			WHERE id_hash = $1 AND used_at IS NULL AND expires_at > $2`, h, clock.Micros(now)).Scan(&accountID, &firstOK, &uname, &first)
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `UPDATE login_attempts SET used_at = $1 WHERE id_hash = $2 AND used_at IS NULL`, clock.Micros(now), h)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return sql.ErrNoRows // a concurrent Complete took it
		}
		return nil
	})
	if errors.Is(err, sql.ErrNoRows) {
		if err := s.recordEvent(ctx, event{outcome: "failure", reason: "no-attempt", factor: factor, source: source}); err != nil {
			return "", Session{}, fmt.Errorf("log-on: %w", err)
		}
		return "", Session{}, ErrLogonFailed
	}
	if err != nil {
		return "", Session{}, fmt.Errorf("log-on: %w", err)
	}
	// Check the factor even when the first one failed, so timing says little.
	// When the first factor failed, the second is checked without being
	// consumed (an attacker without the password must not burn the user's
	// codes), at about the same cost, so timing says little.
	codeOK := false
	if accountID.Valid && firstOK {
		codeOK, err = s.verifySecond(ctx, accountID.String, factor, code, hexHash(h), now)
	} else if factor == FactorWebAuthn {
		// Also for an unknown user name (empty account id): the same
		// parsing, challenge and look-ups, which find nothing.
		_, err = s.verifyWebAuthn(ctx, accountID.String, code, hexHash(h), now, true)
	} else {
		_, err = s.checkTOTP(ctx, accountID.String, code, now, true)
	}
	if err != nil {
		return "", Session{}, fmt.Errorf("log-on: %w", err)
	}
	if !accountID.Valid || !firstOK {
		// The failed first step was already recorded and counted by Begin.
		return "", Session{}, ErrLogonFailed
	}
	ev := event{accountID: accountID.String, username: uname, source: source, factor: factor}
	if !codeOK {
		ev.outcome, ev.reason = "failure", "second-factor"
		if err := s.recordEvent(ctx, ev); err != nil {
			return "", Session{}, fmt.Errorf("log-on: %w", err)
		}
		g, err := s.check(ctx, uname, source, now)
		if err != nil {
			return "", Session{}, err
		}
		if err := s.alertOnBurst(ctx, ev, g); err != nil {
			return "", Session{}, fmt.Errorf("log-on: %w", err)
		}
		return "", Session{}, ErrLogonFailed
	}
	prev, failed, err := s.lastLogon(ctx, accountID.String, uname)
	if err != nil {
		return "", Session{}, err
	}
	tok, sess, err := s.createSession(ctx, accountID.String, []string{first, factor}, source)
	if errors.Is(err, errPrivilegeMix) {
		ev.outcome, ev.reason = "failure", "privilege-mix"
		if err := s.recordEvent(ctx, ev); err != nil {
			return "", Session{}, fmt.Errorf("log-on: %w", err)
		}
		if err := s.securityEvent(ctx, "privilege-mix", ev, "account holds an everyday role and an admin/operator role (AUTH-8)"); err != nil {
			return "", Session{}, fmt.Errorf("log-on: %w", err)
		}
		return "", Session{}, ErrLogonFailed
	}
	if err != nil {
		return "", Session{}, err
	}
	ev.outcome, ev.tenantID, ev.assurance = "success", sess.TenantID, sess.Assurance
	if err := s.recordEvent(ctx, ev); err != nil {
		// No log line, no session: revoke the one just created (LOG-3).
		if rerr := s.Logout(ctx, tok); rerr != nil {
			return "", Session{}, fmt.Errorf("log-on: %w (and revoking the session: %v)", err, rerr)
		}
		return "", Session{}, fmt.Errorf("log-on: %w", err)
	}
	sess.PreviousLogon, sess.FailedSince = prev, failed
	return tok, sess, nil
}

// lastLogon returns the account's latest successful log-on and the failed
// attempts on its user name since then (AUTH-4).
func (s *Service) lastLogon(ctx context.Context, accountID, username string) (time.Time, int, error) {
	var last sql.NullInt64
	if err := s.db.QueryRowContext(ctx, `SELECT MAX(created_at) FROM auth_events WHERE account_id = $1 AND outcome = 'success'`, accountID).Scan(&last); err != nil {
		return time.Time{}, 0, fmt.Errorf("last log-on: %w", err)
	}
	var n int64
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM auth_events WHERE username = $1 AND outcome IN ('failure', 'blocked') AND created_at > $2`,
		username, last.Int64).Scan(&n); err != nil {
		return time.Time{}, 0, fmt.Errorf("last log-on: %w", err)
	}
	var t time.Time
	if last.Valid {
		t = clock.FromMicros(last.Int64)
	}
	return t, int(n), nil
}

// verifySecond checks a second factor of the given kind for the account.
func (s *Service) verifySecond(ctx context.Context, accountID, factor, code, attemptRef string, now time.Time) (bool, error) {
	switch factor {
	case FactorTOTP:
		return s.verifyTOTP(ctx, accountID, code, now)
	case FactorWebAuthn:
		return s.verifyWebAuthn(ctx, accountID, code, attemptRef, now, false)
	case FactorRecovery:
		return s.useRecoveryCode(ctx, accountID, code, now)
	case FactorSMS, FactorEmail:
		if !s.canSend(factor) {
			return false, nil
		}
		ok, err := s.weakAllowed(ctx, accountID)
		if err != nil || !ok {
			return false, err
		}
		return s.useCode(ctx, accountID, "logon", attemptRef, factor, code, now)
	}
	return false, nil
}

var errPrivilegeMix = errors.New("account holds both everyday and privileged roles")

// privileged roles belong on admin and operator accounts only (AUTH-8).
var privileged = []access.Role{access.RoleAppAdmin, access.RoleSecurityOfficer, access.RoleOperator}

// rolesFit reports whether the roles suit the account kind: admin and
// operator accounts hold only privileged roles, everyday accounts none.
func rolesFit(kind string, roles []string) bool {
	admin := kind == identity.KindAdmin || kind == identity.KindOperator
	for _, r := range roles {
		if slices.Contains(privileged, access.Role(r)) != admin {
			return false
		}
	}
	return true
}

func (s *Service) createSession(ctx context.Context, accountID string, factors []string, source string) (string, Session, error) {
	acc, err := s.ids.Account(ctx, accountID)
	if err != nil {
		return "", Session{}, fmt.Errorf("create session: %w", err)
	}
	held, err := s.ids.Roles(ctx, accountID)
	if err != nil {
		return "", Session{}, fmt.Errorf("create session: %w", err)
	}
	if !rolesFit(acc.Kind, held) {
		return "", Session{}, errPrivilegeMix
	}
	roles, err := s.currentOf(ctx, accountID, held)
	if err != nil {
		return "", Session{}, fmt.Errorf("create session: %w", err)
	}
	role := ""
	if len(roles) == 1 {
		role = roles[0] // with several, the user picks one (AZ-2)
	}
	level, err := s.assuranceFor(ctx, acc, factors)
	if err != nil {
		return "", Session{}, err
	}
	mustChange, err := s.mustChangePassword(ctx, acc)
	if err != nil {
		return "", Session{}, err
	}
	tok, h, err := s.token()
	if err != nil {
		return "", Session{}, err
	}
	now := s.clock.Now()
	// The log-on is the first proof a step-up asks for only when its second
	// factor is one a step-up accepts: a session logged on with an SMS or
	// e-mail code must step up with a strong factor before it changes the
	// factors, or a taken-over phone number or mailbox would be enough.
	var secondAt time.Time
	if slices.ContainsFunc(factors, func(f string) bool { return slices.Contains(s.StepUpFactors(), f) }) {
		secondAt = now
	}
	sess := Session{
		ID:                 fmt.Sprintf("%x", h[:8]),
		AccountID:          accountID,
		TenantID:           acc.TenantID,
		Role:               access.Role(role),
		Assurance:          level,
		Factors:            strings.Join(factors, " "),
		MustChangePassword: mustChange,
		CreatedAt:          now,
		ExpiresAt:          now.Add(s.settings.SessionLifetime),
		SecondFactorAt:     secondAt,
	}
	var second int64 // 0: no proof yet (the column's "never")
	if !secondAt.IsZero() {
		second = clock.Micros(secondAt)
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO sessions (id_hash, account_id, tenant_id, role, assurance, factors, source, created_at, last_seen, expires_at, must_change_password, second_factor_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9, $10, $11)`,
		h, accountID, nullable(acc.TenantID), role, int64(sess.Assurance), sess.Factors, source, clock.Micros(now), clock.Micros(sess.ExpiresAt), mustChange, second)
	if err != nil {
		return "", Session{}, fmt.Errorf("create session: %w", err)
	}
	return tok, sess, nil
}

// event is one row of auth_events.
type event struct {
	accountID, username, outcome, reason, factor, source string
	tenantID                                             string
	assurance                                            access.Level
}

func (s *Service) newID() (string, error) {
	var b [16]byte
	if _, err := io.ReadFull(s.rand, b[:]); err != nil {
		return "", fmt.Errorf("random id: %w", err)
	}
	return fmt.Sprintf("%x", b), nil
}

// recordEvent writes an auth event: the row the brute-force counters are
// computed from (AUTH-4) and the log-on event of the access log (NEN 7513).
// Both fail closed: an error means the caller must not go on as if the
// attempt had been counted and logged (LOG-3).
func (s *Service) recordEvent(ctx context.Context, e event) error {
	id, err := s.newID()
	if err != nil {
		return fmt.Errorf("record log-on event: %w", err)
	}
	if _, err := s.db.ExecContext(ctx, `INSERT INTO auth_events (id, account_id, username, outcome, source, created_at, reason, factor) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		id, nullable(e.accountID), e.username, e.outcome, e.source, clock.Micros(s.clock.Now()), e.reason, e.factor); err != nil {
		return fmt.Errorf("record log-on event: %w", err)
	}
	return s.auditEvent(ctx, e, e.outcome)
}

// auditEvent copies an event to the audit log as a technical log-on event.
func (s *Service) auditEvent(ctx context.Context, e event, what string) error {
	if s.settings.Audit == nil {
		return nil
	}
	out := audit.OutcomeSuccess
	if e.outcome == "failure" || e.outcome == "blocked" || strings.HasSuffix(e.outcome, "-denied") || strings.HasSuffix(what, "-attack") || what == "privilege-mix" {
		out = audit.OutcomeFailed
	}
	reason := what
	if e.reason != "" {
		reason += ": " + e.reason
	}
	if e.factor != "" {
		reason += " (" + e.factor + ")"
	}
	ev := audit.Event{Action: audit.ActionLogon, Outcome: out, TenantID: e.tenantID, UserID: e.accountID, UserName: e.username,
		Reason: reason, SourceAddr: e.source}
	if e.assurance != 0 {
		ev.Assurance = e.assurance.String()
	}
	if _, err := s.settings.Audit.Append(ctx, ev); err != nil {
		return fmt.Errorf("log-on event to audit log: %w", err)
	}
	return nil
}

// alertOnBurst raises a security event when this failure brings a user name
// or a source to its lock threshold: that is an attack, not a typo.
func (s *Service) alertOnBurst(ctx context.Context, e event, g gate) error {
	if g.nameFail+1 == s.settings.LockAfter {
		if err := s.securityEvent(ctx, "account-attack", e, fmt.Sprintf("%d failed log-ons within %s", s.settings.LockAfter, s.settings.FailureWindow)); err != nil {
			return err
		}
	}
	if g.srcFail+1 == s.settings.SourceLockAfter {
		return s.securityEvent(ctx, "source-attack", e, fmt.Sprintf("%d failed log-ons from one source within %s", s.settings.SourceLockAfter, s.settings.FailureWindow))
	}
	return nil
}

// securityEvent raises a security event in the tenant's queue: the
// account's tenant when the account is known, else the operators' (an
// unknown user name). The typed user name goes into the detail only, which
// never leaves the queue. A failed write is returned, not dropped.
func (s *Service) securityEvent(ctx context.Context, kind string, e event, detail string) error {
	tenant, err := s.tenantOf(ctx, e)
	if err != nil {
		return fmt.Errorf("security event: %w", err)
	}
	q := alert.Entry{TenantID: tenant, Kind: kind, AccountID: e.accountID, Source: e.source, Detail: detail}
	if e.username != "" {
		q.Detail += " (user name " + e.username + ")"
	}
	if _, err := s.settings.Queue.Raise(ctx, s.db, q); err != nil {
		return fmt.Errorf("security event: %w", err)
	}
	e.reason = detail
	return s.auditEvent(ctx, e, kind)
}

// tenantOf is the tenant of the event's account, "" when there is none. A
// failed look-up is an error, not "": the event would otherwise land in the
// operators' queue, unseen by the tenant's officer and read by staff of no
// tenant.
func (s *Service) tenantOf(ctx context.Context, e event) (string, error) {
	if e.tenantID != "" || e.accountID == "" {
		return e.tenantID, nil
	}
	a, err := s.ids.Account(ctx, e.accountID)
	if err != nil {
		return "", fmt.Errorf("tenant of account: %w", err)
	}
	return a.TenantID, nil
}
