package lnd

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lightningnetwork/lnd/lnrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/l402kit/l402kit/backend"
)

// stubLightning answers GetInfo and LookupInvoice the way LND does, and
// records the macaroon header it received. It stands in for LND only to test
// the connection handling; the regtest test checks behaviour against LND.
type stubLightning struct {
	lnrpc.UnimplementedLightningServer
	sawMacaroon atomic.Value
}

func (s *stubLightning) GetInfo(ctx context.Context, _ *lnrpc.GetInfoRequest) (*lnrpc.GetInfoResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get("macaroon"); len(v) == 1 {
		s.sawMacaroon.Store(v[0])
	}
	return &lnrpc.GetInfoResponse{
		IdentityPubkey: "02aa",
		Alias:          "stub",
		BlockHeight:    500,
		SyncedToChain:  true,
		Chains:         []*lnrpc.Chain{{Chain: "bitcoin", Network: "regtest"}},
	}, nil
}

func (s *stubLightning) LookupInvoice(context.Context, *lnrpc.PaymentHash) (*lnrpc.Invoice, error) {
	// LND answers an unknown hash with codes.Unknown and this text.
	return nil, status.Error(codes.Unknown, "unable to locate invoice")
}

func selfSigned(t *testing.T) (tls.Certificate, []byte) {
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
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
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

func serve(t *testing.T, addr string, cert tls.Certificate, srv *stubLightning) (*grpc.Server, string) {
	t.Helper()
	var lis net.Listener
	var err error
	// The port of a server that just stopped can take a moment to free.
	for i := 0; i < 50; i++ {
		if lis, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer(grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{cert}})))
	lnrpc.RegisterLightningServer(gs, srv)
	go gs.Serve(lis)
	return gs, lis.Addr().String()
}

func TestReconnect(t *testing.T) {
	cert, certPEM := selfSigned(t)
	stub := &stubLightning{}
	gs, addr := serve(t, "127.0.0.1:0", cert, stub)
	defer func() { gs.Stop() }()

	const macHex = "0201036c6e640258030a10b0d5b1f8c2c5a4a3b2a1a0a9a8a7a6a5"
	b, err := New(context.Background(), Config{Address: addr, TLSCert: string(certPEM), Macaroon: macHex})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()

	info, err := b.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Alias != "stub" || info.Network != "regtest" || !info.Synced || info.BlockHeight != 500 {
		t.Fatalf("Info = %+v", info)
	}
	if got, _ := stub.sawMacaroon.Load().(string); got != macHex {
		t.Fatalf("server saw macaroon %q, want %q", got, macHex)
	}
	if _, err := b.LookupInvoice(ctx, backend.PaymentHash{1}); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("LookupInvoice unknown = %v, want ErrNotFound", err)
	}

	gs.Stop()
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

	gs, _ = serve(t, addr, cert, stub)
	start = time.Now()
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		_, err = b.Info(rctx)
		if err == nil {
			break
		}
		if !errors.Is(err, backend.ErrUnavailable) {
			t.Fatalf("Info after restart = %v", err)
		}
		select {
		case <-rctx.Done():
			t.Fatalf("adapter did not recover after the server came back: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Logf("restarted node: first successful call %s after the server listened again", time.Since(start).Round(time.Millisecond))
}

func TestAs(t *testing.T) {
	b, err := New(context.Background(), Config{Address: "127.0.0.1:1", Macaroon: "0201036c6e640258030a10b0d5b1f8c2c5a4"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var ln lnrpc.LightningClient
	if !b.As(&ln) || ln == nil {
		t.Fatal("As(*lnrpc.LightningClient) failed")
	}
	var conn *grpc.ClientConn
	if !b.As(&conn) || conn == nil {
		t.Fatal("As(**grpc.ClientConn) failed")
	}
	var s string
	if b.As(&s) {
		t.Fatal("As(*string) succeeded")
	}
}
