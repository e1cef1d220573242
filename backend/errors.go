package backend

import "errors"

// Sentinel errors. Adapters wrap them with the node's own message, so callers
// test with errors.Is and still log what the node said.
var (
	// ErrNotFound: the node has no invoice (or payment) with that hash.
	ErrNotFound = errors.New("not found")
	// ErrUnsupported: the backend or node cannot do this.
	ErrUnsupported = errors.New("unsupported")
	// ErrUnavailable: the node cannot be reached or is not ready (down,
	// starting, syncing). Worth retrying later.
	ErrUnavailable = errors.New("node unavailable")
	// ErrInvalid: the request is malformed or refused as such by the node.
	ErrInvalid = errors.New("invalid request")
	// ErrAlreadyExists: an invoice with that payment hash exists already.
	ErrAlreadyExists = errors.New("already exists")
	// ErrPaymentFailed: a payment could not be completed (no route,
	// canceled, expired, already paid, over the fee limit).
	ErrPaymentFailed = errors.New("payment failed")
)
