package webhook

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// blockedPrefixes are the ranges netip's predicates do not already cover
// (loopback, RFC 1918 and fc00::/7, link-local, multicast, unspecified):
// addresses that are not the public internet, from the IANA special-purpose
// registries (RFC 6890).
var blockedPrefixes = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),      // "this network" (RFC 791); 0.x reaches loopback on Linux
	netip.MustParsePrefix("100.64.0.0/10"),  // carrier-grade NAT (RFC 6598)
	netip.MustParsePrefix("192.0.0.0/24"),   // IETF protocol assignments (RFC 6890)
	netip.MustParsePrefix("198.18.0.0/15"),  // benchmarking (RFC 2544)
	netip.MustParsePrefix("240.0.0.0/4"),    // reserved, and 255.255.255.255 broadcast
	netip.MustParsePrefix("64:ff9b::/96"),   // NAT64 (RFC 6052): may embed any IPv4, private included
	netip.MustParsePrefix("64:ff9b:1::/48"), // local-use NAT64 (RFC 8215)
	netip.MustParsePrefix("2002::/16"),      // 6to4 (RFC 3056): embeds an IPv4
	netip.MustParsePrefix("100::/64"),       // discard-only (RFC 6666)
}

// allowedAddr reports whether a webhook may connect to ip: public unicast
// only. Cloud metadata (169.254.169.254, fd00:ec2::254) is link-local or
// private and so refused.
func allowedAddr(ip netip.Addr) bool {
	ip = ip.Unmap() // ::ffff:127.0.0.1 is 127.0.0.1
	if !ip.IsValid() || ip.Zone() != "" ||
		ip.IsLoopback() || ip.IsPrivate() || ip.IsUnspecified() ||
		ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsInterfaceLocalMulticast() || ip.IsMulticast() {
		return false
	}
	for _, p := range blockedPrefixes {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}

// guardControl is a net.Dialer Control function that refuses to connect
// to addresses allowedAddr refuses. It runs after name resolution, on the
// very address the socket is about to connect to, so a name that resolved
// to a public address when the subscription was made and to 127.0.0.1
// now (DNS rebinding) is still refused.
func guardControl(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: unparsable address %q", ErrForbiddenTarget, address)
	}
	if !allowedAddr(ap.Addr()) {
		return fmt.Errorf("%w: %s", ErrForbiddenTarget, ap.Addr())
	}
	return nil
}

// newDialer returns the dialer of deliveries: guarded unless allowPrivate.
func newDialer(timeout time.Duration, allowPrivate bool) *net.Dialer {
	d := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	if !allowPrivate {
		d.Control = guardControl
	}
	return d
}

// lookupFunc resolves a host name to addresses.
type lookupFunc func(ctx context.Context, host string) ([]netip.Addr, error)

func defaultLookup(ctx context.Context, host string) ([]netip.Addr, error) {
	return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
}

// maxURL bounds a webhook URL; browsers and proxies commonly cap at 2 KiB.
const maxURL = 2048

// checkURL validates a subscription's URL: absolute http(s), a host, no
// credentials or fragment, and unless allowPrivate a host that is not,
// and does not resolve to, an internal address. The check at dial time
// (guardControl) is the one that counts; this one gives the admin a clear
// answer at creation instead of a dead letter later.
func checkURL(ctx context.Context, raw string, allowPrivate bool, lookup lookupFunc) (*url.URL, error) {
	if raw == "" {
		return nil, fmt.Errorf("%w: url: required", ErrInvalid)
	}
	if len(raw) > maxURL {
		return nil, fmt.Errorf("%w: url: longer than %d bytes", ErrInvalid, maxURL)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: url: not a URL", ErrInvalid)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("%w: url: scheme must be http or https", ErrInvalid)
	}
	host := u.Hostname()
	if host == "" {
		return nil, fmt.Errorf("%w: url: a host is required", ErrInvalid)
	}
	if u.User != nil {
		return nil, fmt.Errorf("%w: url: credentials in the URL are not allowed; the signature authenticates the sender", ErrInvalid)
	}
	if u.Fragment != "" || u.Opaque != "" {
		return nil, fmt.Errorf("%w: url: fragments and opaque URLs are not allowed", ErrInvalid)
	}
	if allowPrivate {
		return u, nil
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if !allowedAddr(ip) {
			return nil, fmt.Errorf("%w: url: %s is a loopback, private, link-local or reserved address, which webhooks may not target unless the server allows private targets", ErrForbiddenTarget, ip)
		}
		return u, nil
	}
	lh := strings.ToLower(strings.TrimSuffix(host, "."))
	if lh == "localhost" || strings.HasSuffix(lh, ".localhost") { // RFC 6761
		return nil, fmt.Errorf("%w: url: %s is loopback, which webhooks may not target unless the server allows private targets", ErrForbiddenTarget, host)
	}
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	addrs, err := lookup(lctx, host)
	if err != nil || len(addrs) == 0 {
		return nil, fmt.Errorf("%w: url: host %s does not resolve", ErrInvalid, host)
	}
	for _, a := range addrs {
		if !allowedAddr(a) {
			return nil, fmt.Errorf("%w: url: %s resolves to %s, a loopback, private, link-local or reserved address, which webhooks may not target unless the server allows private targets", ErrForbiddenTarget, host, a.Unmap())
		}
	}
	return u, nil
}
