package lnd

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"testing"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/internal/plumbing/lndrest"
)

func TestMapErr(t *testing.T) {
	// Texts are LND v0.20.0-beta's own (see errors.go for where each comes
	// from); HTTP statuses are its gateway's for the code.
	answer := func(status int, code lndrest.Code, msg string) error {
		return fmt.Errorf("wrapped: %w", &lndrest.Error{Call: "GET /x", HTTPStatus: status, Code: code, Message: msg})
	}
	cases := []struct {
		name string
		err  error
		want error
	}{
		{"unavailable code", answer(503, lndrest.CodeUnavailable, "connection error"), backend.ErrUnavailable},
		{"starting", answer(500, lndrest.CodeUnknown, "server is still in the process of starting"), backend.ErrUnavailable},
		{"rpc starting", answer(500, lndrest.CodeUnknown, "the RPC server is in the process of starting up, but not yet ready to accept calls"), backend.ErrUnavailable},
		{"waiting to start", answer(500, lndrest.CodeUnknown, "waiting to start, RPC services not available"), backend.ErrUnavailable},
		{"wallet locked", answer(500, lndrest.CodeUnknown, "wallet locked, unlock it to enable full RPC access"), backend.ErrUnavailable},
		{"not synced", answer(500, lndrest.CodeUnknown, "chain backend is not synced"), backend.ErrUnavailable},
		{"canceled by the node", answer(0, lndrest.CodeCanceled, "context canceled"), backend.ErrUnavailable},
		{"own deadline", fmt.Errorf("GET /v1/getinfo: %w", context.DeadlineExceeded), backend.ErrUnavailable},
		{"refused", fmt.Errorf("dial: %w", syscall.ECONNREFUSED), backend.ErrUnavailable},
		{"not found text", answer(500, lndrest.CodeUnknown, "unable to locate invoice"), backend.ErrNotFound},
		{"not found code", answer(404, lndrest.CodeNotFound, "no such thing"), backend.ErrNotFound},
		{"no such endpoint", answer(404, lndrest.CodeNotFound, "Not Found"), backend.ErrUnsupported},
		{"method not allowed", answer(405, lndrest.CodeUnimplemented, "Method Not Allowed"), backend.ErrUnsupported},
		{"duplicate", answer(500, lndrest.CodeUnknown, "invoice with payment hash already exists"), backend.ErrAlreadyExists},
		{"already exists code", answer(409, lndrest.CodeAlreadyExists, "x"), backend.ErrAlreadyExists},
		{"invalid argument", answer(400, lndrest.CodeInvalidArgument, "bad"), backend.ErrInvalid},
		{"still open", answer(500, lndrest.CodeUnknown, "invoice still open"), backend.ErrInvalid},
		{"already settled", answer(500, lndrest.CodeUnknown, "invoice already settled"), backend.ErrInvalid},
		{"bad macaroon", answer(500, lndrest.CodeUnknown, "verification failed: signature mismatch after caveat verification"), backend.ErrInvalid},
		{"no macaroon", answer(500, lndrest.CodeUnknown, "expected 1 macaroon, got 0"), backend.ErrInvalid},
		{"grpc port", fmt.Errorf("GET /v1/getinfo: %w", lndrest.ErrGRPCPort), backend.ErrInvalid},
		{"other node error", answer(500, lndrest.CodeUnknown, "something LND never said before"), errUnknown},
		{"permission", answer(403, lndrest.CodePermissionDenied, "permission denied"), backend.ErrInvalid},
		{"unimplemented", answer(501, lndrest.CodeUnimplemented, "unknown service invoicesrpc.Invoices"), backend.ErrUnsupported},
		{"proxy in front, node down", answer(502, lndrest.CodeUnavailable, "Bad Gateway"), backend.ErrUnavailable},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := mapErr(context.Background(), "op", c.err)
			if !errors.Is(got, c.want) {
				t.Fatalf("mapErr(%v) = %v, want it to wrap %v", c.err, got, c.want)
			}
			var e *lndrest.Error
			if errors.As(c.err, &e) && !containsAny(got.Error(), []string{e.Message}) {
				t.Fatalf("mapErr dropped LND's text: %v", got)
			}
		})
	}
}

func TestMapErrCallerContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	got := mapErr(ctx, "op", fmt.Errorf("GET /x: %w", context.Canceled))
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
