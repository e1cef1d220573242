package l402_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/l402"
	"github.com/l402kit/l402kit/memory"
)

// A server mints a token for an invoice, and later verifies what the client
// presents: the macaroon with the invoice's preimage.
func Example_mintAndVerify() {
	ctx := context.Background()
	node, _ := memory.New(context.Background(), memory.Config{})
	defer node.Close()

	store := l402.NewMemoryRootKeyStore()
	minter := l402.NewMinter(store, "example")
	verifier := l402.NewVerifier(store)

	// Server: an invoice and a macaroon committing to its payment hash,
	// good for one hour on /paid/.
	inv, _ := node.CreateInvoice(ctx, backend.InvoiceRequest{Amount: backend.Sat(10), Memo: "example"})
	mac, _, err := minter.Mint(ctx, inv.PaymentHash,
		l402.ServicesCaveat(l402.Service{Name: "api"}),
		l402.ValidUntilCaveat("api", time.Now().Add(time.Hour)),
		l402.PathPrefixCaveat("/paid/"))
	if err != nil {
		panic(err)
	}

	// Client: pays the invoice and presents macaroon and preimage.
	pay, _ := node.PayInvoice(ctx, inv.PaymentRequest, backend.PayOptions{})
	header := (&l402.Token{Macaroon: mac, Preimage: pay.Preimage}).Authorization()

	// Server: reads and verifies the header.
	tok, err := l402.ParseAuthorization(header)
	if err != nil {
		panic(err)
	}
	err = verifier.Verify(ctx, tok, l402.Request{Service: "api", Path: "/paid/report", Method: "GET"})
	fmt.Println("on /paid/report:", err)
	err = verifier.Verify(ctx, tok, l402.Request{Service: "api", Path: "/admin", Method: "GET"})
	fmt.Println("on /admin refused as caveat:", errors.Is(err, l402.ErrCaveat))
	// Output:
	// on /paid/report: <nil>
	// on /admin refused as caveat: true
}

// A client fetches a paid resource: Transport pays the 402 challenge
// through any backend.Payer, within MaxPrice, and retries with the token.
func ExampleTransport() {
	node, _ := memory.New(context.Background(), memory.Config{})
	defer node.Close()
	srv := httptest.NewServer(paidHandler(node, backend.Sat(10)))
	defer srv.Close()

	client := &http.Client{Transport: &l402.Transport{
		Payer:    node,
		MaxPrice: backend.Sat(20),
	}}
	resp, err := client.Get(srv.URL + "/paid/report")
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.Status, string(body))
	if r, ok := l402.ReceiptFromResponse(resp); ok {
		fmt.Println("paid", r.Amount, "fee", r.Fee)
	}
	// Output:
	// 200 OK the report
	// paid 10 sat fee 0 sat
}

// paidHandler is the server side of ExampleTransport: a 402 challenge for
// requests without a valid token, the resource for the others.
func paidHandler(node *backend.Backend, price backend.MilliSat) http.Handler {
	store := l402.NewMemoryRootKeyStore()
	minter, verifier := l402.NewMinter(store, ""), l402.NewVerifier(store)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		if tok, err := l402.FromHeader(r.Header); err == nil &&
			verifier.Verify(ctx, tok, l402.Request{Path: r.URL.Path, Method: r.Method}) == nil {
			fmt.Fprint(w, "the report")
			return
		}
		inv, err := node.CreateInvoice(ctx, backend.InvoiceRequest{Amount: price})
		if err != nil {
			http.Error(w, "node unavailable", http.StatusServiceUnavailable)
			return
		}
		mac, _, err := minter.Mint(ctx, inv.PaymentHash, l402.PathPrefixCaveat("/paid/"))
		if err != nil {
			http.Error(w, "mint failed", http.StatusInternalServerError)
			return
		}
		l402.AddChallenges(w.Header(), l402.Challenge{Macaroon: mac, Invoice: inv.PaymentRequest})
		w.WriteHeader(http.StatusPaymentRequired)
	})
}
