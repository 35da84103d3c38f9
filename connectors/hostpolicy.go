package connectors

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"syscall"
	"time"
)

type netConn = net.Conn

// HostPolicy decides which addresses a user database may live at. It is
// enforced on the address actually dialled, after DNS resolution, so a name
// that resolves to a forbidden address (or re-resolves to one) is refused.
// Only TCP is ever dialled: a unix socket path is refused.
//
// Whatever the settings, it refuses the service's own listeners (Own), the
// cloud metadata and other special-purpose ranges, and IPv6 addresses whose
// embedded IPv4 address is refused.
type HostPolicy struct {
	// AllowPrivate allows loopback, RFC 1918 and unique-local addresses.
	AllowPrivate bool
	// AllowCIDRs allows exactly these ranges even when AllowPrivate is
	// false (MCP_ALLOWED_HOST_CIDRS), e.g. one database subnet. They never
	// open an always-refused range.
	AllowCIDRs []netip.Prefix
	// Own lists the service's own listeners: its API, embedded servers,
	// metrics and profiling ports, and the NATS and MongoDB servers it is
	// configured with. An unspecified address (0.0.0.0 or ::) stands for
	// every address of this machine.
	Own []netip.AddrPort

	local []netip.Addr // this machine's interface addresses, for Own
}

// alwaysRefused are ranges no user database may be at, with the reason.
var alwaysRefused = []struct {
	p   netip.Prefix
	why string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "in the 'this network' range"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local (cloud metadata range)"},
	{netip.MustParsePrefix("100.64.0.0/10"), "in the shared address space (a cloud metadata range)"},
	{netip.MustParsePrefix("192.0.0.0/24"), "in the IETF protocol assignments range (a cloud metadata range)"},
	{netip.MustParsePrefix("198.18.0.0/15"), "in the benchmarking range"},
	{netip.MustParsePrefix("240.0.0.0/4"), "in a reserved range"},
	{netip.MustParsePrefix("fe80::/10"), "link-local (cloud metadata range)"},
	{netip.MustParsePrefix("fd00:ec2::254/128"), "a cloud metadata endpoint"},
	{netip.MustParsePrefix("2001::/32"), "a Teredo address, which hides an IPv4 address"},
	{netip.MustParsePrefix("100::/64"), "in the discard-only range"},
}

// embeds are IPv6 ranges whose addresses carry an IPv4 address, and where
// in the 16 bytes it sits. The IPv4 address is checked like any other.
var embeds = []struct {
	p   netip.Prefix
	off int
}{
	{netip.MustParsePrefix("64:ff9b::/96"), 12},      // NAT64, well-known prefix
	{netip.MustParsePrefix("64:ff9b:1::/48"), 12},    // NAT64, local-use prefix
	{netip.MustParsePrefix("::ffff:0:0:0/96"), 12},   // SIIT IPv4-translated
	{netip.MustParsePrefix("2002::/16"), 2},          // 6to4
	{netip.MustParsePrefix("::/96"), 12},             // IPv4-compatible (deprecated)
	{netip.MustParsePrefix("::ffff:0.0.0.0/96"), 12}, // IPv4-mapped
}

// NewHostPolicy builds a policy and records this machine's addresses, so
// that an Own listener on 0.0.0.0 is refused at every local address.
func NewHostPolicy(allowPrivate bool, allow []netip.Prefix, own []netip.AddrPort) HostPolicy {
	p := HostPolicy{AllowPrivate: allowPrivate, AllowCIDRs: allow, Own: own}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if pfx, err := netip.ParsePrefix(a.String()); err == nil {
				p.local = append(p.local, pfx.Addr().Unmap())
			}
		}
	}
	return p
}

// embedded returns the IPv4 address an IPv6 address carries, if any.
func embedded(ip netip.Addr) (netip.Addr, bool) {
	if !ip.Is6() {
		return netip.Addr{}, false
	}
	b := ip.As16()
	for _, e := range embeds {
		if e.p.Contains(ip) {
			v4 := netip.AddrFrom4([4]byte(b[e.off : e.off+4]))
			if e.p.Bits() == 96 && e.off == 12 && (v4.As4() == [4]byte{} || v4.As4() == [4]byte{0, 0, 0, 1}) && e.p.Addr().IsUnspecified() {
				return netip.Addr{}, false // :: and ::1, not IPv4-compatible forms
			}
			return v4, true
		}
	}
	return netip.Addr{}, false
}

// Check reports why an address may not be dialled, or nil. It knows nothing
// of ports: CheckAddr also refuses the service's own listeners.
func (p HostPolicy) Check(ip netip.Addr) error {
	ip = ip.WithZone("")
	if v4, ok := embedded(ip); ok {
		if err := p.Check(v4); err != nil {
			return fmt.Errorf("address %s embeds %s: %w", ip, v4, err)
		}
		return nil
	}
	for _, r := range alwaysRefused {
		if r.p.Contains(ip) {
			return fmt.Errorf("address %s is %s", ip, r.why)
		}
	}
	switch {
	case ip.IsUnspecified() || ip.IsMulticast() || ip == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return fmt.Errorf("address %s is not a unicast host address", ip)
	case p.AllowPrivate || p.allowed(ip):
		return nil
	case ip.IsLoopback():
		return fmt.Errorf("address %s is loopback, and private hosts are not allowed on this server", ip)
	case ip.IsPrivate():
		return fmt.Errorf("address %s is in a private range, and private hosts are not allowed on this server", ip)
	}
	return nil
}

func (p HostPolicy) allowed(ip netip.Addr) bool {
	for _, c := range p.AllowCIDRs {
		if c.Contains(ip) {
			return true
		}
	}
	return false
}

// CheckAddr is Check plus the service's own listeners.
func (p HostPolicy) CheckAddr(ap netip.AddrPort) error {
	ip := ap.Addr().Unmap().WithZone("")
	if v4, ok := embedded(ip); ok {
		ip = v4
	}
	for _, own := range p.Own {
		if own.Port() != ap.Port() {
			continue
		}
		o := own.Addr().Unmap()
		// Loopback is one host whatever the spelling (127.0.0.2, ::1).
		if o == ip || (o.IsUnspecified() && p.isLocal(ip)) || (o.IsLoopback() && ip.IsLoopback()) {
			return fmt.Errorf("address %s is one of this service's own servers", ap)
		}
	}
	return p.Check(ap.Addr().Unmap())
}

// isLocal reports whether ip is an address of this machine.
func (p HostPolicy) isLocal(ip netip.Addr) bool {
	if ip.IsLoopback() || ip.IsUnspecified() {
		return true
	}
	for _, l := range p.local {
		if l == ip {
			return true
		}
	}
	return false
}

// Dialer returns a dial function that refuses forbidden addresses at connect
// time, with a KindPolicy error that says why.
func (p HostPolicy) Dialer(timeout time.Duration) DialContextFunc {
	d := &net.Dialer{
		Timeout: timeout,
		Control: func(network, address string, _ syscall.RawConn) error {
			if network != "tcp" && network != "tcp4" && network != "tcp6" {
				return &Error{Kind: KindPolicy, Msg: "host not allowed: only TCP connections are allowed"}
			}
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return &Error{Kind: KindPolicy, Msg: "host not allowed: cannot parse the address"}
			}
			if err := p.CheckAddr(ap); err != nil {
				return &Error{Kind: KindPolicy, Msg: "host not allowed: " + err.Error()}
			}
			return nil
		},
	}
	return d.DialContext
}

// CheckHost resolves host and refuses it if any address it resolves to, at
// port, is forbidden. Use it to give a clear answer before dialling; the
// Dialer still enforces the policy on the address finally used.
func (p HostPolicy) CheckHost(ctx context.Context, host string, port int) error {
	if port < 0 || port > 65535 {
		port = 0
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if err := p.CheckAddr(netip.AddrPortFrom(ip, uint16(port))); err != nil {
			return &Error{Kind: KindPolicy, Msg: "host not allowed: " + err.Error()}
		}
		return nil
	}
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return &Error{Kind: KindUnavailable, Msg: fmt.Sprintf("cannot resolve host %q", Prefix(host)), Err: err}
	}
	for _, a := range addrs {
		if err := p.CheckAddr(netip.AddrPortFrom(a, uint16(port))); err != nil {
			return &Error{Kind: KindPolicy, Msg: fmt.Sprintf("host %q not allowed: %v", Prefix(host), err)}
		}
	}
	return nil
}

// OwnAddrs resolves the host:port addresses of the service's own servers
// (listeners and configured NATS and MongoDB hosts) for HostPolicy.Own. A
// name is resolved now; one that does not resolve is skipped, as nothing can
// dial it either. An empty host stands for every local address.
func OwnAddrs(ctx context.Context, hostports ...string) []netip.AddrPort {
	var out []netip.AddrPort
	for _, hp := range hostports {
		host, ps, err := net.SplitHostPort(hp)
		if err != nil {
			continue
		}
		port, err := strconv.ParseUint(ps, 10, 16)
		if err != nil || port == 0 {
			continue
		}
		if host == "" {
			out = append(out, netip.AddrPortFrom(netip.IPv6Unspecified(), uint16(port)))
			continue
		}
		if ip, err := netip.ParseAddr(host); err == nil {
			out = append(out, netip.AddrPortFrom(ip.Unmap(), uint16(port)))
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		addrs, _ := net.DefaultResolver.LookupNetIP(rctx, "ip", host)
		cancel()
		for _, a := range addrs {
			out = append(out, netip.AddrPortFrom(a.Unmap(), uint16(port)))
		}
	}
	return out
}

// Prefix returns at most the first 32 characters of s, for echoing user
// input in an error message.
func Prefix(s string) string {
	const max = 32
	if len(s) <= max {
		return s
	}
	r := []rune(s[:max])
	if len(r) > 1 {
		r = r[:len(r)-1] // a rune cut in half
	}
	return string(r) + "…"
}
