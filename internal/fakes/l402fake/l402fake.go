// Package l402fake holds stand-ins for L402 servers that this project's
// paying client must pay but that cannot run in its tests: ngx_l402 (the
// nginx module) and Lightning Labs' Aperture. Each is an http.Handler that
// charges through a Lightning node (the memory node in tests) and speaks
// its server's wire format as read from that server's source; what was
// read, at which commit, is listed on each type and in
// l402/testdata/README.md.
//
// The fakes are written from those sources, not from this project's l402
// package, which they do not import: a client bug shared with the package
// it tests would otherwise go unseen.
//
// Neither server knows this project's in-flight form "L402 <macaroon>:"
// (the macaroon without its preimage), and neither advertises it: a fake
// that receives it fails the test that drove it.
package l402fake

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"net/http"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/l402kit/l402kit/backend"
)

// Invoicer is what a fake needs of its Lightning node.
type Invoicer interface {
	CreateInvoice(ctx context.Context, req backend.InvoiceRequest) (*backend.Invoice, error)
	LookupInvoice(ctx context.Context, hash backend.PaymentHash) (*backend.Invoice, error)
}

// Stats counts what a fake saw.
type Stats struct {
	// Challenges is the number of 402 answers with a fresh invoice.
	Challenges int
	// Served is the number of requests passed to the content handler.
	Served int
	// Refused is the number of tokens refused.
	Refused int
	// InFlight is the number of in-flight presentations (macaroon without
	// preimage) received; the test has failed when it is not zero.
	InFlight int
	// Tokens lists "METHOD PATH" of every request that carried a token,
	// in order.
	Tokens []string
}

// counter is the part of a fake that counts and checks requests.
type counter struct {
	t   testing.TB
	mu  sync.Mutex
	st  Stats
	inv []backend.PaymentHash
}

func (c *counter) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.st
	st.Tokens = append([]string(nil), c.st.Tokens...)
	return st
}

// Invoices returns the payment hashes of every invoice the fake issued.
func (c *counter) Invoices() []backend.PaymentHash {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]backend.PaymentHash(nil), c.inv...)
}

func (c *counter) add(f func(*Stats)) {
	c.mu.Lock()
	f(&c.st)
	c.mu.Unlock()
}

// inFlightForm matches this project's in-flight presentation: a scheme, a
// macaroon and a colon with nothing after it.
var inFlightForm = regexp.MustCompile(`^\s*(?i:L402|LSAT)\s+[A-Za-z0-9+/_=-]+:\s*$`)

// checkInFlight fails the test when r carries the in-flight form, which
// neither server advertises.
func (c *counter) checkInFlight(server string, r *http.Request) bool {
	for _, v := range r.Header.Values("Authorization") {
		if inFlightForm.MatchString(v) {
			c.add(func(s *Stats) { s.InFlight++ })
			c.t.Errorf("%s fake: %s %s carried the in-flight form %q, which this server never advertised",
				server, r.Method, r.URL.Path, v[:min(len(v), 24)]+"...")
			return true
		}
	}
	return false
}

func (c *counter) sawToken(r *http.Request) {
	c.add(func(s *Stats) { s.Tokens = append(s.Tokens, r.Method+" "+r.URL.Path) })
}

// invoice makes an invoice on node. With settleAfter, it is a hold invoice
// that the fake settles that long after the payment arrives, so that the
// payer's payment takes that long, as one over several hops does.
func (c *counter) invoice(ctx context.Context, node Invoicer, amount backend.MilliSat, memo string, settleAfter time.Duration) (*backend.Invoice, error) {
	req := backend.InvoiceRequest{Amount: amount, Memo: memo}
	var (
		inv *backend.Invoice
		err error
	)
	if settleAfter > 0 {
		inv, err = slowInvoice(ctx, node, req, settleAfter)
	} else {
		inv, err = node.CreateInvoice(ctx, req)
	}
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.inv = append(c.inv, inv.PaymentHash)
	c.mu.Unlock()
	return inv, nil
}

// slowInvoice makes a hold invoice on node and settles it settleAfter after
// it is paid, within the invoice's lifetime.
func slowInvoice(ctx context.Context, node Invoicer, req backend.InvoiceRequest, settleAfter time.Duration) (*backend.Invoice, error) {
	holder, ok := node.(interface {
		backend.HoldInvoicer
		backend.Waiter
	})
	if !ok {
		return nil, fmt.Errorf("l402fake: a slow settlement needs a node with hold invoices and waits")
	}
	var pre backend.Preimage
	copy(pre[:], randomKey())
	inv, err := holder.CreateHoldInvoice(ctx, pre.Hash(), req)
	if err != nil {
		return nil, err
	}
	go func() {
		wctx, cancel := context.WithDeadline(context.Background(), inv.ExpiresAt)
		defer cancel()
		got, err := holder.WaitInvoice(wctx, inv.PaymentHash)
		if err != nil || got.State != backend.StateHeld {
			return
		}
		select {
		case <-time.After(settleAfter):
		case <-wctx.Done():
			return
		}
		_ = holder.SettleInvoice(wctx, pre)
	}()
	return inv, nil
}

// settled reports whether the invoice paying hash is settled on node.
func settled(ctx context.Context, node Invoicer, hash [32]byte) bool {
	inv, err := node.LookupInvoice(ctx, backend.PaymentHash(hash))
	return err == nil && inv.State == backend.StateSettled
}

func randomKey() []byte {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return k
}

func now(f func() time.Time) time.Time {
	if f != nil {
		return f()
	}
	return time.Now()
}

func defaultContent(server string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s content for %s %s\n", server, r.Method, r.URL.Path)
	}
}

func hashOf(b []byte) [32]byte { return sha256.Sum256(b) }
