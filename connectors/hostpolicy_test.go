package connectors

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// Ranges refused whatever MCP_ALLOW_PRIVATE_HOSTS says, in every spelling
// that reaches them: plain, IPv4-mapped, NAT64, 6to4, SIIT and
// IPv4-compatible IPv6 forms.
func TestHostPolicyAlwaysRefused(t *testing.T) {
	t.Parallel()
	refused := []string{
		"169.254.169.254", "100.100.100.200", "100.64.0.1", "100.127.255.254", "192.0.0.192", "192.0.0.1",
		"198.18.0.1", "198.19.255.255", "0.0.0.0", "0.1.2.3", "240.0.0.1", "255.255.255.255", "224.0.0.1",
		"fe80::1", "fd00:ec2::254", "::", "ff02::1", "2001:0:4136:e378:8000:63bf:3fff:fdd2", "100::1",
		"::ffff:169.254.169.254", "64:ff9b::a9fe:a9fe", "64:ff9b::100.100.100.200", "64:ff9b:1::c000:c0",
		"2002:a9fe:a9fe::1", "2002:6464:64c8::", "::ffff:0:a9fe:a9fe", "::169.254.169.254", "::198.18.0.1",
	}
	for _, allow := range []bool{false, true} {
		p := NewHostPolicy(allow, []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")}, nil)
		for _, a := range refused {
			if err := p.Check(netip.MustParseAddr(a)); err == nil {
				t.Errorf("AllowPrivate=%v: %s allowed", allow, a)
			}
		}
	}
}

func TestHostPolicyPrivate(t *testing.T) {
	t.Parallel()
	private := []string{"127.0.0.1", "127.9.9.9", "::1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "fd12::1",
		"::ffff:127.0.0.1", "64:ff9b::7f00:1", "2002:0a00:0001::1", "::ffff:0:a00:1"}
	strict := NewHostPolicy(false, nil, nil)
	open := NewHostPolicy(true, nil, nil)
	for _, a := range private {
		ip := netip.MustParseAddr(a)
		if err := strict.Check(ip); err == nil {
			t.Errorf("strict: %s allowed", a)
		}
		if err := open.Check(ip); err != nil {
			t.Errorf("AllowPrivate: %s refused: %v", a, err)
		}
	}
	for _, a := range []string{"8.8.8.8", "2606:4700::1111", "64:ff9b::808:808", "2002:808:808::1"} {
		if err := strict.Check(netip.MustParseAddr(a)); err != nil {
			t.Errorf("public %s refused: %v", a, err)
		}
	}
}

// MCP_ALLOWED_HOST_CIDRS opens exactly the ranges it names.
func TestHostPolicyAllowedCIDRs(t *testing.T) {
	t.Parallel()
	p := NewHostPolicy(false, []netip.Prefix{netip.MustParsePrefix("10.99.0.0/24")}, nil)
	if err := p.Check(netip.MustParseAddr("10.99.0.7")); err != nil {
		t.Errorf("allowed subnet refused: %v", err)
	}
	for _, a := range []string{"10.99.1.7", "10.0.0.1", "127.0.0.1", "192.168.0.1"} {
		if err := p.Check(netip.MustParseAddr(a)); err == nil {
			t.Errorf("%s allowed outside the subnet", a)
		}
	}
	meta := NewHostPolicy(false, []netip.Prefix{netip.MustParsePrefix("169.254.0.0/16")}, nil)
	if err := meta.Check(netip.MustParseAddr("169.254.169.254")); err == nil {
		t.Error("an allowed CIDR opened the metadata range")
	}
}

// The service's own listeners are refused even where loopback is allowed,
// in every spelling of a local address.
func TestHostPolicyOwnListeners(t *testing.T) {
	t.Parallel()
	own := OwnAddrs(context.Background(), ":8001", "127.0.0.1:14222", "localhost:27018", "[::1]:4222", "not a hostport", "host:0")
	p := NewHostPolicy(true, nil, own)
	refused := []string{"127.0.0.1:8001", "127.0.0.2:8001", "[::1]:8001", "[::ffff:127.0.0.1]:8001", "127.0.0.1:14222",
		"[::ffff:7f00:1]:14222", "127.0.0.1:27018", "[::1]:4222", "[64:ff9b::7f00:1]:8001"}
	for _, a := range refused {
		if err := p.CheckAddr(netip.MustParseAddrPort(a)); err == nil || !strings.Contains(err.Error(), "own") {
			t.Errorf("%s: %v, want refused as the service's own", a, err)
		}
	}
	for _, a := range []string{"127.0.0.1:5432", "127.0.0.1:8002", "[::1]:3306"} {
		if err := p.CheckAddr(netip.MustParseAddrPort(a)); err != nil {
			t.Errorf("%s refused: %v", a, err)
		}
	}
	// 0.0.0.0 stands for every address of this machine.
	for _, l := range p.local {
		if err := p.CheckAddr(netip.AddrPortFrom(l, 8001)); err == nil {
			t.Errorf("local address %s:8001 allowed", l)
		}
	}
	if err := p.CheckHost(context.Background(), "localhost", 8001); err == nil {
		t.Error("localhost:8001 allowed by CheckHost")
	}
}

// The dialer enforces the policy on the address dialled, refuses every
// non-TCP network (unix sockets), and says why.
func TestHostPolicyDialer(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	ctx := context.Background()
	open := NewHostPolicy(true, nil, nil).Dialer(time.Second)
	c, err := open(ctx, "tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("allowed dial: %v", err)
	}
	_ = c.Close()
	ownPolicy := NewHostPolicy(true, nil, OwnAddrs(ctx, ln.Addr().String()))
	for _, dial := range []struct{ network, addr string }{
		{"tcp", ln.Addr().String()}, {"unix", "/tmp/x.sock"}, {"udp", "127.0.0.1:53"},
	} {
		_, err := ownPolicy.Dialer(time.Second)(ctx, dial.network, dial.addr)
		var ce *Error
		if !errors.As(err, &ce) || ce.Kind != KindPolicy {
			t.Errorf("%s %s: %v, want a KindPolicy error", dial.network, dial.addr, err)
		}
	}
}

func TestPrefix(t *testing.T) {
	t.Parallel()
	if Prefix("short") != "short" {
		t.Error("short input changed")
	}
	long := strings.Repeat("é", 900)
	got := Prefix(long)
	if len(got) > 40 || !strings.HasSuffix(got, "…") || !strings.HasPrefix(long, strings.TrimSuffix(got, "…")) {
		t.Errorf("Prefix = %q", got)
	}
}
