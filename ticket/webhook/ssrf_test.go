package webhook

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"
)

func TestAllowedAddr(t *testing.T) {
	for _, tc := range []struct {
		ip    string
		allow bool
	}{
		{"93.184.216.34", true},
		{"8.8.8.8", true},
		{"2606:4700:4700::1111", true},
		{"127.0.0.1", false},
		{"127.255.255.254", false},
		{"10.0.0.1", false},
		{"172.16.5.4", false},
		{"192.168.1.1", false},
		{"169.254.169.254", false}, // cloud metadata
		{"100.64.0.1", false},      // CGNAT
		{"0.0.0.0", false},
		{"0.1.2.3", false},
		{"224.0.0.1", false},
		{"255.255.255.255", false},
		{"198.18.0.1", false},
		{"::1", false},
		{"::", false},
		{"fe80::1", false},
		{"fc00::1", false},
		{"fd00:ec2::254", false}, // AWS IPv6 metadata
		{"ff02::1", false},
		{"::ffff:127.0.0.1", false}, // IPv4-mapped loopback
		{"::ffff:10.0.0.1", false},
		{"64:ff9b::a00:1", false}, // NAT64 of 10.0.0.1
		{"2002:7f00:1::", false},  // 6to4 of 127.0.0.1
	} {
		if got := allowedAddr(netip.MustParseAddr(tc.ip)); got != tc.allow {
			t.Errorf("allowedAddr(%s) = %v, want %v", tc.ip, got, tc.allow)
		}
	}
}

func TestCheckURL(t *testing.T) {
	ctx := context.Background()
	lookup := func(_ context.Context, host string) ([]netip.Addr, error) {
		switch host {
		case "crm.example.com":
			return []netip.Addr{netip.MustParseAddr("93.184.216.34")}, nil
		case "internal.example.com":
			return []netip.Addr{netip.MustParseAddr("93.184.216.34"), netip.MustParseAddr("10.1.2.3")}, nil
		case "metadata.example.com":
			return []netip.Addr{netip.MustParseAddr("169.254.169.254")}, nil
		}
		return nil, errors.New("no such host")
	}
	for _, tc := range []struct {
		url  string
		want error // nil: accepted
	}{
		{"https://crm.example.com/hooks/switchboard", nil},
		{"http://93.184.216.34:8080/x", nil},
		{"http://[2606:4700:4700::1111]/x", nil},
		{"http://127.0.0.1/x", ErrForbiddenTarget},
		{"http://10.0.0.1/x", ErrForbiddenTarget},
		{"http://169.254.169.254/latest/meta-data/", ErrForbiddenTarget},
		{"http://[::1]:9000/x", ErrForbiddenTarget},
		{"http://[::ffff:127.0.0.1]/x", ErrForbiddenTarget},
		{"http://localhost:8080/x", ErrForbiddenTarget},
		{"http://LOCALHOST./x", ErrForbiddenTarget},
		{"http://api.localhost/x", ErrForbiddenTarget},
		{"https://internal.example.com/x", ErrForbiddenTarget},
		{"https://metadata.example.com/x", ErrForbiddenTarget},
		{"https://nowhere.invalid/x", ErrInvalid},
		{"ftp://crm.example.com/x", ErrInvalid},
		{"file:///etc/passwd", ErrInvalid},
		{"crm.example.com/x", ErrInvalid},
		{"https:///x", ErrInvalid},
		{"https://user:pw@crm.example.com/x", ErrInvalid},
		{"", ErrInvalid},
	} {
		_, err := checkURL(ctx, tc.url, false, lookup)
		if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("checkURL(%q) = %v, want %v", tc.url, err, tc.want)
		}
	}
	// An admin may allow private targets; the shape rules still hold.
	if _, err := checkURL(ctx, "http://127.0.0.1:9/x", true, lookup); err != nil {
		t.Errorf("allowed private: %v", err)
	}
	if _, err := checkURL(ctx, "gopher://127.0.0.1/x", true, lookup); !errors.Is(err, ErrInvalid) {
		t.Errorf("allowed private, bad scheme: %v", err)
	}
}

// TestDialGuard checks the check that counts: at connect time, after
// name resolution, whatever the name resolved to when the webhook was
// made.
func TestDialGuard(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	guarded := newDialer(time.Second, false)
	for _, addr := range []string{"127.0.0.1:" + port, "localhost:" + port, "[::1]:" + port, "10.0.0.1:" + port, "169.254.169.254:80"} {
		c, err := guarded.DialContext(ctx, "tcp", addr)
		if err == nil {
			c.Close()
			t.Errorf("dial %s: connected, want refused", addr)
			continue
		}
		if !errors.Is(err, ErrForbiddenTarget) {
			t.Errorf("dial %s: %v, want ErrForbiddenTarget", addr, err)
		}
	}
	c, err := newDialer(time.Second, true).DialContext(ctx, "tcp", "127.0.0.1:"+port)
	if err != nil {
		t.Fatalf("allow private: %v", err)
	}
	c.Close()
}
