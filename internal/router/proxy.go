package router

import (
	"net"
	"net/http"
	"strings"
)

// clientAddr is the address the access log records: the connection's peer,
// or, when that peer is a trusted proxy, the nearest address in its
// Forwarded (RFC 7239) or X-Forwarded-For header that is not itself a
// trusted proxy. Headers from anyone else are ignored: a client could write
// anything there.
func clientAddr(r *http.Request, trusted []*net.IPNet) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if len(trusted) == 0 || !isTrusted(host, trusted) {
		return host
	}
	hops := forwardedFor(r.Header.Values("Forwarded"))
	if len(hops) == 0 {
		hops = xForwardedFor(r.Header.Values("X-Forwarded-For"))
	}
	addr := host
	for i := len(hops) - 1; i >= 0; i-- {
		ip := net.ParseIP(hops[i])
		if ip == nil {
			break // an unparsable hop: keep the last trusted one
		}
		addr = ip.String()
		if !isTrusted(addr, trusted) {
			break
		}
	}
	return addr
}

func isTrusted(host string, trusted []*net.IPNet) bool {
	ip := net.ParseIP(host)
	if ip == nil {
		return false
	}
	for _, n := range trusted {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

// xForwardedFor lists the addresses of X-Forwarded-For headers, in order.
func xForwardedFor(vals []string) []string {
	var out []string
	for _, v := range vals {
		for _, p := range strings.Split(v, ",") {
			out = append(out, strings.TrimSpace(p))
		}
	}
	return out
}

// forwardedFor lists the for= addresses of Forwarded headers, in order,
// without quotes, brackets or ports ("unknown" and obfuscated ids stay as
// they are and stop the walk).
func forwardedFor(vals []string) []string {
	var out []string
	for _, v := range vals {
		for _, elem := range strings.Split(v, ",") {
			for _, pair := range strings.Split(elem, ";") {
				k, val, ok := strings.Cut(strings.TrimSpace(pair), "=")
				if !ok || !strings.EqualFold(k, "for") {
					continue
				}
				val = strings.Trim(val, `"`)
				if strings.HasPrefix(val, "[") {
					if end := strings.Index(val, "]"); end > 0 {
						val = val[1:end]
					}
				} else if h, _, err := net.SplitHostPort(val); err == nil {
					val = h
				}
				out = append(out, val)
			}
		}
	}
	return out
}
