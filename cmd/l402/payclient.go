package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/l402"
	"github.com/l402kit/l402kit/l402/clientstore"
)

// payingClient is what get and mcp pay with: the backend, the store (nil
// with --no-store) and an l402.Transport over both.
type payingClient struct {
	tr    *l402.Transport
	store *clientstore.Store
	b     *backend.Backend

	mu       sync.Mutex
	receipts []l402.Receipt
}

func newPayingClient(ctx context.Context, o *options, logger *slog.Logger, stderr io.Writer) (*payingClient, error) {
	c := &payingClient{}
	if o.noStore && len(o.budgets) > 0 {
		return nil, errors.New("budgets are kept in the store: --no-store cannot hold them")
	}
	var payer backend.Payer = noPayer{}
	if o.backendURL != "" {
		backendURL, err := backend.ReadSecret(o.backendURL)
		if err != nil {
			return nil, err
		}
		b, err := backend.Open(ctx, backendURL)
		if err != nil {
			return nil, err
		}
		if !b.Supports(backend.AbilityPay) {
			b.Close()
			return nil, fmt.Errorf("backend %s cannot pay invoices (abilities: %v)", schemeOf(backendURL), backend.Abilities(b))
		}
		c.b, payer = b, b
	}
	var base http.RoundTripper // nil: http.DefaultTransport
	if o.verbose {
		base = exchangeLog{base: http.DefaultTransport, log: logger}
	}
	c.tr = &l402.Transport{
		Base:      base,
		Payer:     payer,
		MaxPrice:  backend.Sat(o.maxPrice),
		MaxFee:    backend.Sat(o.maxFee),
		Logger:    logger,
		OnPayment: c.onPayment,
		// A slow payment may take the whole fetch's time, not less.
		PayTimeout: o.timeout,
		Schemes:    splitSchemes(o.schemes),
	}
	if !o.noStore {
		s, err := clientstore.Open(o.store, clientstore.Options{Budgets: o.budgets})
		if err != nil {
			c.Close()
			return nil, err
		}
		c.store, c.tr.Tokens, c.tr.Ledger = s, s, s
		// Payments a process left pending when it died: complete them
		// (their tokens were paid for) or release their budget.
		var finder clientstore.PaymentFinder
		if c.b != nil && c.b.As(&finder) {
			if n, err := s.Recover(ctx, finder); err != nil {
				fmt.Fprintf(stderr, "l402: resolving payments left pending: %v\n", err)
			} else if n > 0 {
				fmt.Fprintf(stderr, "l402: resolved %d payment(s) left pending by an earlier run\n", n)
			}
		}
	}
	return c, nil
}

func (c *payingClient) onPayment(_ context.Context, r l402.Receipt) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.receipts = append(c.receipts, r)
}

// paid returns the payments made so far.
func (c *payingClient) paid() []l402.Receipt {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]l402.Receipt(nil), c.receipts...)
}

func (c *payingClient) Close() {
	if c.b != nil {
		c.b.Close()
	}
}

// noPayer stands for the backend in a dry run without one: the dry-run
// Ledger refuses every payment before it would be called.
type noPayer struct{}

func (noPayer) PayInvoice(context.Context, string, backend.PayOptions) (*backend.Payment, error) {
	return nil, fmt.Errorf("%w: no backend configured", backend.ErrUnsupported)
}

// dryRunLedger refuses every payment, saying what it would have been and
// whether the budgets allow it.
type dryRunLedger struct{ store *clientstore.Store }

func (d dryRunLedger) Begin(_ context.Context, p l402.PaymentIntent) (l402.LedgerEntry, error) {
	q := &quote{intent: p}
	if d.store != nil {
		q.over = d.store.Check(p)
	}
	return nil, q
}

// quote is a payment a dry run did not make.
type quote struct {
	intent l402.PaymentIntent
	// over is why the budgets would refuse it, or nil.
	over error
}

func (q *quote) Error() string { return "dry run: " + q.describe() }

func (q *quote) describe() string {
	p := q.intent
	s := fmt.Sprintf("would pay %s", p.Amount)
	if p.MaxFee > 0 {
		s += fmt.Sprintf(" (fee at most %s)", p.MaxFee)
	}
	s += fmt.Sprintf(" to %s for %s (%s, payment hash %s)", p.Host, p.URL, p.Scheme, p.PaymentHash)
	if q.over != nil {
		return s + "; refused: " + q.over.Error()
	}
	return s + "; the budgets allow it"
}

func asDryRun(err error) (*quote, bool) {
	var q *quote
	return q, errors.As(err, &q)
}

// Errors get sorts into exit statuses.
type (
	// httpStatusError: the server answered an error status.
	httpStatusError struct{ msg string }
	// paymentError: a payment failed, or a challenge could not be paid.
	paymentError struct{ err error }
	// networkError: the server could not be reached or the exchange broke.
	networkError struct{ err error }
)

func (e *httpStatusError) Error() string { return e.msg }
func (e *paymentError) Error() string    { return e.err.Error() }
func (e *paymentError) Unwrap() error    { return e.err }
func (e *networkError) Error() string    { return e.err.Error() }
func (e *networkError) Unwrap() error    { return e.err }

// Exit statuses.
const (
	exitOK          = 0
	exitError       = 1
	exitUsage       = 2
	exitOverBudget  = 3
	exitPayment     = 4
	exitHTTPStatus  = 5
	exitNetworkFail = 6
)

// classify sorts an error of http.Client.Do through the Transport.
func classify(err error) error {
	var ce *l402.ChallengeError
	var ue *url.Error
	switch {
	case err == nil, errors.Is(err, l402.ErrOverBudget), errors.Is(err, l402.ErrPriceTooHigh):
		return err
	case errors.As(err, &ce), backend.Kind(err) != nil:
		return &paymentError{err}
	case errors.As(err, &ue):
		return &networkError{err}
	}
	return err
}

func exitCode(err error) int {
	var (
		he *httpStatusError
		pe *paymentError
		ne *networkError
	)
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, l402.ErrOverBudget), errors.Is(err, l402.ErrPriceTooHigh):
		return exitOverBudget
	case errors.As(err, &pe):
		return exitPayment
	case errors.As(err, &he):
		return exitHTTPStatus
	case errors.As(err, &ne):
		return exitNetworkFail
	}
	return exitError
}

// budgetList is the repeatable --budget flag.
type budgetList []l402.Budget

func (b *budgetList) isList() {}

func (b *budgetList) String() string {
	var s []string
	for _, x := range *b {
		s = append(s, x.String())
	}
	return strings.Join(s, ",")
}

func (b *budgetList) Set(v string) error {
	x, err := l402.ParseBudget(v)
	if err != nil {
		return err
	}
	*b = append(*b, x)
	return nil
}
