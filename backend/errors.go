package backend

import (
	"context"
	"errors"
	"fmt"
)

// Sentinel errors. Every error a *Backend returns matches exactly one of
// them with errors.Is; the node's own text stays in the message, and the
// driver's error (and a context error, when the caller's context ended)
// stays in the chain.
var (
	// ErrNotFound: the node has no invoice (or payment) with that hash.
	ErrNotFound = errors.New("not found")
	// ErrUnsupported: the backend or node cannot do this. Nothing was done.
	ErrUnsupported = errors.New("unsupported")
	// ErrUnavailable: the node cannot be reached, is not ready (down,
	// starting, syncing), did not answer in time, or failed in a way no
	// other sentinel names. Worth retrying later. From PayInvoice it means
	// the payment certainly did not start.
	ErrUnavailable = errors.New("node unavailable")
	// ErrInvalid: the request is malformed, or refused as such by the node,
	// or the configuration is wrong (bad password, macaroon, certificate).
	// Retrying the same request cannot help.
	ErrInvalid = errors.New("invalid request")
	// ErrAlreadyExists: an invoice with that payment hash exists already.
	ErrAlreadyExists = errors.New("already exists")
	// ErrPaymentFailed: the payment ended without paying (no route, refused
	// by the payee, expired, canceled, already paid by this node, over the
	// fee limit). No money moved.
	ErrPaymentFailed = errors.New("payment failed")
	// ErrPaymentUnknown: the payment may have started and its fate is
	// unknown (the node stopped answering, the timeout or the caller's
	// context ended while it was in flight). It may still succeed. Do not
	// retry blindly, which could pay twice: ask the payee or the node later.
	ErrPaymentUnknown = errors.New("payment outcome unknown")
	// ErrClosed: the Backend was closed; no call on it will work again.
	ErrClosed = errors.New("backend closed")
)

// sentinels is every sentinel, in the order used to pick one for an error
// that (wrongly) matches several.
var sentinels = []error{
	ErrPaymentUnknown, ErrClosed, ErrInvalid, ErrUnsupported, ErrNotFound,
	ErrAlreadyExists, ErrPaymentFailed, ErrUnavailable,
}

// Sentinels returns every sentinel error of this package.
func Sentinels() []error { return append([]error(nil), sentinels...) }

// Kind returns the sentinel err matches, or nil when err is nil. An error
// matching none (never one a *Backend returns) gives nil; one matching
// several gives the first in the order of Sentinels.
func Kind(err error) error {
	for _, s := range sentinels {
		if errors.Is(err, s) {
			return s
		}
	}
	return nil
}

// matched lists the sentinels err matches.
func matched(err error) []error {
	var out []error
	for _, s := range sentinels {
		if errors.Is(err, s) {
			out = append(out, s)
		}
	}
	return out
}

// reclassified is a driver error given another sentinel than the ones it
// matched. It keeps the driver's text, and its chain only when that chain
// matches no sentinel, so the result matches exactly one.
type reclassified struct {
	sentinel error
	err      error
	keep     bool // err's chain matches no sentinel and stays reachable
}

func (e *reclassified) Error() string { return e.sentinel.Error() + ": " + e.err.Error() }

func (e *reclassified) Unwrap() []error {
	if e.keep {
		return []error{e.sentinel, e.err}
	}
	out := []error{e.sentinel}
	// A context error says why the call ended; callers test for it.
	for _, c := range []error{context.Canceled, context.DeadlineExceeded} {
		if errors.Is(e.err, c) {
			out = append(out, c)
		}
	}
	return out
}

// as gives err the sentinel s, keeping err's chain where that adds no other
// sentinel.
func as(s, err error) error {
	m := matched(err)
	if len(m) == 1 && m[0] == s {
		return err
	}
	return &reclassified{sentinel: s, err: err, keep: len(m) == 0}
}

// errorf is fmt.Errorf for this package's own refusals.
func errorf(s error, format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{s}, args...)...)
}
