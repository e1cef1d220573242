package lnd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"syscall"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/l402kit/l402kit/backend"
)

// Texts LND puts in errors it returns as codes.Unknown, so only the text
// tells them apart. They come from lnd v0.20.0-beta (invoices/errors.go,
// rpcperms/interceptor.go, server.go, payments/db/errors.go).
var (
	unavailableTexts = []string{
		"in the process of starting", // server.go ErrServerNotActive, rpcperms ErrRPCStarting
		"waiting to start",           // rpcperms ErrWaitingToStart
		"wallet locked",              // rpcperms ErrWalletLocked
		"wallet not created",         // rpcperms ErrNoWallet
		"not synced",
		"not yet synced",
		"server is shutting down",
		"connection refused",
		"transport is closing",
	}
	// authTexts: gRPC's TLS handshake failure (reported as Unavailable)
	// and the macaroon checks of LND (macaroons/service.go) and of the
	// macaroon-bakery library it uses, reported as Unknown.
	authTexts = []string{
		"authentication handshake failed",
		"verification failed",
		"permission denied",
		"cannot get macaroon",
		"expected 1 macaroon",
		"invalid macaroon",
	}
	notFoundTexts      = []string{"unable to locate invoice", "there are no existing invoices"}
	alreadyExistsTexts = []string{"invoice with payment hash already exists"}
	invalidTexts       = []string{
		"invoice still open",       // settling an invoice nobody paid
		"invoice already settled",  // settle/cancel after settlement
		"invoice already canceled", // settle/cancel after cancel
		"invalid",
		"must be",
		"exceeds",
	}
)

// mapErr turns an error from a gRPC call into one wrapping a backend
// sentinel, keeping LND's own text. op names the call for the message. ctx
// is the caller's context: when it ended, its error is what the caller
// asked for and is returned as such, not as a node failure.
func mapErr(ctx context.Context, op string, err error) error {
	if err == nil {
		return nil
	}
	if ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) ||
		status.Code(err) == codes.Canceled || status.Code(err) == codes.DeadlineExceeded) {
		return fmt.Errorf("lnd: %s: %w", op, ctx.Err())
	}
	return fmt.Errorf("lnd: %s: %w: %s", op, classify(err), message(err))
}

// classify picks the sentinel for err: the gRPC code where LND sets a
// meaningful one, otherwise LND's error text.
func classify(err error) error {
	if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, io.EOF) {
		return backend.ErrUnavailable
	}
	st, _ := status.FromError(err)
	msg := strings.ToLower(message(err))
	if containsAny(msg, authTexts) {
		// A certificate or macaroon the node rejects is a configuration
		// mistake: retrying, as ErrUnavailable invites, will not help.
		return backend.ErrInvalid
	}
	switch st.Code() {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Aborted:
		// DeadlineExceeded with the caller's context still alive means our
		// own per-call deadline ran out: the node did not answer in time.
		return backend.ErrUnavailable
	case codes.NotFound:
		return backend.ErrNotFound
	case codes.AlreadyExists:
		return backend.ErrAlreadyExists
	case codes.InvalidArgument, codes.OutOfRange:
		return backend.ErrInvalid
	case codes.Unimplemented:
		return backend.ErrUnsupported
	}
	switch {
	case containsAny(msg, unavailableTexts):
		return backend.ErrUnavailable
	case containsAny(msg, notFoundTexts):
		return backend.ErrNotFound
	case containsAny(msg, alreadyExistsTexts):
		return backend.ErrAlreadyExists
	case containsAny(msg, invalidTexts):
		return backend.ErrInvalid
	case st.Code() == codes.Unauthenticated || st.Code() == codes.PermissionDenied:
		return backend.ErrInvalid
	}
	return errUnknown
}

// errUnknown marks node errors no sentinel describes; callers can still read
// LND's text in the message.
var errUnknown = errors.New("node error")

// message is LND's own text without gRPC's "rpc error: code = ..." framing.
func message(err error) string {
	if st, ok := status.FromError(err); ok {
		return st.Message()
	}
	return err.Error()
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
