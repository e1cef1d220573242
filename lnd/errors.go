package lnd

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/internal/plumbing/lndrest"
)

// Texts LND puts in errors it returns with the code Unknown, so only the
// text tells them apart. They come from lnd v0.20.0-beta (invoices/errors.go,
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
		"connection refused", // the REST gateway reaching LND's own gRPC server
		"transport is closing",
	}
	// authTexts: the macaroon checks of LND (macaroons/service.go) and of
	// the macaroon-bakery library it uses.
	authTexts = []string{
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

// mapErr turns an error of a REST call into one wrapping a backend
// sentinel, keeping LND's own text. op names the call for the message. ctx
// is the caller's context: when it ended, its error is what the caller
// asked for and is returned as such, not as a node failure.
func mapErr(ctx context.Context, op string, err error) error {
	if err == nil {
		return nil
	}
	if ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		return fmt.Errorf("lnd: %s: %w", op, ctx.Err())
	}
	return fmt.Errorf("lnd: %s: %w: %s", op, classify(err), message(err))
}

// classify picks the sentinel for err: for the node's answers the gRPC code
// where LND sets a meaningful one, otherwise LND's text; for failures to
// reach the node ErrUnavailable, unless the failure is a configuration
// mistake.
func classify(err error) error {
	var e *lndrest.Error
	if !errors.As(err, &e) {
		if isConfigErr(err) {
			// A certificate the node does not match, or the wrong port:
			// retrying, as ErrUnavailable invites, will not help.
			return backend.ErrInvalid
		}
		// Refused, reset, timed out (our own per-call deadline with the
		// caller's context alive included), DNS: the node cannot be
		// reached now.
		return backend.ErrUnavailable
	}
	msg := strings.ToLower(e.Message)
	if containsAny(msg, authTexts) {
		// A macaroon the node rejects is a configuration mistake.
		return backend.ErrInvalid
	}
	if e.NoRoute() {
		// The node has no such endpoint: built without the sub-server
		// (invoicesrpc, routerrpc) the call belongs to.
		return backend.ErrUnsupported
	}
	switch e.Code {
	case lndrest.CodeUnavailable, lndrest.CodeDeadlineExceeded, lndrest.CodeAborted, lndrest.CodeCanceled:
		// Canceled or DeadlineExceeded from the node with the caller's
		// context alive: LND (or its gateway) gave up, typically while
		// shutting down.
		return backend.ErrUnavailable
	case lndrest.CodeNotFound:
		return backend.ErrNotFound
	case lndrest.CodeAlreadyExists:
		return backend.ErrAlreadyExists
	case lndrest.CodeInvalidArgument, lndrest.CodeOutOfRange:
		return backend.ErrInvalid
	case lndrest.CodeUnimplemented:
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
	case e.Code == lndrest.CodeUnauthenticated || e.Code == lndrest.CodePermissionDenied:
		return backend.ErrInvalid
	}
	return errUnknown
}

// isConfigErr reports failures no retry can fix: a TLS certificate the node
// does not match, a port that is LND's gRPC one or no TLS at all, a
// macaroon the node refuses.
func isConfigErr(err error) bool {
	var (
		cv *tls.CertificateVerificationError
		ua x509.UnknownAuthorityError
		hn x509.HostnameError
		ci x509.CertificateInvalidError
		e  *lndrest.Error
	)
	switch {
	case errors.As(err, &cv), errors.As(err, &ua), errors.As(err, &hn), errors.As(err, &ci),
		errors.Is(err, lndrest.ErrGRPCPort), errors.Is(err, lndrest.ErrNotTLS), errors.Is(err, lndrest.ErrBadCert):
		return true
	case errors.As(err, &e):
		return containsAny(strings.ToLower(e.Message), authTexts)
	}
	return false
}

// errUnknown marks node errors no sentinel describes; callers can still read
// LND's text in the message.
var errUnknown = errors.New("node error")

// message is LND's own text for its answers, the transport's otherwise.
func message(err error) string {
	var e *lndrest.Error
	if errors.As(err, &e) {
		return e.Message
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
