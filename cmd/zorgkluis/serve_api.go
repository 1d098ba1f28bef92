package main

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zorgkluis/zorgkluis/internal/pki"
	"github.com/zorgkluis/zorgkluis/internal/router"
	"github.com/zorgkluis/zorgkluis/internal/server"
)

// revocationPoll is how often the server looks for revocations to close
// open connections by (DP-3: within a second) and sweeps the certificates
// of deactivated responsible persons (ID-5).
const revocationPoll = 250 * time.Millisecond

// apiEndpoint is the API listener for third-party systems: mutual TLS with
// the server's certificate, every client certificate verified against the
// organisations' CA and the revocation table on every handshake.
// ln is the API address's listener, opened by serve's start-up checks.
func apiEndpoint(ctx context.Context, a *app, log *slog.Logger, ln net.Listener, public *tls.Config, base string, reg prometheus.Registerer) (server.Endpoint, string, error) {
	peers := server.NewPeerConns()
	conf := peers.TLSConfig(public, func(cs tls.ConnectionState) (string, error) {
		raw := make([][]byte, len(cs.PeerCertificates))
		for i, c := range cs.PeerCertificates {
			raw[i] = c.Raw
		}
		vctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		p, err := a.ca.Verify(vctx, raw)
		var re *pki.RefusedError
		switch {
		case errors.As(err, &re):
			log.Warn("client certificate refused at the handshake", "reason", re.Reason)
		case err != nil:
			log.Error("client certificate check failed", "err", err)
		}
		return p.Serial, err
	})
	h, err := router.NewAPI(router.Deps{DB: a.db, IDs: a.ids, Authn: a.authn, Access: a.access, Records: a.records, Audit: a.audit,
		Clock: a.clock, Log: log, Version: buildVersion(), BaseURL: base, MaxBodyBytes: a.cfg.MaxBodyBytes, CA: a.ca})
	if err != nil {
		ln.Close()
		return server.Endpoint{}, "", err
	}
	expiring := prometheus.NewGauge(prometheus.GaugeOpts{Name: "zorgkluis_pki_certificates_expiring",
		Help: "Current system certificates that expire within 30 days."})
	open := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "zorgkluis_api_connections_open",
		Help: "Open connections on the API listener."}, func() float64 { return float64(peers.Open()) })
	if reg != nil {
		reg.MustRegister(expiring, open)
	}
	go watchRevocations(ctx, a, log, peers, expiring)
	return server.Endpoint{Name: "api", Listener: peers.Listener(ln), Handler: h, TLS: conf}, "https://" + displayAddr(ln.Addr().String()), nil
}

// watchRevocations closes the open connections of certificates revoked on
// any replica (they share the database), revokes the certificates of
// deactivated responsible persons, and counts certificates near expiry.
func watchRevocations(ctx context.Context, a *app, log *slog.Logger, peers *server.PeerConns, expiring prometheus.Gauge) {
	since := a.clock.Now().Add(-time.Second)
	t := time.NewTicker(revocationPoll)
	defer t.Stop()
	var lastExpiry time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := a.ca.Sweep(ctx, pki.OperatorEvent("zorgkluis serve")); err != nil && ctx.Err() == nil {
			log.Warn("sweeping certificates of deactivated persons failed", "err", err)
		}
		serials, next, err := a.ca.RevokedSince(ctx, since)
		if err != nil {
			if ctx.Err() == nil {
				log.Warn("reading revocations failed", "err", err)
			}
			continue
		}
		// A revocation committed with an earlier timestamp than one already
		// seen (clock skew between replicas) is still caught: look back a
		// second.
		since = next.Add(-time.Second)
		if n := peers.Close(serials); n > 0 {
			log.Info("closed connections of revoked certificates", "connections", n)
		}
		if now := a.clock.Now(); now.Sub(lastExpiry) > time.Hour {
			lastExpiry = now
			// The metric counts what expires within 30 days; the security
			// event (and so the webhook and the officer's queue) comes once
			// per certificate.
			if cs, err := a.ca.Expiring(ctx, pki.ExpiryWarning); err == nil {
				expiring.Set(float64(len(cs)))
			}
			if _, err := a.ca.WarnExpiring(ctx, a.queue); err != nil && ctx.Err() == nil {
				log.Warn("certificate expiry warnings failed", "err", err)
			}
		}
	}
}

func closeAll(eps []server.Endpoint) {
	for _, ep := range eps {
		ep.Listener.Close()
	}
}
