package server

import (
	"crypto/tls"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// maxForwardedHops caps the X-Forwarded-For entries examined: real chains
// are one to three proxies long; a client must not make us parse a 64 KiB
// list.
const maxForwardedHops = 16

// proxyTrust rewrites a request that arrives from a trusted reverse proxy
// so that everything after it sees the real client: RemoteAddr becomes the
// client address from X-Forwarded-For (the rightmost entry that is not a
// trusted proxy itself, since entries to the left of it are whatever the
// client claimed), and X-Forwarded-Proto: https marks the request as
// secure. From any other peer both headers are ignored.
//
// "Secure" is carried the way every handler already checks it, r.TLS !=
// nil: a request the proxy received over HTTPS gets an empty
// tls.ConnectionState, so session cookies get the Secure attribute and
// absolute URLs say https. RemoteAddr is set to the bare client IP (no
// port: the proxy does not forward it), which the access log, the login
// throttle and the limits all read.
type proxyTrust struct {
	trusted []netip.Prefix
	next    http.Handler
}

func (p *proxyTrust) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if len(p.trusted) == 0 || !p.isTrusted(remoteIP(r.RemoteAddr)) {
		p.next.ServeHTTP(w, r)
		return
	}
	client, ok := p.forwardedClient(r.Header.Values("X-Forwarded-For"))
	proto := strings.ToLower(strings.TrimSpace(firstValue(r.Header.Get("X-Forwarded-Proto"))))
	if !ok && proto == "" {
		p.next.ServeHTTP(w, r)
		return
	}
	r2 := new(http.Request)
	*r2 = *r // shallow copy: the rewrite is ours, the caller's request stays as it came
	if ok {
		r2.RemoteAddr = client.String()
	}
	if proto == "https" && r2.TLS == nil {
		r2.TLS = &tls.ConnectionState{}
	}
	p.next.ServeHTTP(w, r2)
}

func (p *proxyTrust) isTrusted(a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	for _, pr := range p.trusted {
		if pr.Contains(a) {
			return true
		}
	}
	return false
}

// forwardedClient walks X-Forwarded-For from the right (the entry the
// nearest proxy added) past trusted proxies and returns the first address
// that is not one. If every entry is a trusted proxy, the leftmost is the
// client. ok is false when the header is absent or an entry examined is
// not an IP address (a broken or forged chain: keep the peer address).
func (p *proxyTrust) forwardedClient(values []string) (netip.Addr, bool) {
	var hops []string
	for _, v := range values {
		for _, h := range strings.Split(v, ",") {
			if h = strings.TrimSpace(h); h != "" {
				hops = append(hops, h)
			}
		}
	}
	if len(hops) == 0 {
		return netip.Addr{}, false
	}
	if len(hops) > maxForwardedHops {
		hops = hops[len(hops)-maxForwardedHops:]
	}
	var last netip.Addr
	for i := len(hops) - 1; i >= 0; i-- {
		a := parseHop(hops[i])
		if !a.IsValid() {
			return netip.Addr{}, false
		}
		last = a
		if !p.isTrusted(a) {
			return a, true
		}
	}
	return last, true
}

// parseHop reads one X-Forwarded-For entry: an IP, possibly with a port
// ("192.0.2.1:4711", "[2001:db8::1]:4711") as some proxies write it.
func parseHop(h string) netip.Addr {
	if a, err := netip.ParseAddr(h); err == nil {
		return a.Unmap()
	}
	if ap, err := netip.ParseAddrPort(h); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}

// remoteIP is the IP of an http.Request.RemoteAddr ("ip:port").
func remoteIP(remote string) netip.Addr {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

// firstValue is the first of a comma-separated header value (a proxy
// chain may append "https, http").
func firstValue(v string) string {
	if i := strings.IndexByte(v, ','); i >= 0 {
		return v[:i]
	}
	return v
}
