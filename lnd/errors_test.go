package lnd

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/l402kit/l402kit/backend"
)

func TestMapErr(t *testing.T) {
	// Texts are LND v0.20.0-beta's own (see errors.go for where each comes from).
	cases := []struct {
		name string
		err  error
		want error
	}{
		{"unavailable code", status.Error(codes.Unavailable, "connection error: desc = \"transport: Error while dialing: dial tcp 127.0.0.1:1: connect: connection refused\""), backend.ErrUnavailable},
		{"starting", status.Error(codes.Unknown, "server is still in the process of starting"), backend.ErrUnavailable},
		{"rpc starting", status.Error(codes.Unknown, "the RPC server is in the process of starting up, but not yet ready to accept calls"), backend.ErrUnavailable},
		{"waiting to start", status.Error(codes.Unknown, "waiting to start, RPC services not available"), backend.ErrUnavailable},
		{"wallet locked", status.Error(codes.Unknown, "wallet locked, unlock it to enable full RPC access"), backend.ErrUnavailable},
		{"not synced", status.Error(codes.Unknown, "chain backend is not synced"), backend.ErrUnavailable},
		{"own deadline", status.Error(codes.DeadlineExceeded, "context deadline exceeded"), backend.ErrUnavailable},
		{"refused syscall", fmt.Errorf("dial: %w", syscall.ECONNREFUSED), backend.ErrUnavailable},
		{"not found text", status.Error(codes.Unknown, "unable to locate invoice"), backend.ErrNotFound},
		{"not found code", status.Error(codes.NotFound, "no such thing"), backend.ErrNotFound},
		{"duplicate", status.Error(codes.Unknown, "invoice with payment hash already exists"), backend.ErrAlreadyExists},
		{"already exists code", status.Error(codes.AlreadyExists, "x"), backend.ErrAlreadyExists},
		{"invalid argument", status.Error(codes.InvalidArgument, "bad"), backend.ErrInvalid},
		{"still open", status.Error(codes.Unknown, "invoice still open"), backend.ErrInvalid},
		{"already settled", status.Error(codes.Unknown, "invoice already settled"), backend.ErrInvalid},
		{"bad macaroon", status.Error(codes.Unknown, "verification failed: signature mismatch after caveat verification"), backend.ErrInvalid},
		{"no macaroon", status.Error(codes.Unknown, "expected 1 macaroon, got 0"), backend.ErrInvalid},
		{"wrong tls cert", status.Error(codes.Unavailable, "connection error: desc = \"transport: authentication handshake failed: tls: failed to verify certificate: x509: certificate signed by unknown authority\""), backend.ErrInvalid},
		{"other node error", status.Error(codes.Unknown, "something LND never said before"), errUnknown},
		{"permission", status.Error(codes.PermissionDenied, "permission denied"), backend.ErrInvalid},
		{"unimplemented", status.Error(codes.Unimplemented, "unknown service invoicesrpc.Invoices"), backend.ErrUnsupported},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := mapErr(context.Background(), "op", c.err)
			if !errors.Is(got, c.want) {
				t.Fatalf("mapErr(%v) = %v, want it to wrap %v", c.err, got, c.want)
			}
			if st, ok := status.FromError(c.err); ok && !containsAny(got.Error(), []string{st.Message()}) {
				t.Fatalf("mapErr dropped LND's text: %v", got)
			}
		})
	}
}

func TestMapErrCallerContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	got := mapErr(ctx, "op", status.Error(codes.Canceled, "context canceled"))
	if !errors.Is(got, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", got)
	}
	if errors.Is(got, backend.ErrUnavailable) {
		t.Fatalf("caller's cancel reported as node failure: %v", got)
	}
	if err := mapErr(ctx, "op", nil); err != nil {
		t.Fatalf("nil error mapped to %v", err)
	}
}
