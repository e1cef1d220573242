package l402

import (
	"encoding/base64"
	"errors"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/macaroon.v2"
)

func macBytes(t testing.TB, tok *Token) []byte {
	t.Helper()
	b, err := tok.Macaroon.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestChallengeHeaderRoundTrip(t *testing.T) {
	f := newFixture(t)
	tok := f.mint(t, PathPrefixCaveat("/paid/"))
	ch := Challenge{Macaroon: tok.Macaroon, Invoice: "lnbcrt10u1pexample"}
	want := `L402 macaroon="` + base64.StdEncoding.EncodeToString(macBytes(t, tok)) + `", invoice="lnbcrt10u1pexample"`
	if got := ch.Header(SchemeL402); got != want {
		t.Fatalf("Header = %s\nwant     %s", got, want)
	}
	h := http.Header{}
	AddChallenges(h, ch)
	vals := h.Values("Www-Authenticate")
	if len(vals) != 2 || !strings.HasPrefix(vals[0], "L402 ") || !strings.HasPrefix(vals[1], "LSAT ") {
		t.Fatalf("WWW-Authenticate = %q, want L402 then LSAT", vals)
	}
	chs, err := ParseChallenges(h)
	if err != nil {
		t.Fatal(err)
	}
	if len(chs) != 2 || chs[0].Scheme != "L402" || chs[1].Scheme != "LSAT" {
		t.Fatalf("parsed %d challenges: %+v", len(chs), chs)
	}
	for _, c := range chs {
		if c.Invoice != ch.Invoice || !c.Macaroon.Equal(tok.Macaroon) {
			t.Fatalf("challenge %s does not round-trip", c.Scheme)
		}
	}
}

func TestParseChallengesTolerant(t *testing.T) {
	f := newFixture(t)
	tok := f.mint(t)
	b64 := base64.StdEncoding.EncodeToString(macBytes(t, tok))
	url := base64.RawURLEncoding.EncodeToString(macBytes(t, tok))
	cases := []struct {
		name    string
		values  []string
		schemes []string
	}{
		{"other scheme on its own line", []string{`Basic realm="x"`, `L402 macaroon="` + b64 + `", invoice="lnbc1"`}, []string{"L402"}},
		{"list with Basic first", []string{`Basic realm="a, b", L402 macaroon="` + b64 + `", invoice="lnbc1"`}, []string{"L402"}},
		{"list with Bearer token68 first", []string{`Bearer abc+/==, LSAT macaroon="` + b64 + `", invoice="lnbc1"`}, []string{"LSAT"}},
		{"list with ours first", []string{`L402 macaroon="` + b64 + `", invoice="lnbc1", Basic realm="x"`}, []string{"L402"}},
		{"lower-case scheme, unquoted url base64", []string{`l402 macaroon=` + url + `, invoice=lnbc1`}, []string{"L402"}},
		{"extra parameter and spacing", []string{`LSAT  macaroon = "` + b64 + `" ,version="0",invoice="lnbc1"`}, []string{"LSAT"}},
		{"one good one bad", []string{`L402 macaroon="@@@", invoice="lnbc1"`, `LSAT macaroon="` + b64 + `", invoice="lnbc1"`}, []string{"LSAT"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := http.Header{"Www-Authenticate": c.values}
			chs, err := ParseChallenges(h)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, ch := range chs {
				got = append(got, ch.Scheme)
				if ch.Invoice != "lnbc1" || !ch.Macaroon.Equal(tok.Macaroon) {
					t.Fatalf("challenge %+v has wrong values", ch)
				}
			}
			if strings.Join(got, ",") != strings.Join(c.schemes, ",") {
				t.Fatalf("schemes %v, want %v", got, c.schemes)
			}
		})
	}
}

func TestParseChallengesMalformed(t *testing.T) {
	f := newFixture(t)
	b64 := base64.StdEncoding.EncodeToString(macBytes(t, f.mint(t)))
	notL402, _ := macaroon.New([]byte("k"), []byte("plain id"), "", macaroon.V2)
	nb, _ := notL402.MarshalBinary()
	for _, value := range []string{``, `Basic realm="x"`, `Payment id="x", realm="y", method="lightning", intent="charge", request="e30"`} {
		h := http.Header{}
		if value != "" {
			h.Set("WWW-Authenticate", value)
		}
		if _, err := ParseChallenges(h); !errors.Is(err, ErrNoChallenge) || errors.Is(err, ErrMalformed) {
			t.Fatalf("%q: err = %v, want ErrNoChallenge", value, err)
		}
	}
	// The identifier is the server's business: a client pays by the
	// invoice, so a macaroon whose identifier is no known layout parses.
	h := http.Header{"Www-Authenticate": {`L402 macaroon="` + base64.StdEncoding.EncodeToString(nb) + `", invoice="lnbc1"`}}
	if chs, err := ParseChallenges(h); err != nil || len(chs) != 1 {
		t.Fatalf("challenge with a foreign identifier: %v, %v", chs, err)
	}
	cases := []struct {
		name, value, why string
	}{
		{"no macaroon", `L402 invoice="lnbc1"`, "no macaroon"},
		{"no invoice", `L402 macaroon="` + b64 + `"`, "no invoice"},
		{"empty invoice", `L402 macaroon="` + b64 + `", invoice=""`, "no invoice"},
		{"bad base64", `L402 macaroon="***", invoice="lnbc1"`, "not base64"},
		{"not a macaroon", `L402 macaroon="aGVsbG8=", invoice="lnbc1"`, "macaroon"},
		{"unterminated quote", `L402 invoice="lnbc1", macaroon="` + b64, "unterminated"},
		{"quote swallows the rest", `L402 macaroon="` + b64 + `, invoice="lnbc1`, "comma"},
		{"garbage after value", `L402 macaroon="` + b64 + `" x, invoice="lnbc1"`, "comma"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := http.Header{}
			if c.value != "" {
				h.Set("WWW-Authenticate", c.value)
			}
			_, err := ParseChallenges(h)
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), c.why) {
				t.Fatalf("err = %v, want ErrMalformed saying %q", err, c.why)
			}
		})
	}
}

func TestParseAuthorizationForms(t *testing.T) {
	f := newFixture(t)
	tok := f.mint(t, MethodCaveat("GET"))
	raw := macBytes(t, tok)
	pre := tok.Preimage.String()
	std := base64.StdEncoding.EncodeToString(raw)
	forms := map[string]string{
		"canonical":           tok.Authorization(),
		"L402 std":            "L402 " + std + ":" + pre,
		"LSAT std":            "LSAT " + std + ":" + pre,
		"lower-case scheme":   "l402 " + std + ":" + pre,
		"std unpadded":        "L402 " + base64.RawStdEncoding.EncodeToString(raw) + ":" + pre,
		"url padded":          "L402 " + base64.URLEncoding.EncodeToString(raw) + ":" + pre,
		"url unpadded":        "L402 " + base64.RawURLEncoding.EncodeToString(raw) + ":" + pre,
		"upper-case preimage": "L402 " + std + ":" + strings.ToUpper(pre),
		"surrounding space":   "  L402   " + std + ":" + pre + " ",
		"legacy params":       `LSAT macaroon="` + std + `", preimage="` + pre + `"`,
		"legacy reordered":    `LSAT preimage="` + pre + `", macaroon="` + std + `"`,
		"legacy unquoted url": `LSAT macaroon=` + base64.RawURLEncoding.EncodeToString(raw) + `, preimage=` + pre,
	}
	if !strings.HasPrefix(forms["canonical"], "L402 "+std+":") {
		t.Fatalf("Authorization() = %q", forms["canonical"])
	}
	for name, v := range forms {
		t.Run(name, func(t *testing.T) {
			got, err := ParseAuthorization(v)
			if err != nil {
				t.Fatal(err)
			}
			if !got.Macaroon.Equal(tok.Macaroon) || got.Preimage != tok.Preimage || got.ID != tok.ID {
				t.Fatal("token differs from the one encoded")
			}
		})
	}
}

func TestParseAuthorizationMalformed(t *testing.T) {
	f := newFixture(t)
	tok := f.mint(t)
	raw := macBytes(t, tok)
	std := base64.StdEncoding.EncodeToString(raw)
	pre := tok.Preimage.String()
	cases := []struct {
		name, value, why string
	}{
		{"empty", "", "scheme"},
		{"other scheme", "Bearer " + std, "scheme"},
		{"scheme only", "L402", "no credentials"},
		{"no colon", "L402 " + std, "<macaroon>:<preimage>"},
		{"empty macaroon", "L402 :" + pre, "empty macaroon"},
		{"short preimage", "L402 " + std + ":abcd", "64 hex"},
		{"preimage not hex", "L402 " + std + ":" + strings.Repeat("zz", 32), "not hex"},
		{"macaroon not base64", "L402 !!!!:" + pre, "not base64"},
		{"mixed alphabets", "L402 ab+-cd:" + pre, "mixes"},
		{"not a macaroon", "L402 aGVsbG8:" + pre, "macaroon"},
		{"two macaroons", "L402 " + std + "," + std + ":" + pre, "several macaroons"},
		{"legacy without preimage", `LSAT macaroon="` + std + `"`, "no preimage"},
		{"legacy without macaroon", `LSAT preimage="` + pre + `"`, "no macaroon"},
		{"legacy two credentials", `LSAT macaroon="` + std + `", preimage="` + pre + `", Basic x`, "more than one"},
		{"too long", "L402 " + strings.Repeat("A", maxAuthorizationLen) + ":" + pre, "more than"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseAuthorization(c.value)
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("err = %v, want ErrMalformed", err)
			}
			if !strings.Contains(err.Error(), c.why) {
				t.Fatalf("err = %q, want it to say %q", err, c.why)
			}
			if strings.Contains(err.Error(), pre) {
				t.Fatalf("error leaks the preimage: %v", err)
			}
		})
	}
}

func TestFromHeader(t *testing.T) {
	f := newFixture(t)
	tok := f.mint(t)
	h := http.Header{}
	if _, err := FromHeader(h); !errors.Is(err, ErrNoCredentials) {
		t.Fatalf("empty header: err = %v", err)
	}
	h.Add("Authorization", "Basic dXNlcjpwYXNz")
	if _, err := FromHeader(h); !errors.Is(err, ErrNoCredentials) {
		t.Fatalf("Basic only: err = %v", err)
	}
	// Aperture's client sends LSAT and L402 both; a bad first one must
	// not hide a good second one.
	h.Add("Authorization", "LSAT garbage:00")
	if _, err := FromHeader(h); !errors.Is(err, ErrMalformed) {
		t.Fatalf("malformed only: err = %v", err)
	}
	h.Add("Authorization", tok.Authorization())
	got, err := FromHeader(h)
	if err != nil || got.Preimage != tok.Preimage {
		t.Fatalf("FromHeader = %v, %v", got, err)
	}
}

func FuzzParseAuthorization(f *testing.F) {
	fx := newFixture(f)
	tok := fx.mint(f, PathPrefixCaveat("/a/"), MethodCaveat("GET"))
	raw := macBytes(f, tok)
	pre := tok.Preimage.String()
	f.Add(tok.Authorization())
	f.Add("LSAT " + base64.RawURLEncoding.EncodeToString(raw) + ":" + pre)
	f.Add(`LSAT macaroon="` + base64.StdEncoding.EncodeToString(raw) + `", preimage="` + pre + `"`)
	f.Add("L402 :")
	f.Add(`LSAT macaroon="`)
	f.Add("L402 AgEEbHNhdA:" + pre)
	f.Fuzz(func(t *testing.T, v string) {
		got, err := ParseAuthorization(v)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not match ErrMalformed", err)
			}
			return
		}
		// Whatever parses re-encodes to a value that parses to the same
		// token.
		again, err := ParseAuthorization(got.Authorization())
		if err != nil {
			t.Fatalf("re-encoded token does not parse: %v", err)
		}
		if !again.Macaroon.Equal(got.Macaroon) || again.Preimage != got.Preimage || again.ID != got.ID {
			t.Fatal("re-encoded token differs")
		}
	})
}

// The in-flight advertisement round-trips, and the challenge readers of
// other clients still take the macaroon and invoice from it: Aperture's
// client matches an expression (l402/client_interceptor.go), ngx_l402's
// reader splits at `macaroon="` and `invoice="`
// (ngx_l402_core/src/l402_header.rs).
func TestInFlightParam(t *testing.T) {
	f := newFixture(t)
	tok := f.mint(t)
	ch := Challenge{Macaroon: tok.Macaroon, Invoice: "lnbcrt10u1pexample", InFlight: true}
	v := ch.Header(SchemeL402)
	if !strings.HasSuffix(v, `, inflight="1"`) {
		t.Fatalf("header %s does not end with the advertisement", v)
	}
	for value, want := range map[string]bool{v: true, strings.Replace(v, `inflight="1"`, `inflight="0"`, 1): false, Challenge{Macaroon: tok.Macaroon, Invoice: "lnbcrt1x"}.Header(SchemeL402): false} {
		chs, err := ParseChallenges(http.Header{"Www-Authenticate": {value}})
		if err != nil || chs[0].InFlight != want {
			t.Errorf("%s: %v, InFlight %v, want %v", value, err, chs, want)
		}
	}
	b64 := base64.StdEncoding.EncodeToString(macBytes(t, tok))
	aperture := regexp.MustCompile("(LSAT|L402) macaroon=\"(.*?)\", invoice=\"(.*?)\"")
	if m := aperture.FindStringSubmatch(v); len(m) != 4 || m[2] != b64 || m[3] != ch.Invoice {
		t.Errorf("Aperture's expression reads %q", m)
	}
	mac, _, _ := strings.Cut(strings.SplitN(v, `macaroon="`, 2)[1], `"`)
	inv, _, _ := strings.Cut(strings.SplitN(v, `invoice="`, 2)[1], `"`)
	if mac != b64 || inv != ch.Invoice {
		t.Errorf("ngx_l402's reader gets %q, %q", mac, inv)
	}
}
