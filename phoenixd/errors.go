package phoenixd

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/internal/plumbing/basicauth"
)

// transportError classifies a failure to get an answer. A caller's cancel
// stays a plain context error; everything else means the node could not be
// reached in time: ErrUnavailable. For /payinvoice, a failure after the
// request may have reached phoenixd leaves the payment's outcome unknown:
// ErrPaymentUnknown, which no caller retries blindly.
func (c *driver) transportError(ctx context.Context, path string, err error) error {
	if errors.Is(err, context.Canceled) && ctx.Err() == context.Canceled {
		return fmt.Errorf("phoenixd: %s: %w", path, context.Canceled)
	}
	if (path == "/payinvoice" || path == "/payoffer") && !basicauth.DialFailed(err) {
		return fmt.Errorf("phoenixd: %w: payinvoice: no answer, the payment's outcome is unknown (check GET /payments/outgoingbyhash): %w", backend.ErrPaymentUnknown, err)
	}
	return fmt.Errorf("phoenixd: %w: %s: %w", backend.ErrUnavailable, path, err)
}

// statusError maps phoenixd's non-200 answers, whose bodies are plain text
// (Api.kt's StatusPages): 401 "Invalid authentication (...)", 404 "Not found"
// for an unknown payment or "Unknown endpoint (check api doc)" for an unknown
// route, 405 "Invalid http method (...)", 400 with the parameter problem, 500
// with an exception's message.
func statusError(path string, status int, body []byte) error {
	text := snippet(body)
	var sentinel error
	hint := ""
	switch {
	case status == http.StatusUnauthorized:
		sentinel = backend.ErrInvalid
		hint = " (wrong password"
		if path == "/payinvoice" {
			hint += ", or the limited-access password, which cannot pay"
		}
		hint += ")"
	case status == http.StatusNotFound && text == "Not found":
		sentinel = backend.ErrNotFound
	case status == http.StatusNotFound:
		// "Unknown endpoint (check api doc)" from an older phoenixd, or a
		// reverse proxy's page for a wrong path prefix: never a missing
		// invoice, which would make every lookup look like ErrNotFound.
		sentinel = backend.ErrUnsupported
		hint = " (phoenixd or a proxy in front of it does not know this route: check the URL's path and phoenixd's version)"
	case status == http.StatusMethodNotAllowed:
		sentinel = backend.ErrUnsupported
	case status >= 400 && status < 500:
		sentinel = backend.ErrInvalid
	default:
		sentinel = backend.ErrUnavailable
	}
	return fmt.Errorf("phoenixd: %w: %s: HTTP %d%s: %q", sentinel, path, status, hint, text)
}

func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}
