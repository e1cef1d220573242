package l402

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/l402kit/l402kit/backend"
)

// Fuzz targets for every parser of client input in this package. Their
// seed corpora live in testdata/fuzz/<Name>; a crash found by `make fuzz`
// is committed there as a regression case.

func fuzzToken(f *testing.F) *Token {
	store := NewMemoryRootKeyStore()
	pre, _ := backend.NewPreimage()
	mac, _, err := NewMinter(store, "fuzz").Mint(context.Background(), pre.Hash(), ServicesCaveat(Service{Name: "svc"}), PathPrefixCaveat("/paid/"))
	if err != nil {
		f.Fatal(err)
	}
	tok, err := NewToken(mac, pre)
	if err != nil {
		f.Fatal(err)
	}
	return tok
}

// FuzzPendingAuthorization: the in-flight single-use form "L402 <mac>:"
// (FuzzParseAuthorization in header_test.go covers the forms with a
// preimage). Whatever parses survives a round trip, and no value is read
// as both forms.
func FuzzPendingAuthorization(f *testing.F) {
	tok := fuzzToken(f)
	a := tok.Authorization()
	mac := a[len("L402 "):strings.LastIndexByte(a, ':')]
	for _, s := range []string{
		PendingAuthorization(tok.Macaroon), "LSAT " + mac + ":", "lsat  " + mac + " : ", a,
		"L402 " + mac + "::", "L402 :", "L402", "Basic eDp5:", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		m, ok := ParsePendingAuthorization(v)
		if !ok {
			return
		}
		if _, ok := ParsePendingAuthorization(PendingAuthorization(m)); !ok {
			t.Fatalf("in-flight round trip of %q", v)
		}
		if _, err := ParseAuthorization(v); err == nil {
			t.Fatalf("%q reads both as in-flight and as a full token", v)
		}
	})
}

// FuzzParseChallenges: WWW-Authenticate as servers (or attackers posing as
// them) send it.
func FuzzParseChallenges(f *testing.F) {
	tok := fuzzToken(f)
	h := http.Header{}
	AddChallenges(h, Challenge{Macaroon: tok.Macaroon, Invoice: "lnbcrt10n1xyz"})
	for _, v := range h.Values(HeaderWWWAuthenticate) {
		f.Add(v)
	}
	for _, s := range []string{
		`Basic realm="x", L402 macaroon="AgE", invoice="lnbc1"`,
		`L402 macaroon="a\"b", invoice=lnbc1, LSAT macaroon=x invoice=y`,
		`Bearer abc+/==, L402 macaroon="AgE="`, `L402 "unterminated`, ",,,", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		chs, err := ParseChallenges(http.Header{HeaderWWWAuthenticate: {v}})
		if err == nil && len(chs) == 0 {
			t.Fatal("no error and no challenge")
		}
		for _, c := range chs {
			if c.Macaroon == nil || c.Invoice == "" {
				t.Fatalf("incomplete challenge from %q", v)
			}
		}
	})
}

// FuzzCaveat: caveats come from tokens clients present (and attenuate).
// Checking one never panics, an unknown or malformed condition never
// passes, and Validate agrees with the verifier about what is malformed.
func FuzzCaveat(f *testing.F) {
	for _, s := range []string{
		"services=svc:0,other:1", "svc_valid_until=99999999999", "svc_capabilities=read,write",
		"client_ip=192.0.2.0/24", "client_ip=::ffff:192.0.2.1", "path_prefix=/paid", "method=GET,HEAD",
		"services=", "services=a:-1", "admin=true", "=x", "noequals", "path_prefix=paid", "_valid_until=1",
	} {
		f.Add(s, "/paid/x", "GET")
	}
	f.Fuzz(func(t *testing.T, raw, path, method string) {
		c, err := ParseCaveat(raw)
		if err != nil {
			return
		}
		r := Request{Service: "svc", Capability: "read", Path: path, Method: method, Now: time.Unix(1700000000, 0)}
		cerr := checkCaveat([]byte(raw), &r, r.Now)
		if c.Validate() != nil && cerr == nil {
			t.Fatalf("%q: malformed for Validate, yet satisfied", raw)
		}
		if cerr == nil && c.Condition == CondPathPrefix && !underPrefix(path, []byte(c.Value)) {
			t.Fatalf("%q satisfied by path %q", raw, path)
		}
		ParseServices(c.Value)
	})
}
