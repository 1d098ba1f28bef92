package sso

import (
	"context"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/change"
	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/identity"
	"github.com/zorgkluis/zorgkluis/internal/store"
	"github.com/zorgkluis/zorgkluis/internal/store/storetest"
	"github.com/zorgkluis/zorgkluis/internal/testkit"
)

// The amr rule (RFC 8176): two factors only from two categories; "mfa" is
// the provider's word for two; values the provider may not assert count
// for nothing.
//
// REQ: AUTH-3, AUTH-1
func TestTwoFactors(t *testing.T) {
	for _, c := range []struct {
		amr, allowed []string
		want         bool
	}{
		{[]string{"pwd", "otp"}, nil, true},
		{[]string{"pwd", "hwk"}, nil, true},
		{[]string{"face", "swk"}, nil, true},
		{[]string{"mfa"}, nil, true},
		{[]string{"pwd"}, nil, false},
		{nil, nil, false},
		{[]string{"pwd", "pin"}, nil, false}, // two things known: one category
		{[]string{"pwd", "kba", "wia"}, nil, false},
		{[]string{"pwd", "user", "rba"}, nil, false},
		{[]string{"pwd", "otp"}, []string{"pwd"}, false}, // otp not allowed for this provider
		{[]string{"mfa"}, []string{"pwd", "otp"}, false},
		{[]string{"pwd", "sms"}, []string{"pwd", "sms"}, true},
	} {
		if got := twoFactors(c.amr, c.allowed); got != c.want {
			t.Errorf("twoFactors(%v, allowed %v) = %v; want %v", c.amr, c.allowed, got, c.want)
		}
	}
}

// A provider is proposed by one admin and decided by another of the same
// tenant, while the proposal is fresh; the secret is sealed, never stored
// as given; links are unique per identity and per account and provider,
// and only to active accounts of the tenant.
//
// REQ: GOV-1, AUTH-3
func TestProvidersFourEyesAndLinks(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		clk := clock.NewFake(time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC))
		ids := identity.NewRegistry(db, clk, rand.Reader)
		s := New(Config{DB: db, Clock: clk, Rand: rand.Reader, Master: testkit.Master(t), Audit: audit.New(db, clk, rand.Reader)})
		ten, _ := ids.CreateTenant(ctx, identity.Tenant{Name: "Ziekenhuis"})
		other, _ := ids.CreateTenant(ctx, identity.Tenant{Name: "Elders"})
		acc, err := ids.CreateAccount(ctx, identity.Account{TenantID: ten.ID, Kind: identity.KindProfessional, Username: "jansen", DisplayName: "Jansen", RegistrationMethod: 3})
		if err != nil {
			t.Fatal(err)
		}
		stranger, _ := ids.CreateAccount(ctx, identity.Account{TenantID: other.ID, Kind: identity.KindProfessional, Username: "elders", DisplayName: "Elders", RegistrationMethod: 3})
		a1, a2 := Admin{AccountID: "a-1", TenantID: ten.ID}, Admin{AccountID: "a-2", TenantID: ten.ID}
		good := Proposal{Name: "IdP", Issuer: "https://login.example.org/tenant/v2.0", ClientID: "zk", ClientSecret: "s3cret", TrustMFA: true}
		for name, p := range map[string]Proposal{
			"http issuer":     {Name: "IdP", Issuer: "http://login.example.org", ClientID: "zk"},
			"no client id":    {Name: "IdP", Issuer: "https://login.example.org"},
			"both secrets":    {Name: "IdP", Issuer: "https://login.example.org", ClientID: "zk", ClientSecret: "x", SecretEnv: "ZK_SSO_X"},
			"bad env name":    {Name: "IdP", Issuer: "https://login.example.org", ClientID: "zk", SecretEnv: "PATH"},
			"bad amr":         {Name: "IdP", Issuer: "https://login.example.org", ClientID: "zk", AllowedAMR: []string{"P W D"}},
			"max_age too big": {Name: "IdP", Issuer: "https://login.example.org", ClientID: "zk", MaxAge: 48 * time.Hour},
		} {
			var bad *InvalidError
			if _, err := s.Propose(ctx, a1, p); !errors.As(err, &bad) {
				t.Errorf("%s: %v; want an invalid field", name, err)
			}
		}
		p, err := s.Propose(ctx, a1, good)
		if err != nil {
			t.Fatal(err)
		}
		var stored []byte
		if err := db.QueryRowContext(ctx, `SELECT secret_sealed FROM sso_providers WHERE id = $1`, p.ID).Scan(&stored); err != nil || len(stored) == 0 ||
			string(stored) == "s3cret" {
			t.Fatalf("the client secret is not sealed: %q %v", stored, err)
		}
		// The proposal is a change request (GOV-1) whose payload never
		// holds the secret.
		req, err := s.c.Changes.Get(ctx, ten.ID, p.ID)
		if err != nil || req.Kind != ChangeProvider || req.Status != change.Pending || strings.Contains(string(req.Payload), "s3cret") ||
			!strings.Contains(string(req.Payload), `"client_secret_sealed":true`) {
			t.Fatalf("the provider's change request: %+v %v", req, err)
		}
		if err := s.Decide(ctx, a1, p.ID, true); !errors.Is(err, ErrSameAdmin) {
			t.Fatalf("the proposer approved: %v", err)
		}
		if err := s.Decide(ctx, Admin{AccountID: "a-9", TenantID: other.ID}, p.ID, true); !errors.Is(err, ErrNotFound) {
			t.Fatalf("another tenant's admin approved: %v", err)
		}
		if err := s.Decide(ctx, a2, p.ID, true); err != nil {
			t.Fatal(err)
		}
		if _, secret, err := s.activeProvider(ctx, p.ID); err != nil || secret != "s3cret" {
			t.Fatalf("the active provider's secret: %q %v", secret, err)
		}
		stale, _ := s.Propose(ctx, a1, good)
		clk.Advance(ProposalTTL + time.Hour)
		if err := s.Decide(ctx, a2, stale.ID, true); err == nil {
			t.Fatal("a stale proposal was approved")
		}
		if got, _ := s.Provider(ctx, ten.ID, stale.ID); got.Status != "expired" {
			t.Fatalf("a stale proposal is %q", got.Status)
		}

		if err := s.Link(ctx, a2, p.ID, "jansen@ziekenhuis", acc.ID); err != nil {
			t.Fatal(err)
		}
		var bad *InvalidError
		if err := s.Link(ctx, a2, p.ID, "jansen@ziekenhuis", acc.ID); !errors.As(err, &bad) {
			t.Fatalf("a second link of the same identity: %v", err)
		}
		if err := s.Link(ctx, a2, p.ID, "someone-else", acc.ID); !errors.As(err, &bad) {
			t.Fatalf("a second identity at the same provider for one account: %v", err)
		}
		if err := s.Link(ctx, a2, p.ID, "elders@elders", stranger.ID); !errors.As(err, &bad) {
			t.Fatalf("a link to another tenant's account: %v", err)
		}
		if err := s.Disable(ctx, a2, p.ID); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.Start(ctx, p.ID, "https://zk.example/logon/sso/callback"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("a disabled provider started a log-on: %v", err)
		}
	})
}
