package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// lookupFunc resolves a host name (net.Resolver.LookupIPAddr in production,
// a fake in tests so that they never touch the network).
type lookupFunc func(ctx context.Context, host string) ([]net.IPAddr, error)

// target is a server address that was checked to be on loopback.
type target struct {
	url  *url.URL
	host string   // as written in the URL
	port string   // explicit or the scheme's default
	ips  []net.IP // every address the host resolved to; all loopback
}

// loopbackTarget parses raw and accepts it only when every address its host
// resolves to is a loopback address. The harness then dials only those
// addresses (see dial), so a later DNS answer cannot move it off the machine.
func loopbackTarget(ctx context.Context, raw string, lookup lookupFunc) (target, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return target{}, fmt.Errorf("target %q: %w", raw, err)
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return target{}, fmt.Errorf("target %q: scheme must be https (or http on loopback)", raw)
	}
	if u.User != nil || u.Hostname() == "" {
		return target{}, fmt.Errorf("target %q: want https://HOST[:PORT] without user info", raw)
	}
	host := u.Hostname()
	port := u.Port()
	if port == "" {
		port = map[string]string{"https": "443", "http": "80"}[u.Scheme]
	}
	var ips []net.IP
	if ip := net.ParseIP(host); ip != nil {
		ips = []net.IP{ip}
	} else {
		addrs, err := lookup(ctx, host)
		if err != nil {
			return target{}, fmt.Errorf("target %q: resolve %s: %w", raw, host, err)
		}
		for _, a := range addrs {
			ips = append(ips, a.IP)
		}
	}
	if len(ips) == 0 {
		return target{}, fmt.Errorf("target %q: %s has no address", raw, host)
	}
	for _, ip := range ips {
		if !ip.IsLoopback() {
			return target{}, fmt.Errorf("target %q: %s is %s, not a loopback address; zkload only drives a server on this machine", raw, host, ip)
		}
	}
	u.Path, u.RawQuery, u.Fragment = strings.TrimSuffix(u.Path, "/"), "", ""
	return target{url: u, host: host, port: port, ips: ips}, nil
}

var errOffTarget = errors.New("zkload dials only the checked loopback target")

// dial is the transport's DialContext: it connects only to the checked
// loopback addresses of the target, whatever address it is asked for.
func (t target) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if !strings.EqualFold(host, t.host) || port != t.port {
		return nil, fmt.Errorf("%w (asked for %s)", errOffTarget, addr)
	}
	var d net.Dialer
	var last error
	for _, ip := range t.ips {
		c, err := d.DialContext(ctx, network, net.JoinHostPort(ip.String(), port))
		if err == nil {
			return c, nil
		}
		last = err
	}
	return nil, last
}
