package l402

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestCaveatConstructors(t *testing.T) {
	until := time.Unix(1700000000, 0)
	cases := []struct {
		c    Caveat
		want string
	}{
		{ServicesCaveat(Service{"podcast", 0}, Service{"news", 1}), "services=podcast:0,news:1"},
		{CapabilitiesCaveat("podcast", "read", "list"), "podcast_capabilities=read,list"},
		{ValidUntilCaveat("podcast", until), "podcast_valid_until=1700000000"},
		{ClientIPCaveat(netip.MustParseAddr("::ffff:192.0.2.7")), "client_ip=192.0.2.7"},
		{ClientIPCaveat(netip.MustParseAddr("2001:db8::1")), "client_ip=2001:db8::1"},
		{ClientPrefixCaveat(netip.MustParsePrefix("192.0.2.77/24")), "client_ip=192.0.2.0/24"},
		{PathPrefixCaveat("/paid/"), "path_prefix=/paid/"},
		{MethodCaveat("GET", "HEAD"), "method=GET,HEAD"},
	}
	for _, c := range cases {
		if got := c.c.String(); got != c.want {
			t.Errorf("String() = %q, want %q", got, c.want)
		}
		if err := c.c.Validate(); err != nil {
			t.Errorf("Validate(%q) = %v", c.want, err)
		}
		back, err := ParseCaveat(c.want)
		if err != nil || back != c.c {
			t.Errorf("ParseCaveat(%q) = %+v, %v; want %+v", c.want, back, err, c.c)
		}
	}
}

func TestParseCaveat(t *testing.T) {
	c, err := ParseCaveat("a=b=c")
	if err != nil || c.Condition != "a" || c.Value != "b=c" {
		t.Fatalf("ParseCaveat(a=b=c) = %+v, %v", c, err)
	}
	c, err = ParseCaveat("a=")
	if err != nil || c.Condition != "a" || c.Value != "" {
		t.Fatalf("ParseCaveat(a=) = %+v, %v", c, err)
	}
	for _, bad := range []struct{ in, why string }{
		{"", "condition=value"},
		{"novalue", "condition=value"},
		{"=x", "empty condition"},
		{"a b=x", "white space"},
	} {
		_, err := ParseCaveat(bad.in)
		if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), bad.why) {
			t.Errorf("ParseCaveat(%q) err = %v, want ErrMalformed saying %q", bad.in, err, bad.why)
		}
	}
}

func TestParseServices(t *testing.T) {
	s, err := ParseServices("a:0,b:2")
	if err != nil || len(s) != 2 || s[0] != (Service{"a", 0}) || s[1] != (Service{"b", 2}) {
		t.Fatalf("ParseServices = %+v, %v", s, err)
	}
	for _, bad := range []string{"", "a", "a:", ":1", "a:x", "a:1,,b:2", "a:-1"} {
		if _, err := ParseServices(bad); err == nil {
			t.Errorf("ParseServices(%q) accepted", bad)
		}
	}
}

func TestCaveatValidateRejects(t *testing.T) {
	for _, c := range []Caveat{
		{"unknown", "x"},
		{CondServices, ""},
		{CondServices, "a:b"},
		{"svc_valid_until", "tomorrow"},
		{"_valid_until", "1"},
		{"svc_capabilities", ""},
		{CondClientIP, "not-an-ip"},
		{CondClientIP, "10.0.0.0/33"},
		{CondPathPrefix, "relative"},
		{CondPathPrefix, ""},
		{CondMethod, ""},
	} {
		if err := c.Validate(); !errors.Is(err, ErrMalformed) {
			t.Errorf("Validate(%q) = %v, want ErrMalformed", c, err)
		}
	}
}

// TestCheckCaveat covers each condition against matching and non-matching
// requests; narrowing across several caveats is covered by the verifier
// tests, which check whole tokens.
func TestCheckCaveat(t *testing.T) {
	now := time.Unix(1700000000, 0)
	base := Request{
		Service: "svc", Path: "/paid/item", Method: "GET",
		ClientIP: netip.MustParseAddr("192.0.2.7"), Capability: "read",
	}
	with := func(f func(*Request)) Request { r := base; f(&r); return r }
	cases := []struct {
		name    string
		caveat  string
		req     Request
		wantErr error // nil: satisfied
		why     string
	}{
		{"service listed", "services=other:0,svc:1", base, nil, ""},
		{"service not listed", "services=other:0", base, ErrCaveat, `service "svc" not allowed`},
		{"no service in request", "services=svc:0", with(func(r *Request) { r.Service = "" }), ErrCaveat, "names no service"},
		{"services malformed", "services=svc", base, ErrCaveat, "name:tier"},
		{"valid until later", "svc_valid_until=1700000001", base, nil, ""},
		{"valid until now", "svc_valid_until=1700000000", base, ErrExpired, "expired"},
		{"valid until past", "svc_valid_until=1", base, ErrExpired, "expired"},
		{"valid until other service", "other_valid_until=1", base, nil, ""},
		{"valid until garbage", "svc_valid_until=soon", base, ErrCaveat, "unix time"},
		{"service with underscore", "my_svc_valid_until=1", with(func(r *Request) { r.Service = "my_svc" }), ErrExpired, "expired"},
		{"capability listed", "svc_capabilities=write,read", base, nil, ""},
		{"capability not listed", "svc_capabilities=write", base, ErrCaveat, `capability "read"`},
		{"capability missing", "svc_capabilities=read", with(func(r *Request) { r.Capability = "" }), ErrCaveat, "no capability"},
		{"capability other service", "other_capabilities=write", base, nil, ""},
		{"ip equal", "client_ip=192.0.2.7", base, nil, ""},
		{"ip mapped", "client_ip=192.0.2.7", with(func(r *Request) { r.ClientIP = netip.MustParseAddr("::ffff:192.0.2.7") }), nil, ""},
		{"ip in prefix", "client_ip=192.0.2.0/24", base, nil, ""},
		{"ip differs", "client_ip=192.0.2.8", base, ErrCaveat, "client address not allowed"},
		{"ip outside prefix", "client_ip=198.51.100.0/24", base, ErrCaveat, "client address not allowed"},
		{"ip unknown", "client_ip=192.0.2.7", with(func(r *Request) { r.ClientIP = netip.Addr{} }), ErrCaveat, "unknown"},
		{"path prefix", "path_prefix=/paid/", base, nil, ""},
		{"path outside", "path_prefix=/other/", base, ErrCaveat, "outside"},
		{"path segment boundary", "path_prefix=/paid", with(func(r *Request) { r.Path = "/paidx/doc" }), ErrCaveat, "outside"},
		{"path prefix without slash", "path_prefix=/paid", with(func(r *Request) { r.Path = "/paid/doc" }), nil, ""},
		{"path equal to prefix", "path_prefix=/paid", with(func(r *Request) { r.Path = "/paid" }), nil, ""},
		{"path dot segments", "path_prefix=/paid/", with(func(r *Request) { r.Path = "/paid/../admin" }), ErrCaveat, "dot segments"},
		{"method listed", "method=HEAD,GET", base, nil, ""},
		{"method not listed", "method=POST", base, ErrCaveat, `method "GET"`},
		{"method case", "method=get", base, ErrCaveat, `method "GET"`},
		{"unknown condition", "admin=true", base, ErrCaveat, "unknown condition"},
		{"no equals", "garbage", base, ErrCaveat, "condition=value"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := checkCaveat([]byte(c.caveat), &c.req, now)
			if c.wantErr == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, c.wantErr) || !errors.Is(err, ErrCaveat) {
				t.Fatalf("err = %v, want %v", err, c.wantErr)
			}
			if !strings.Contains(err.Error(), c.why) || !strings.Contains(err.Error(), c.caveat) {
				t.Fatalf("err = %q, want it to name the caveat and say %q", err, c.why)
			}
			if c.wantErr == ErrCaveat && errors.Is(err, ErrExpired) {
				t.Fatalf("err = %v matches ErrExpired", err)
			}
		})
	}
}

// TestBindingCaveats: bLIP-26's token-binding predicates that fit a
// server, origin and TLS client certificate, fail closed when the request
// does not say.
func TestBindingCaveats(t *testing.T) {
	sum := [32]byte{1, 2, 3}
	other := [32]byte{9}
	origin := OriginCaveat("HTTPS://API.example:8443")
	cert := ClientCertCaveat(sum)
	if origin.String() != "origin=https://api.example:8443" || origin.Validate() != nil || cert.Validate() != nil {
		t.Fatalf("%s %v %v", origin, origin.Validate(), cert.Validate())
	}
	for _, tc := range []struct {
		c   Caveat
		r   Request
		err bool
	}{
		{origin, Request{Origin: "https://api.example:8443"}, false},
		{origin, Request{Origin: "https://API.example:8443"}, false},
		{origin, Request{Origin: "https://api.example"}, true},
		{origin, Request{Origin: "http://api.example:8443"}, true},
		{origin, Request{}, true},
		{cert, Request{ClientCert: &sum}, false},
		{cert, Request{ClientCert: &other}, true},
		{cert, Request{}, true},
	} {
		err := checkCaveat([]byte(tc.c.String()), &tc.r, time.Now())
		if (err != nil) != tc.err || err != nil && !errors.Is(err, ErrCaveat) {
			t.Errorf("%s with %+v: %v", tc.c, tc.r, err)
		}
	}
	for _, bad := range []string{"origin=api.example", "tls_client_cert=abc", "tls_client_cert=" + strings.Repeat("A", 64)} {
		c, _ := ParseCaveat(bad)
		if err := c.Validate(); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", bad, err)
		}
	}
}
