package lnurl

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/btcutil/bech32"

	"github.com/l402kit/l402kit/backend"
)

func readFixture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The example pair LUD-01 documents decodes and encodes both ways.
func TestLUD01Example(t *testing.T) {
	lines := strings.Split(strings.TrimSpace(readFixture(t, "lud01-example.txt")), "\n")
	wantURL, lnurl := lines[0], lines[1]

	for _, in := range []string{lnurl, strings.ToLower(lnurl), "lightning:" + lnurl, "LIGHTNING:" + lnurl} {
		got, err := Decode(in)
		if err != nil {
			t.Fatalf("Decode(%.30s...): %v", in, err)
		}
		if got != wantURL {
			t.Errorf("Decode(%.30s...) = %q, want %q", in, got, wantURL)
		}
	}
	enc, err := Encode(wantURL)
	if err != nil {
		t.Fatal(err)
	}
	if enc != lnurl {
		t.Errorf("Encode = %s, want the LUD-01 example %s", enc, lnurl)
	}
	if len(enc) <= 90 {
		t.Fatalf("the example is %d characters; it was meant to exceed BIP-173's 90", len(enc))
	}
}

func TestDecodeRefuses(t *testing.T) {
	lnurl := strings.TrimSpace(strings.Split(readFixture(t, "lud01-example.txt"), "\n")[1])
	other, err := bech32.EncodeFromBase256("lnbc", []byte("https://service.com/api"))
	if err != nil {
		t.Fatal(err)
	}
	conv, err := bech32.ConvertBits([]byte("https://service.com/api"), 8, 5, true)
	if err != nil {
		t.Fatal(err)
	}
	bech32m, err := bech32.EncodeM(hrp, conv)
	if err != nil {
		t.Fatal(err)
	}
	flipped := lnurl[:len(lnurl)-1] + map[bool]string{true: "Q", false: "P"}[lnurl[len(lnurl)-1] != 'Q']
	for name, in := range map[string]string{
		"mixed case":        lnurl[:10] + strings.ToLower(lnurl[10:]),
		"bad checksum":      flipped,
		"other prefix":      other,
		"bech32m checksum":  bech32m,
		"not bech32":        "https://service.com/api",
		"empty":             "",
		"separator missing": "LNURLDP68GURN8GHJ7",
	} {
		t.Run(name, func(t *testing.T) {
			got, err := Decode(in)
			if !errors.Is(err, backend.ErrInvalid) {
				t.Fatalf("Decode(%q) = %q, %v; want ErrInvalid", in, got, err)
			}
			if !strings.Contains(err.Error(), "malformed LNURL") {
				t.Errorf("error %q does not say the LNURL is malformed", err)
			}
		})
	}
}

func TestParseAddress(t *testing.T) {
	good := map[string]Address{
		"alice@example.com":          {"alice", "example.com"},
		"Alice@Example.COM":          {"alice", "example.com"},
		"a.b-c_d9@pay.example.com":   {"a.b-c_d9", "pay.example.com"},
		"bob@127.0.0.1:8080":         {"bob", "127.0.0.1:8080"},
		"bob@[::1]:8080":             {"bob", "[::1]:8080"},
		" carol@xyz.onion ":          {"carol", "xyz.onion"},
		"dave@localhost":             {"dave", "localhost"},
		"erin@sub.domain.example.io": {"erin", "sub.domain.example.io"},
	}
	for in, want := range good {
		got, err := ParseAddress(in)
		if err != nil || got != want {
			t.Errorf("ParseAddress(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	bad := []string{
		"alice", "@example.com", "alice@", "al ice@example.com", "alice+tag@example.com",
		"alice@example.com/path", "alice@exa mple.com", "alice@example.com?x=1", "alice@bob@example.com",
		"alice@example.com#frag", "alice@example.com:", "élise@example.com",
	}
	for _, in := range bad {
		if got, err := ParseAddress(in); !errors.Is(err, backend.ErrInvalid) || !strings.Contains(err.Error(), "malformed lightning address") {
			t.Errorf("ParseAddress(%q) = %+v, %v; want ErrInvalid saying malformed lightning address", in, got, err)
		}
	}
}

func TestWellKnownURL(t *testing.T) {
	for _, c := range []struct {
		addr      string
		allowHTTP bool
		want      string
	}{
		{"alice@example.com", false, "https://example.com/.well-known/lnurlp/alice"},
		{"alice@example.com", true, "http://example.com/.well-known/lnurlp/alice"},
		{"alice@abcdef.onion", false, "http://abcdef.onion/.well-known/lnurlp/alice"},
		{"alice@127.0.0.1:8080", false, "http://127.0.0.1:8080/.well-known/lnurlp/alice"},
		{"alice@[::1]:8080", false, "http://[::1]:8080/.well-known/lnurlp/alice"},
		{"alice@localhost", false, "http://localhost/.well-known/lnurlp/alice"},
	} {
		a, err := ParseAddress(c.addr)
		if err != nil {
			t.Fatal(err)
		}
		if got := a.wellKnownURL(c.allowHTTP); got != c.want {
			t.Errorf("%s (allowHTTP %v): %s, want %s", c.addr, c.allowHTTP, got, c.want)
		}
	}
}

func TestCheckURL(t *testing.T) {
	for _, c := range []struct {
		url       string
		allowHTTP bool
		ok        bool
	}{
		{"https://example.com/cb", false, true},
		{"http://example.com/cb", false, false},
		{"http://example.com/cb", true, true},
		{"http://xyz.onion/cb", false, true},
		{"http://127.0.0.1:1234/cb", false, true},
		{"ftp://example.com/cb", true, false},
		{"/relative/cb", true, false},
		{"https:///nohost", false, false},
	} {
		_, err := checkURL(c.url, "callback", c.allowHTTP)
		if (err == nil) != c.ok {
			t.Errorf("checkURL(%q, allowHTTP %v): %v, want ok=%v", c.url, c.allowHTTP, err, c.ok)
		}
	}
}

// The metadata string LUD-06 shows parses, and its hash is over the string
// exactly as sent.
func TestLUD06Metadata(t *testing.T) {
	var md string
	if err := json.Unmarshal([]byte(readFixture(t, "lud06-metadata.json")), &md); err != nil {
		t.Fatal(err)
	}
	byType, err := parseMetadata(md)
	if err != nil {
		t.Fatalf("LUD-06's own example metadata: %v", err)
	}
	var plain string
	if err := json.Unmarshal(byType["text/plain"], &plain); err != nil || plain != "lorem ipsum blah blah" {
		t.Errorf("text/plain = %q, %v", plain, err)
	}
	// Re-encoding the same array drops the space after the comma; the hash
	// must follow the bytes sent, not a normal form.
	if metadataHash(md) == metadataHash(`[["text/plain","lorem ipsum blah blah"]]`) {
		t.Errorf("metadata hash ignores the exact bytes")
	}
	for name, bad := range map[string]string{
		"not JSON":          `lorem`,
		"object":            `{"text/plain":"x"}`,
		"no text/plain":     `[["text/identifier","a@b.c"]]`,
		"two text/plain":    `[["text/plain","a"],["text/plain","b"]]`,
		"empty entry":       `[[],["text/plain","a"]]`,
		"type not a string": `[[1,"a"],["text/plain","a"]]`,
		"entry not array":   `["text/plain"]`,
	} {
		if _, err := parseMetadata(bad); err == nil {
			t.Errorf("%s: metadata %s accepted", name, bad)
		}
	}
	md2 := buildMetadata("Pay bob", "bob@example.com")
	byType, err = parseMetadata(md2)
	if err != nil {
		t.Fatal(err)
	}
	if id := metadataIdentifier(byType); id != "bob@example.com" {
		t.Errorf("identifier %q", id)
	}
}

// The answers LUD-21 documents are read as the spec means them: the open
// one as open, the error one as the service's error, and the settled one,
// whose preimage is a placeholder, refused because the claim cannot be
// checked.
func TestLUD21Examples(t *testing.T) {
	hash := backend.Preimage{1}.Hash()
	settled, _, err := parseVerify(json.RawMessage(readFixture(t, "lud21-verify-open.json")), hash, "lnbc10...")
	if err != nil || settled {
		t.Errorf("LUD-21 open example: settled %v, %v; want open", settled, err)
	}
	_, _, err = parseVerify(json.RawMessage(readFixture(t, "lud21-verify-settled.json")), hash, "lnbc10...")
	if err == nil || !strings.Contains(err.Error(), "preimage") {
		t.Errorf("LUD-21 settled example with placeholder preimage: %v, want a preimage error", err)
	}
	var st statusResponse
	if err := json.Unmarshal([]byte(readFixture(t, "lud21-verify-error.json")), &st); err != nil || st.Status != "ERROR" || st.Reason != "Not found" {
		t.Errorf("LUD-21 error example: %+v, %v", st, err)
	}

	pre := backend.Preimage{7}
	good := `{"status":"OK","settled":true,"preimage":"` + pre.String() + `","pr":"lnbcrt1x"}`
	settled, got, err := parseVerify(json.RawMessage(good), pre.Hash(), "lnbcrt1x")
	if err != nil || !settled || got != pre {
		t.Errorf("a settled answer with the right preimage: %v %s %v", settled, got, err)
	}
	for name, bad := range map[string]string{
		"wrong preimage":  `{"status":"OK","settled":true,"preimage":"` + backend.Preimage{8}.String() + `","pr":"lnbcrt1x"}`,
		"no preimage":     `{"status":"OK","settled":true,"preimage":null,"pr":"lnbcrt1x"}`,
		"other invoice":   `{"status":"OK","settled":false,"preimage":null,"pr":"lnbcrt1y"}`,
		"no settled":      `{"status":"OK","pr":"lnbcrt1x"}`,
		"no pr":           `{"status":"OK","settled":false}`,
		"status":          `{"status":"MAYBE","settled":false,"pr":"lnbcrt1x"}`,
		"settled string":  `{"status":"OK","settled":"yes","pr":"lnbcrt1x"}`,
		"array":           `[]`,
		"empty object":    `{}`,
		"preimage number": `{"status":"OK","settled":true,"preimage":7,"pr":"lnbcrt1x"}`,
	} {
		if _, _, err := parseVerify(json.RawMessage(bad), pre.Hash(), "lnbcrt1x"); err == nil {
			t.Errorf("%s: %s accepted", name, bad)
		}
	}
}
