package conformance

import (
	"context"

	"github.com/l402kit/l402kit/backend"
)

// Harness gives the suite a backend under test and a way to pay it. A harness
// is set up once before Run and torn down by its maker after Run returns;
// cases share it, so each case creates its own invoices.
type Harness interface {
	// Backend is the backend under test.
	Backend() *backend.Backend
	// Payer pays invoices of Backend: on regtest a second node with a
	// channel into the first; in process the memory node itself.
	Payer() backend.Payer
	// Support says which optional behaviours of CreateInvoice the node
	// under test has; cases for the others are skipped by name.
	Support() Support
}

// Support lists behaviours that are not separate interfaces because every
// backend has the method but not every node honours every field.
type Support struct {
	// ZeroAmount: CreateInvoice accepts Amount 0 (any-amount invoice).
	ZeroAmount bool
	// CallerPreimage: CreateInvoice honours InvoiceRequest.Preimage.
	CallerPreimage bool
	// DescriptionHash: CreateInvoice honours InvoiceRequest.DescriptionHash
	// alone. When false, the backend must refuse such a request with
	// ErrUnsupported rather than make an invoice without the hash.
	DescriptionHash bool
	// HashedDescription: CreateInvoice honours
	// InvoiceRequest.HashedDescription (the invoice commits to the text's
	// SHA-256).
	HashedDescription bool
	// Cancel: plain (non-hold) invoices can be canceled through
	// HoldInvoicer.CancelInvoice. Only read when the backend is a
	// HoldInvoicer.
	CancelPlain bool
	// FixedMemo: the node writes its own description (or description hash)
	// into every invoice and ignores InvoiceRequest.Memo, as LNURL-pay does
	// (its invoices commit to the service's metadata). Memo checks are
	// skipped.
	FixedMemo bool
	// FixedExpiry: the node chooses every invoice's lifetime and ignores
	// InvoiceRequest.Expiry, as LNURL-pay does. Cases that need a chosen
	// expiry are skipped; Invoice.ExpiresAt must still match the BOLT11.
	FixedExpiry bool
}

// Restarter is a harness that can take the node under test down and bring
// it back, for the unavailability case. Harnesses without it skip that case.
type Restarter interface {
	// StopNode makes the node unreachable (stops its process or container).
	StopNode(ctx context.Context) error
	// StartNode brings it back and returns once it answers again.
	StartNode(ctx context.Context) error
}

// Reopener is a harness that can open another Backend of the kind under
// test, on the same node or a new one, for the cases that close it.
// Harnesses without it skip those cases.
type Reopener interface {
	// OpenBackend opens a new Backend; the case that asked closes it.
	OpenBackend(ctx context.Context) (*backend.Backend, error)
}

// Quiescer is a harness with a side of its own in the test's process that
// the Backend's calls set to work, such as a wallet service (the nwc
// harnesses) whose client to the node keeps HTTP connections alive. The
// Close case counts the goroutines a closed Backend leaves; a connection
// its calls made the harness's side open is not the Backend's, but its
// goroutines look the same. So before each count that case calls Quiesce,
// which must return once the harness's side keeps nothing idle that it
// started (for example after closing its idle HTTP connections). Quiesce
// must leave the Backend under test alone: what that Backend still runs
// is still counted and reported.
type Quiescer interface {
	Quiesce()
}
