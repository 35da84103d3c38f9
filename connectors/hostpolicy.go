package connectors

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"
)

type netConn = net.Conn

// HostPolicy decides which addresses a user database may live at. It is
// enforced on the address actually dialled, after DNS resolution, so a name
// that resolves to a forbidden address (or re-resolves to one) is refused.
type HostPolicy struct {
	// AllowPrivate allows loopback, RFC 1918 and unique-local addresses.
	AllowPrivate bool
}

var (
	linkLocal4  = netip.MustParsePrefix("169.254.0.0/16")
	linkLocal6  = netip.MustParsePrefix("fe80::/10")
	ec2Metadata = netip.MustParseAddr("fd00:ec2::254")
)

// Check reports why an address may not be dialled, or nil.
func (p HostPolicy) Check(ip netip.Addr) error {
	ip = ip.Unmap()
	switch {
	case ip == ec2Metadata:
		return fmt.Errorf("address %s is a cloud metadata endpoint", ip)
	case linkLocal4.Contains(ip) || linkLocal6.Contains(ip):
		return fmt.Errorf("address %s is link-local (cloud metadata range)", ip)
	case ip.IsUnspecified() || ip.IsMulticast():
		return fmt.Errorf("address %s is not a unicast host address", ip)
	case !p.AllowPrivate && ip.IsLoopback():
		return fmt.Errorf("address %s is loopback, and private hosts are not allowed on this server", ip)
	case !p.AllowPrivate && ip.IsPrivate():
		return fmt.Errorf("address %s is in a private range, and private hosts are not allowed on this server", ip)
	}
	return nil
}

// Dialer returns a dial function that refuses forbidden addresses at connect
// time, with a KindPolicy error that says why.
func (p HostPolicy) Dialer(timeout time.Duration) DialContextFunc {
	d := &net.Dialer{
		Timeout: timeout,
		Control: func(_, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("host policy: cannot parse %q", address)
			}
			if err := p.Check(ap.Addr()); err != nil {
				return &Error{Kind: KindPolicy, Msg: "host not allowed: " + err.Error()}
			}
			return nil
		},
	}
	return d.DialContext
}

// CheckHost resolves host and refuses it if any address it resolves to is
// forbidden. Use it to give a clear answer before dialling; the Dialer still
// enforces the policy on the address finally used.
func (p HostPolicy) CheckHost(ctx context.Context, host string) error {
	if ip, err := netip.ParseAddr(host); err == nil {
		if err := p.Check(ip); err != nil {
			return &Error{Kind: KindPolicy, Msg: "host not allowed: " + err.Error()}
		}
		return nil
	}
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return &Error{Kind: KindUnavailable, Msg: fmt.Sprintf("cannot resolve host %q", host), Err: err}
	}
	for _, a := range addrs {
		if err := p.Check(a); err != nil {
			return &Error{Kind: KindPolicy, Msg: fmt.Sprintf("host %q not allowed: %v", host, err)}
		}
	}
	return nil
}
