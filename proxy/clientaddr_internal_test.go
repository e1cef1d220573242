package proxy

import (
	"net/http/httptest"
	"net/netip"
	"testing"
)

func TestClientAddress(t *testing.T) {
	fronts, err := ParseTrustedForwarders("127.0.0.0/8, ::1, 10.0.0.0/8")
	if err != nil {
		t.Fatal(err)
	}
	f := forwarders(fronts)
	for _, c := range []struct {
		name, peer string
		xff        []string
		realIP     string
		want       string
	}{
		{"direct client, no headers", "192.0.2.5:1", nil, "", "192.0.2.5"},
		{"direct client claims an address", "192.0.2.5:1", []string{"198.51.100.1"}, "198.51.100.2", "192.0.2.5"},
		{"front, one hop", "127.0.0.1:1", []string{"198.51.100.1"}, "", "198.51.100.1"},
		{"front appends to a client's claim", "127.0.0.1:1", []string{"203.0.113.66, 198.51.100.1"}, "", "198.51.100.1"},
		{"two trusted hops", "127.0.0.1:1", []string{"203.0.113.66, 198.51.100.1, 10.1.2.3"}, "", "198.51.100.1"},
		{"hops over several lines", "127.0.0.1:1", []string{"203.0.113.66", "198.51.100.1, 10.1.2.3"}, "", "198.51.100.1"},
		{"only trusted hops", "127.0.0.1:1", []string{"10.9.9.9, 10.1.2.3"}, "", "10.9.9.9"},
		{"garbage hop", "127.0.0.1:1", []string{"198.51.100.1, junk, 10.1.2.3"}, "", "10.1.2.3"},
		{"garbage at once", "127.0.0.1:1", []string{"junk"}, "", "127.0.0.1"},
		{"X-Real-IP from a front", "[::1]:1", nil, "2001:db8::1", "2001:db8::1"},
		{"X-Forwarded-For wins over X-Real-IP", "127.0.0.1:1", []string{"198.51.100.1"}, "198.51.100.2", "198.51.100.1"},
		{"IPv4-mapped front", "[::ffff:127.0.0.1]:1", []string{"198.51.100.1"}, "", "198.51.100.1"},
		{"front, no headers", "127.0.0.1:1", nil, "", "127.0.0.1"},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = c.peer
		for _, v := range c.xff {
			r.Header.Add("X-Forwarded-For", v)
		}
		if c.realIP != "" {
			r.Header.Set("X-Real-Ip", c.realIP)
		}
		if got := f.client(r); got != netip.MustParseAddr(c.want) {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
	}
	if none, err := ParseTrustedForwarders("none"); err != nil || none == nil || len(none) != 0 {
		t.Fatalf("none: %v %v", none, err)
	}
	if _, err := ParseTrustedForwarders("10.0.0.0/33"); err == nil {
		t.Fatal("a bad prefix was accepted")
	}
}
