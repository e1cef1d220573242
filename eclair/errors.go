package eclair

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"syscall"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/internal/plumbing/basicauth"
)

// APIError is an error answer from Eclair's API.
type APIError struct {
	Method  string // the API method, e.g. "createinvoice"
	Status  int    // HTTP status
	Message string // Eclair's "error" text, or the body when it is not JSON
	kind    error  // the backend sentinel it maps to
}

func (e *APIError) Error() string {
	if e.Status == http.StatusUnauthorized {
		return fmt.Sprintf("eclair: %s: HTTP 401: %s: %v: authentication failed, check the API password", e.Method, e.Message, e.kind)
	}
	return fmt.Sprintf("eclair: %s: HTTP %d: %s: %v", e.Method, e.Status, e.Message, e.kind)
}

// Unwrap returns the backend sentinel the status maps to.
func (e *APIError) Unwrap() error { return e.kind }

// notFoundMessage is the body Eclair's completeOrNotFound directive sends
// for an unknown payment hash; a 404 with another text means the route
// itself is unknown (an older or newer Eclair).
const notFoundMessage = "Not found"

// classify maps an HTTP error answer to a sentinel.
func classify(status int, msg string) error {
	switch {
	case status == http.StatusUnauthorized:
		// Wrong or missing password. Not ErrUnavailable: retrying cannot
		// help, and a proxy should report a misconfiguration, not a node
		// that is down.
		return backend.ErrInvalid
	case status == http.StatusNotFound && msg == notFoundMessage:
		return backend.ErrNotFound
	case status == http.StatusNotFound, status == http.StatusMethodNotAllowed:
		return backend.ErrUnsupported
	case status == http.StatusBadRequest:
		return backend.ErrInvalid
	case status == http.StatusRequestTimeout, status >= 500:
		// Eclair answers 500 with a generic text for failures inside the
		// node and 408 when a call outlives its timeout; 502-504 come
		// from proxies in front of a stopped node. All are worth a retry.
		return backend.ErrUnavailable
	}
	return backend.ErrInvalid
}

// transportError maps a failure to reach the API. The caller's own
// cancellation is reported as such; everything else (refused, reset,
// timed out, DNS) means the node cannot be reached now.
func (b *driver) transportError(ctx context.Context, method string, err error) error {
	if errors.Is(ctx.Err(), context.Canceled) {
		return fmt.Errorf("eclair: %s: %w", method, ctx.Err())
	}
	why := "unreachable"
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		why = "connection refused"
	case errors.Is(err, context.DeadlineExceeded), isTimeout(err):
		why = "timed out"
	}
	if basicauth.DialFailed(err) {
		return fmt.Errorf("eclair: %s: %w: %w: %s: %w", method, backend.ErrUnavailable, errNotSent, why, err)
	}
	return fmt.Errorf("eclair: %s: %w: %s: %w", method, backend.ErrUnavailable, why, err)
}

// errNotSent marks a call whose request never reached Eclair (the
// connection could not be made): a payment that did not start.
var errNotSent = errors.New("request not sent")

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
