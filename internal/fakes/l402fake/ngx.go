package l402fake

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"html"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/macaroon.v2"

	"github.com/l402kit/l402kit/backend"
)

// NgxConfig sets up an Ngx fake: the location directives of ngx_l402.
type NgxConfig struct {
	// Node makes and looks up the invoices; required.
	Node Invoicer
	// Price is l402_amount_msat_default; required.
	Price backend.MilliSat
	// MacaroonTimeout is l402_macaroon_timeout: when set, tokens carry an
	// "ExpiresAt = <unix>" caveat that far ahead.
	MacaroonTimeout time.Duration
	// IndefiniteAccess is l402_indefinite_access: a preimage may be used
	// again (ngx_l402 treats it as single-use by default).
	IndefiniteAccess bool
	// PrefixFF makes identifiers 0xff followed by the payment hash, which
	// ngx_l402's reader accepts beside the bare hash.
	PrefixFF bool
	// SettleAfter, when set, makes every invoice a hold invoice settled
	// that long after it is paid: a payment slower than a client's
	// in-flight probe. Node must then have hold invoices.
	SettleAfter time.Duration
	// Now replaces time.Now for expiry, in tests.
	Now func() time.Time
	// Content serves paid requests; nil writes a line naming the request.
	Content http.Handler
}

// Ngx is a stand-in for an nginx location protected by ngx_l402 v1.2.7
// (github.com/DhananjayPurohit/ngx_l402 at 32a3fab: src/lib.rs,
// ngx_l402_core/src/l402_header.rs), whose tokens come from the
// l402_middleware crate v2.2.3 (github.com/DhananjayPurohit/l402_middleware
// at ed7daa0: src/macaroon_util.rs, src/l402.rs, src/utils.rs) and the
// macaroon crate 0.3 (github.com/macaroon-rs/macaroon v0.3.0:
// src/serialization/v1.rs). As read there:
//
//   - A request without Authorization gets 402 with exactly one challenge,
//     `WWW-Authenticate: L402 macaroon="<m>", invoice="<bolt11>"` (no LSAT
//     line) and an HTML payment page as body. The invoice's memo is "L402".
//   - The macaroon is libmacaroons V1 binary (packets: location, identifier,
//     cid..., signature) in URL-safe padded base64; location "L402";
//     identifier the bare 32-byte payment hash; first-party caveats
//     "RequestPath = <uri>", "RequestMethod = <METHOD>" and, with a macaroon
//     timeout, "ExpiresAt = <unix>".
//   - Authorization is read as "L402 <macaroon>:<64 hex>" only (the "L402 "
//     prefix trimmed, split at ':' into exactly two parts). The macaroon
//     must verify with the root key, RequestPath and RequestMethod must
//     equal the request's exactly, ExpiresAt must not have passed
//     (now <= ExpiresAt), other caveats pass, and sha256(preimage) must be
//     the identifier's hash. The preimage is then spent (unless
//     IndefiniteAccess): a second use is refused.
//   - Every refusal is 401 with nginx's stock page and no challenge.
type Ngx struct {
	counter
	cfg     NgxConfig
	rootKey []byte
	used    map[[32]byte]bool
}

// NewNgx returns an Ngx fake; t fails when the fake receives what the real
// server would never be sent by a correct client.
func NewNgx(t testing.TB, cfg NgxConfig) *Ngx {
	if cfg.Content == nil {
		cfg.Content = defaultContent("ngx_l402")
	}
	return &Ngx{counter: counter{t: t}, cfg: cfg, rootKey: randomKey(), used: make(map[[32]byte]bool)}
}

// ServeHTTP implements http.Handler.
func (n *Ngx) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	auth := r.Header.Get("Authorization")
	if auth == "" {
		n.challenge(w, r)
		return
	}
	n.sawToken(r)
	if n.checkInFlight("ngx_l402", r) {
		n.refuse(w)
		return
	}
	mac, preimage, err := ngxParseAuthorization(auth)
	if err != nil {
		n.refuse(w)
		return
	}
	n.mu.Lock()
	spent := n.used[preimage]
	n.mu.Unlock()
	if spent && !n.cfg.IndefiniteAccess {
		n.refuse(w)
		return
	}
	if !n.verify(mac, preimage, r) {
		n.refuse(w)
		return
	}
	if !n.cfg.IndefiniteAccess {
		n.mu.Lock()
		again := n.used[preimage]
		n.used[preimage] = true // SET NX: the first request to claim it wins
		n.mu.Unlock()
		if again {
			n.refuse(w)
			return
		}
	}
	n.add(func(s *Stats) { s.Served++ })
	n.cfg.Content.ServeHTTP(w, r)
}

// ngxParseAuthorization reads a header as l402_middleware's
// parse_l402_header does.
func ngxParseAuthorization(auth string) (*macaroon.Macaroon, [32]byte, error) {
	var pre [32]byte
	token := strings.TrimPrefix(strings.TrimSpace(auth), "L402 ")
	parts := strings.Split(token, ":")
	if len(parts) != 2 {
		return nil, pre, fmt.Errorf("L402 does not have the right format")
	}
	mac, err := ngxDecodeMacaroon(strings.TrimSpace(parts[0]))
	if err != nil {
		return nil, pre, err
	}
	b, err := hex.DecodeString(strings.TrimSpace(parts[1]))
	if err != nil || len(b) != 32 {
		return nil, pre, fmt.Errorf("preimage must be 32 bytes of hex")
	}
	copy(pre[:], b)
	return mac, pre, nil
}

// ngxDecodeMacaroon decodes base64 as the macaroon crate does: URL-safe when
// the text holds '-' or '_', standard otherwise, padded or not.
func ngxDecodeMacaroon(s string) (*macaroon.Macaroon, error) {
	if s == "" {
		return nil, fmt.Errorf("macaroon string is empty")
	}
	enc := base64.RawStdEncoding
	if strings.ContainsAny(s, "-_") {
		enc = base64.RawURLEncoding
	}
	b, err := enc.DecodeString(strings.TrimRight(s, "="))
	if err != nil {
		return nil, err
	}
	var m macaroon.Macaroon
	if err := m.UnmarshalBinary(b); err != nil {
		return nil, err
	}
	return &m, nil
}

func (n *Ngx) verify(mac *macaroon.Macaroon, preimage [32]byte, r *http.Request) bool {
	path := "RequestPath = " + r.URL.Path
	method := "RequestMethod = " + r.Method
	t := now(n.cfg.Now)
	err := mac.Verify(n.rootKey, func(c string) error {
		if v, ok := strings.CutPrefix(c, "ExpiresAt = "); ok {
			if ts, err := strconv.ParseInt(v, 10, 64); err == nil {
				if t.Unix() <= ts {
					return nil
				}
				return fmt.Errorf("expired")
			}
		}
		if c == path || c == method {
			return nil // satisfy_exact
		}
		if strings.HasPrefix(c, "RequestMethod = ") || strings.HasPrefix(c, "RequestPath = ") {
			return fmt.Errorf("bound to another request")
		}
		return nil // satisfy_general's fall-through
	}, nil)
	if err != nil {
		return false
	}
	want := hashOf(preimage[:])
	id := mac.Id()
	switch {
	case len(id) == 33 && id[0] == 0xff:
		return bytes.Equal(id[1:], want[:])
	case len(id) == 32:
		return bytes.Equal(id, want[:])
	default:
		return strings.Contains(hex.EncodeToString(id), hex.EncodeToString(want[:]))
	}
}

func (n *Ngx) refuse(w http.ResponseWriter) {
	n.add(func(s *Stats) { s.Refused++ })
	w.Header().Set("Content-Type", "text/html")
	w.WriteHeader(http.StatusUnauthorized)
	fmt.Fprint(w, "<html>\r\n<head><title>401 Authorization Required</title></head>\r\n<body>\r\n"+
		"<center><h1>401 Authorization Required</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n")
}

func (n *Ngx) challenge(w http.ResponseWriter, r *http.Request) {
	inv, err := n.invoice(r.Context(), n.cfg.Node, n.cfg.Price, "L402", n.cfg.SettleAfter)
	if err != nil {
		http.Error(w, "", http.StatusInternalServerError)
		return
	}
	caveats := []string{"RequestPath = " + r.URL.Path, "RequestMethod = " + r.Method}
	if n.cfg.MacaroonTimeout > 0 {
		caveats = append(caveats, "ExpiresAt = "+strconv.FormatInt(now(n.cfg.Now).Add(n.cfg.MacaroonTimeout).Unix(), 10))
	}
	id := inv.PaymentHash[:]
	if n.cfg.PrefixFF {
		id = append([]byte{0xff}, id...)
	}
	mac, err := MacaroonV1(n.rootKey, id, "L402", caveats...)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	n.add(func(s *Stats) { s.Challenges++ })
	w.Header().Add("WWW-Authenticate", fmt.Sprintf("L402 macaroon=\"%s\", invoice=\"%s\"", mac, inv.PaymentRequest))
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusPaymentRequired)
	fmt.Fprintf(w, "<!DOCTYPE html><html><head><title>Payment Required</title></head><body>"+
		"<h1>Payment Required</h1><p>%d sats</p><pre id=\"invoice\">%s</pre>"+
		"<input type=\"hidden\" id=\"macaroon\" value=\"%s\"></body></html>",
		int64(n.cfg.Price)/1000, html.EscapeString(inv.PaymentRequest), html.EscapeString(mac))
}

// MacaroonV1 returns a macaroon in libmacaroons' V1 binary format, URL-safe
// padded base64, as the macaroon crate's serialize(Format::V1) writes it.
// macaroon.v2 reads that format but writes it only for UTF-8 identifiers,
// so the packets are laid out here; the signature chain is the same in
// both formats.
func MacaroonV1(rootKey, id []byte, location string, caveats ...string) (string, error) {
	m, err := macaroon.New(rootKey, id, location, macaroon.V2)
	if err != nil {
		return "", err
	}
	for _, c := range caveats {
		if err := m.AddFirstPartyCaveat([]byte(c)); err != nil {
			return "", err
		}
	}
	var b []byte
	b = packetV1(b, "location", []byte(location))
	b = packetV1(b, "identifier", id)
	for _, c := range caveats {
		b = packetV1(b, "cid", []byte(c))
	}
	b = packetV1(b, "signature", m.Signature())
	return base64.URLEncoding.EncodeToString(b), nil
}

// packetV1 appends one V1 packet: four lower-case hex digits of the whole
// packet's size, the field name, a space, the data and a newline.
func packetV1(b []byte, field string, data []byte) []byte {
	size := 4 + len(field) + 1 + len(data) + 1
	b = fmt.Appendf(b, "%04x", size)
	b = append(b, field...)
	b = append(b, ' ')
	b = append(b, data...)
	return append(b, '\n')
}
