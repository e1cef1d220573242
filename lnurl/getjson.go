package lnurl

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/l402kit/l402kit/backend"
)

// maxBody bounds every response read: LUD-06 metadata may carry a 100 kB
// image in base64 (136536 characters), so 1 MiB leaves room without letting
// a service make us buffer without end.
const maxBody = 1 << 20

// redirectRefused is a redirect the Client's own HTTP client would not
// follow: a refusal, not an outage.
type redirectRefused struct{ err error }

func (e *redirectRefused) Error() string { return e.err.Error() }

// serviceError is a {"status":"ERROR","reason":...} answer.
type serviceError struct {
	what     string // which endpoint answered
	reason   string
	sentinel error
}

func (e *serviceError) Error() string {
	return fmt.Sprintf("lnurl: %v: %s answered ERROR: %s", e.sentinel, e.what, e.reason)
}

func (e *serviceError) Unwrap() error { return e.sentinel }

// getJSON GETs rawURL and decodes its JSON answer into dst. The error wraps
// ErrUnavailable when the service cannot be reached, times out or answers
// with a status that says "not now": any 5xx (LNbits answers 520 when its
// funding source cannot make an invoice), 408 or 429. Status codes carry no
// meaning in LNURL (LUD-01), so they are read only to tell a retryable
// failure from a refusal. A {"status":"ERROR"} answer is a *serviceError
// wrapping ErrInvalid (or ErrUnavailable with those codes); anything else
// undecodable is ErrInvalid.
func (c *Client) getJSON(ctx context.Context, rawURL, what string, dst any) error {
	rctx, cancel := context.WithTimeout(ctx, c.cfg.CallTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return fmt.Errorf("lnurl: %w: %s: %v", backend.ErrInvalid, what, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		var refused *redirectRefused
		switch {
		case ctx.Err() != nil:
			return fmt.Errorf("lnurl: %s: %w", what, ctx.Err())
		case errors.As(err, &refused):
			return fmt.Errorf("lnurl: %w: %s: %v", backend.ErrInvalid, what, refused.err)
		}
		return fmt.Errorf("lnurl: %w: %s: %v", backend.ErrUnavailable, what, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("lnurl: %s: %w", what, ctx.Err())
		}
		return fmt.Errorf("lnurl: %w: %s: reading answer: %v", backend.ErrUnavailable, what, err)
	}
	retryable := resp.StatusCode >= 500 || resp.StatusCode == http.StatusRequestTimeout ||
		resp.StatusCode == http.StatusTooManyRequests
	if len(body) > maxBody {
		return fmt.Errorf("lnurl: %w: %s answered more than %d bytes", backend.ErrInvalid, what, maxBody)
	}
	var st statusResponse
	if err := json.Unmarshal(body, &st); err != nil {
		sentinel := backend.ErrInvalid
		if retryable {
			sentinel = backend.ErrUnavailable
		}
		return fmt.Errorf("lnurl: %w: %s answered HTTP %d with no JSON object: %q", sentinel, what, resp.StatusCode, snippet(body))
	}
	if strings.EqualFold(st.Status, "ERROR") {
		se := &serviceError{what: what, reason: st.Reason, sentinel: backend.ErrInvalid}
		if retryable {
			se.sentinel = backend.ErrUnavailable
		}
		if se.reason == "" {
			se.reason = "(no reason given)"
		}
		return se
	}
	if retryable {
		// Whatever it holds ({"detail": ..., "status": "pending"} from
		// LNbits), it is not the document asked for.
		return fmt.Errorf("lnurl: %w: %s answered HTTP %d: %q", backend.ErrUnavailable, what, resp.StatusCode, snippet(body))
	}
	if err := json.Unmarshal(body, dst); err != nil {
		return fmt.Errorf("lnurl: %w: %s answered HTTP %d with JSON this client cannot read: %v", backend.ErrInvalid, what, resp.StatusCode, err)
	}
	return nil
}

// snippet shortens a body for an error message.
func snippet(b []byte) string {
	b = bytes.TrimSpace(b)
	if len(b) > 120 {
		return string(b[:120]) + "..."
	}
	return string(b)
}
