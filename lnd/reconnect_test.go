package lnd

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/internal/plumbing/lndrest"
)

// stubLND answers the REST calls the adapter makes the way LND v0.20's
// gateway does (status bodies, {"result": ...} stream messages, int64 as
// strings, bytes as base64), and records the macaroon header it received.
// It stands in for LND only to test connection handling, streams and
// Close; regtest_test.go checks behaviour against LND itself.
type stubLND struct {
	sawMacaroon atomic.Value

	mu       sync.Mutex
	invoices map[backend.PaymentHash]*lndrest.Invoice
	changed  chan struct{} // closed and replaced on every change
	// payment is what POST /v2/router/send answers: a stream message, or
	// a status body when status is not 200.
	payment       func(req lndrest.SendPaymentRequest) (status int, body any)
	subscriptions atomic.Int64 // open invoice subscriptions
}

func newStub() *stubLND {
	return &stubLND{invoices: map[backend.PaymentHash]*lndrest.Invoice{}, changed: make(chan struct{})}
}

func (s *stubLND) put(h backend.PaymentHash, in lndrest.Invoice) {
	s.mu.Lock()
	defer s.mu.Unlock()
	in.RHash = h[:]
	s.invoices[h] = &in
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *stubLND) get(h backend.PaymentHash) (lndrest.Invoice, bool, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	in, ok := s.invoices[h]
	if !ok {
		return lndrest.Invoice{}, false, s.changed
	}
	return *in, true, s.changed
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// gatewayError is the body LND's gateway sends for an error; code 2
// (Unknown) and HTTP 500 is what most of LND's own errors get.
func gatewayError(code int, msg string) map[string]any {
	return map[string]any{"code": code, "message": msg, "details": []any{}}
}

func (s *stubLND) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if v := r.Header.Get("Grpc-Metadata-macaroon"); v != "" {
		s.sawMacaroon.Store(v)
	}
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/v1/getinfo":
		writeJSON(w, 200, map[string]any{
			"identity_pubkey": "02aa", "alias": "stub", "block_height": 500, "synced_to_chain": true,
			"chains":                []any{map[string]any{"chain": "bitcoin", "network": "regtest"}},
			"best_header_timestamp": "1700000000",
		})
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/v1/invoice/"):
		h, err := backend.ParsePaymentHash(strings.TrimPrefix(r.URL.Path, "/v1/invoice/"))
		if err != nil {
			writeJSON(w, 500, gatewayError(2, "invalid hash"))
			return
		}
		in, ok, _ := s.get(h)
		if !ok {
			writeJSON(w, 500, gatewayError(2, "unable to locate invoice"))
			return
		}
		writeJSON(w, 200, in)
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/v2/invoices/subscribe/"):
		s.subscribe(w, r)
	case r.Method == http.MethodPost && r.URL.Path == "/v2/router/send":
		var req lndrest.SendPaymentRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			writeJSON(w, 400, gatewayError(3, err.Error()))
			return
		}
		status, body := s.payment(req)
		writeJSON(w, status, body)
	default:
		writeJSON(w, 404, gatewayError(5, "Not Found"))
	}
}

// subscribe streams the invoice's state: the current one first (when it
// exists, as LND does), then every change, until the client leaves.
func (s *stubLND) subscribe(w http.ResponseWriter, r *http.Request) {
	s.subscriptions.Add(1)
	defer s.subscriptions.Add(-1)
	raw, err := base64.URLEncoding.DecodeString(strings.TrimPrefix(r.URL.Path, "/v2/invoices/subscribe/"))
	if err != nil || len(raw) != 32 {
		writeJSON(w, 400, gatewayError(3, "bad hash"))
		return
	}
	var h backend.PaymentHash
	copy(h[:], raw)
	var sent string
	for {
		in, ok, changed := s.get(h)
		if ok && in.State != sent {
			sent = in.State
			json.NewEncoder(w).Encode(map[string]any{"result": in})
			w.(http.Flusher).Flush()
		}
		select {
		case <-changed:
		case <-r.Context().Done():
			return
		}
	}
}

func selfSigned(t *testing.T, names []string, ips []net.IP) (tls.Certificate, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "stub lnd"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		DNSNames:              names,
		IPAddresses:           ips,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key},
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func localhostCert(t *testing.T) (tls.Certificate, []byte) {
	return selfSigned(t, []string{"localhost"}, []net.IP{net.ParseIP("127.0.0.1")})
}

// serve starts h over TLS on addr (":0" style for a fresh port), HTTP/1.1
// only as LND's REST listener is.
func serve(t *testing.T, addr string, cert tls.Certificate, h http.Handler) *httptest.Server {
	t.Helper()
	var lis net.Listener
	var err error
	// The port of a server that just stopped can take a moment to free.
	for range 50 {
		if lis, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Listener = lis
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	// Handshakes the tests make fail on purpose are not news.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	return srv
}

// stop ends the server the way a stopped node does: every connection,
// streams included, is cut.
func stop(srv *httptest.Server) {
	srv.CloseClientConnections()
	srv.Close()
}

const testMacHex = "0201036c6e640258030a10b0d5b1f8c2c5a4a3b2a1a0a9a8a7a6a5"

func TestReconnect(t *testing.T) {
	cert, certPEM := localhostCert(t)
	stub := newStub()
	srv := serve(t, "127.0.0.1:0", cert, stub)
	defer func() { stop(srv) }()
	addr := srv.Listener.Addr().String()

	b, err := New(context.Background(), Config{Address: addr, TLSCert: string(certPEM), Macaroon: testMacHex})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()

	info, err := b.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Alias != "stub" || info.Network != "regtest" || !info.Synced || info.BlockHeight != 500 || info.NodeID != "02aa" {
		t.Fatalf("Info = %+v", info)
	}
	if got, _ := stub.sawMacaroon.Load().(string); got != testMacHex {
		t.Fatalf("server saw macaroon %q, want %q", got, testMacHex)
	}
	if _, err := b.LookupInvoice(ctx, backend.PaymentHash{1}); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("LookupInvoice unknown = %v, want ErrNotFound", err)
	}

	stop(srv)
	// The contract: a node that is down answers ErrUnavailable within 2 s,
	// so the call gets exactly that long before the caller gives up.
	dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	start := time.Now()
	_, err = b.Info(dctx)
	cancel()
	if !errors.Is(err, backend.ErrUnavailable) {
		t.Fatalf("Info on a stopped node = %v, want ErrUnavailable", err)
	}
	t.Logf("stopped node: ErrUnavailable after %s (%v)", time.Since(start).Round(time.Millisecond), err)

	srv = serve(t, addr, cert, stub)
	start = time.Now()
	if _, err = b.Info(ctx); err != nil {
		// No backoff to wait out: the first call after the node is back
		// dials it.
		t.Fatalf("Info after restart = %v", err)
	}
	t.Logf("restarted node: first call succeeded in %s", time.Since(start).Round(time.Millisecond))
}

// A node reached by a name its certificate does not carry (a tunnel, a
// container, Tor) is trusted when it presents exactly the configured
// certificate; another certificate is a configuration mistake.
func TestPinnedCertificate(t *testing.T) {
	cert, certPEM := selfSigned(t, []string{"alice"}, nil) // no 127.0.0.1 in it
	srv := serve(t, "127.0.0.1:0", cert, newStub())
	defer stop(srv)
	addr := srv.Listener.Addr().String()
	ctx := context.Background()

	b, err := New(ctx, Config{Address: addr, TLSCert: string(certPEM), Macaroon: testMacHex})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := b.Info(ctx); err != nil {
		t.Fatalf("pinned certificate, other name: %v", err)
	}

	_, otherPEM := localhostCert(t)
	b2, err := New(ctx, Config{Address: addr, TLSCert: string(otherPEM), Macaroon: testMacHex})
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	if _, err := b2.Info(ctx); !errors.Is(err, backend.ErrInvalid) {
		t.Fatalf("another node's certificate: %v, want ErrInvalid", err)
	}
	b3, err := New(ctx, Config{Address: addr, Macaroon: testMacHex}) // system roots
	if err != nil {
		t.Fatal(err)
	}
	defer b3.Close()
	if _, err := b3.Info(ctx); !errors.Is(err, backend.ErrInvalid) {
		t.Fatalf("self-signed certificate against the system roots: %v, want ErrInvalid", err)
	}
	if _, err := New(ctx, Config{Address: addr, TLSCert: hex.EncodeToString([]byte("not a certificate at all, but long enough")), Macaroon: testMacHex}); !errors.Is(err, backend.ErrInvalid) {
		t.Fatalf("garbage certificate: %v, want ErrInvalid", err)
	}
}

// A URL naming LND's gRPC port gets an answer only a gRPC server gives: over
// HTTP/2, status 415 with content-type application/grpc (grpc-go's answer
// to a request that is not gRPC). The error must say which port to use.
func TestGRPCPortNamed(t *testing.T) {
	cert, certPEM := localhostCert(t)
	grpcLike := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/grpc")
		w.Header().Set("Grpc-Status", "13")
		w.Header().Set("Grpc-Message", "invalid gRPC request content-type \"\"")
		w.WriteHeader(http.StatusUnsupportedMediaType)
	}))
	grpcLike.EnableHTTP2 = true
	grpcLike.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	grpcLike.StartTLS()
	defer grpcLike.Close()

	b, err := New(context.Background(), Config{Address: grpcLike.Listener.Addr().String(), TLSCert: string(certPEM), Macaroon: testMacHex})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	_, err = b.Info(context.Background())
	if !errors.Is(err, backend.ErrInvalid) || !strings.Contains(err.Error(), "restlisten") {
		t.Fatalf("Info on a gRPC port = %v, want ErrInvalid naming restlisten", err)
	}
	t.Log(err)
}

func TestPlainHTTPPort(t *testing.T) {
	plain := httptest.NewServer(newStub())
	defer plain.Close()
	b, err := New(context.Background(), Config{Address: plain.Listener.Addr().String(), Macaroon: testMacHex})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := b.Info(context.Background()); !errors.Is(err, backend.ErrInvalid) {
		t.Fatalf("Info on a plain HTTP port = %v, want ErrInvalid", err)
	}
}

func TestAs(t *testing.T) {
	b, err := New(context.Background(), Config{Address: "127.0.0.1:1", Macaroon: testMacHex})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var hc *http.Client
	if !b.As(&hc) || hc == nil {
		t.Fatal("As(**http.Client) failed")
	}
	var u struct{ s string }
	if b.As(&u) {
		t.Fatal("As(*struct) succeeded")
	}
}
