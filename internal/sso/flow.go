package sso

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/zorgkluis/zorgkluis/internal/alert"
	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/store"
)

// Start begins a log-on at an active provider: it returns the provider's
// authorization URL (code flow, PKCE S256, state, nonce, max_age and
// acr_values when the provider is configured with them) and the state,
// which the caller binds to the browser (a cookie) and gives back to
// Finish.
func (s *Service) Start(ctx context.Context, providerID, callback string) (authURL, state string, err error) {
	p, secret, err := s.activeProvider(ctx, providerID)
	if err != nil {
		return "", "", err
	}
	op, err := s.discover(ctx, p.Issuer)
	if err != nil {
		return "", "", err
	}
	if state, err = s.random("", 32); err != nil {
		return "", "", err
	}
	nonce, err := s.random("", 32)
	if err != nil {
		return "", "", err
	}
	verifier := oauth2.GenerateVerifier()
	now := s.c.Clock.Now()
	if _, err := s.c.DB.ExecContext(ctx, `INSERT INTO sso_states (hash, provider_id, nonce, verifier, expires_at) VALUES ($1, $2, $3, $4, $5)`,
		hash(state), p.ID, nonce, verifier, clock.Micros(now.Add(FlowTTL))); err != nil {
		return "", "", fmt.Errorf("store sso state: %w", err)
	}
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce)}
	if p.MaxAge > 0 {
		opts = append(opts, oauth2.SetAuthURLParam("max_age", strconv.FormatInt(int64(p.MaxAge/time.Second), 10)))
	}
	if p.RequiredACR != "" {
		opts = append(opts, oauth2.SetAuthURLParam("acr_values", p.RequiredACR))
	}
	return s.oauthConfig(p, secret, callback, op).AuthCodeURL(state, opts...), state, nil
}

// Result is an upstream log-on that passed every check.
type Result struct {
	Provider Provider
	Subject  string
	// AccountID is the linked account; empty when the identity is not
	// linked yet, and then Pending is the reference of the link that the
	// first local log-on completes (CompleteLink).
	AccountID string
	Pending   string
	// TwoFactors: the provider is trusted for upstream MFA and amr proved
	// two factor categories; no local second factor is needed.
	TwoFactors bool
	AMR        []string
}

// Finish completes a log-on: browserState is the state the browser kept
// (cookie), state and code the provider's answer. Every refusal is a
// *RefusedError and is logged.
func (s *Service) Finish(ctx context.Context, browserState, state, code, callback, source string) (Result, error) {
	res, err := s.finish(ctx, browserState, state, code, callback)
	var re *RefusedError
	if errors.As(err, &re) {
		ev := audit.Event{Action: audit.ActionLogon, Outcome: audit.OutcomeFailed, TenantID: res.Provider.TenantID, UserID: res.AccountID,
			Reason: "sso: " + re.Reason, Query: "sso " + res.Provider.Issuer, SourceAddr: source}
		if _, lerr := s.c.Audit.Append(ctx, ev); lerr != nil {
			return Result{}, fmt.Errorf("log refused sso log-on: %w", lerr)
		}
	}
	return res, err
}

func (s *Service) finish(ctx context.Context, browserState, state, code, callback string) (Result, error) {
	refuse := func(r Result, reason string) (Result, error) { return r, &RefusedError{Reason: reason} }
	if state == "" || len(state) > 200 || !equal(browserState, state) {
		return refuse(Result{}, "state does not match this browser's")
	}
	now := s.c.Clock.Now()
	var providerID, nonce, verifier string
	err := s.c.DB.Tx(ctx, func(tx *store.Tx) error {
		err := tx.QueryRowContext(ctx, `SELECT provider_id, nonce, verifier FROM sso_states WHERE hash = $1 AND used_at IS NULL AND expires_at > $2`,
			hash(state), clock.Micros(now)).Scan(&providerID, &nonce, &verifier)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE sso_states SET used_at = $1 WHERE hash = $2`, clock.Micros(now), hash(state))
		return err
	})
	if errors.Is(err, sql.ErrNoRows) {
		return refuse(Result{}, "unknown, expired or used state")
	}
	if err != nil {
		return Result{}, fmt.Errorf("read sso state: %w", err)
	}
	p, secret, err := s.activeProvider(ctx, providerID)
	if errors.Is(err, ErrNotFound) {
		return refuse(Result{}, "the provider is no longer active")
	}
	if err != nil {
		return Result{}, err
	}
	res := Result{Provider: p}
	op, err := s.discover(ctx, p.Issuer)
	if err != nil {
		return res, err
	}
	hctx := oidc.ClientContext(ctx, s.c.HTTP)
	tok, err := s.oauthConfig(p, secret, callback, op).Exchange(hctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		return refuse(res, "the provider refused the code: "+truncate(err.Error(), 200))
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return refuse(res, "no id_token")
	}
	// go-oidc checks the signature against the provider's keys, iss, aud
	// (our client id) and exp, on the injected clock.
	idt, err := op.VerifierContext(hctx, &oidc.Config{ClientID: p.ClientID, Now: s.c.Clock.Now}).Verify(hctx, raw)
	if err != nil {
		return refuse(res, "id_token: "+truncate(err.Error(), 200))
	}
	var claims struct {
		Nonce    string   `json:"nonce"`
		AuthTime int64    `json:"auth_time"`
		ACR      string   `json:"acr"`
		AMR      []string `json:"amr"`
	}
	if err := idt.Claims(&claims); err != nil {
		return refuse(res, "id_token claims unreadable")
	}
	res.Subject, res.AMR = idt.Subject, claims.AMR
	switch {
	case !equal(claims.Nonce, nonce):
		return refuse(res, "nonce does not match the request's")
	case idt.Subject == "" || len(idt.Subject) > 255:
		return refuse(res, "no usable subject")
	case p.RequiredACR != "" && claims.ACR != p.RequiredACR:
		return refuse(res, "acr "+strconv.Quote(claims.ACR)+" is not the required "+strconv.Quote(p.RequiredACR))
	case p.MaxAge > 0 && claims.AuthTime == 0:
		return refuse(res, "no auth_time while max_age is set")
	case p.MaxAge > 0 && now.Sub(time.Unix(claims.AuthTime, 0)) > p.MaxAge+clockSkew:
		return refuse(res, "the upstream authentication is older than max_age")
	}
	proven := twoFactors(claims.AMR, p.AllowedAMR)
	res.TwoFactors = p.TrustMFA && proven
	var account string
	var lastMFA bool
	err = s.c.DB.QueryRowContext(ctx, `SELECT l.account_id, l.last_mfa FROM sso_links l JOIN accounts a ON a.id = l.account_id
		WHERE l.issuer = $1 AND l.subject = $2 AND l.tenant_id = $3 AND a.status = 'active'`, p.Issuer, idt.Subject, p.TenantID).Scan(&account, &lastMFA)
	if errors.Is(err, sql.ErrNoRows) {
		ref, err := s.random("zkl_", 32)
		if err != nil {
			return res, err
		}
		if _, err := s.c.DB.ExecContext(ctx, `INSERT INTO sso_pending_links (hash, provider_id, issuer, subject, expires_at) VALUES ($1, $2, $3, $4, $5)`,
			hash(ref), p.ID, p.Issuer, idt.Subject, clock.Micros(now.Add(FlowTTL))); err != nil {
			return res, fmt.Errorf("store pending link: %w", err)
		}
		res.Pending = ref
		return res, nil
	}
	if err != nil {
		return res, fmt.Errorf("read sso link: %w", err)
	}
	res.AccountID = account
	if lastMFA && !proven {
		// The provider asserted two factors for this user before and now
		// only one: a changed policy upstream, or someone with only the
		// password (LOG-9).
		if s.c.Alerts != nil {
			if _, err := s.c.Alerts.Raise(ctx, s.c.DB, alert.Entry{TenantID: p.TenantID, Kind: "sso-mfa-downgrade", AccountID: account,
				Ref: p.ID, Detail: "provider " + p.Name + " used to prove two factors for this account and now sent " + fmt.Sprint(claims.AMR)}); err != nil {
				return res, fmt.Errorf("raise security event: %w", err)
			}
		}
	}
	if lastMFA != proven {
		if _, err := s.c.DB.ExecContext(ctx, `UPDATE sso_links SET last_mfa = $1 WHERE issuer = $2 AND subject = $3`, proven, p.Issuer, idt.Subject); err != nil {
			return res, fmt.Errorf("update sso link: %w", err)
		}
	}
	return res, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// CompleteLink links the upstream identity of a pending reference to the
// account that has just logged on locally (with two factors), once: the
// account must be active and of the provider's tenant.
func (s *Service) CompleteLink(ctx context.Context, ref, accountID string) error {
	now := s.c.Clock.Now()
	return s.c.DB.Tx(ctx, func(tx *store.Tx) error {
		var providerID, issuer, subject, tenant string
		err := tx.QueryRowContext(ctx, `SELECT l.provider_id, l.issuer, l.subject, p.tenant_id FROM sso_pending_links l
			JOIN sso_providers p ON p.id = l.provider_id AND p.status = 'active'
			WHERE l.hash = $1 AND l.used_at IS NULL AND l.expires_at > $2`, hash(ref), clock.Micros(now)).Scan(&providerID, &issuer, &subject, &tenant)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("read pending link: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE sso_pending_links SET used_at = $1 WHERE hash = $2`, clock.Micros(now), hash(ref)); err != nil {
			return fmt.Errorf("use pending link: %w", err)
		}
		return s.link(ctx, tx, Admin{AccountID: accountID, TenantID: tenant}, issuer, subject, accountID, "linked at the first log-on")
	})
}

// Link links an upstream identity to an account of the admin's tenant (an
// admin's link, for accounts that do not log on locally first).
func (s *Service) Link(ctx context.Context, admin Admin, providerID, subject, accountID string) error {
	p, err := s.Provider(ctx, admin.TenantID, providerID)
	if err != nil {
		return err
	}
	if subject == "" || len(subject) > 255 {
		return &InvalidError{Field: "subject", Reason: "the upstream subject (sub) is required, at most 255 characters"}
	}
	return s.c.DB.Tx(ctx, func(tx *store.Tx) error {
		return s.link(ctx, tx, admin, p.Issuer, subject, accountID, "linked by an admin")
	})
}

func (s *Service) link(ctx context.Context, tx *store.Tx, by Admin, issuer, subject, accountID, how string) error {
	var tenant, status string
	err := tx.QueryRowContext(ctx, `SELECT COALESCE(tenant_id, ''), status FROM accounts WHERE id = $1`, accountID).Scan(&tenant, &status)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && (tenant != by.TenantID || status != "active")) {
		return &InvalidError{Field: "account_id", Reason: "no active account of this organisation"}
	}
	if err != nil {
		return fmt.Errorf("link: %w", err)
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO sso_links (issuer, subject, account_id, tenant_id, linked_by, linked_at) VALUES ($1, $2, $3, $4, $5, $6)`,
		issuer, subject, accountID, tenant, by.AccountID, clock.Micros(s.c.Clock.Now()))
	if store.IsUniqueViolation(err) {
		return &InvalidError{Field: "subject", Reason: "this upstream identity, or this account at this provider, is linked already"}
	}
	if err != nil {
		return fmt.Errorf("link: %w", err)
	}
	_, err = s.c.Audit.AppendIn(ctx, tx, audit.Event{Action: audit.ActionUpdate, Outcome: audit.OutcomeSuccess, TenantID: tenant, UserID: by.AccountID,
		Resources: []string{"Account/" + accountID}, Query: "sso identity " + issuer + " " + how})
	if err != nil {
		return fmt.Errorf("log sso link: %w", err)
	}
	return nil
}
