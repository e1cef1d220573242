package lnurl_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/lnurl"
	"github.com/l402kit/l402kit/memory"
)

// A node becomes a lightning address with a Server; any program then takes
// invoices from that address with a Client, as from a node of its own.
func Example() {
	node, err := memory.New(context.Background(), memory.Config{})
	if err != nil {
		panic(err)
	}
	defer node.Close()

	// In production: Domain "example.com", served at https://example.com.
	var srv *lnurl.Server
	hs := httptest.NewServer(httpHandler(func() *lnurl.Server { return srv }))
	defer hs.Close()
	host := strings.TrimPrefix(hs.URL, "http://")
	srv, err = lnurl.NewServer(lnurl.ServerConfig{Backend: node, Domain: host, BaseURL: hs.URL, Names: []string{"shop"}})
	if err != nil {
		panic(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := lnurl.New(ctx, lnurl.Config{Address: srv.Address("shop")})
	if err != nil {
		panic(err)
	}
	defer c.Close()
	inv, err := c.CreateInvoice(ctx, backend.InvoiceRequest{Amount: backend.Sat(21)})
	if err != nil {
		panic(err)
	}
	fmt.Println("invoice for", inv.Amount)

	// Someone pays; the client learns it through the LUD-21 verify URL.
	if _, err := node.PayInvoice(ctx, inv.PaymentRequest, backend.PayOptions{}); err != nil {
		panic(err)
	}
	got, err := c.WaitInvoice(ctx, inv.PaymentHash)
	if err != nil {
		panic(err)
	}
	fmt.Println("settled:", got.State == backend.StateSettled, "preimage checks:", got.Preimage.Matches(inv.PaymentHash))
	// Output:
	// invoice for 21 sat
	// settled: true preimage checks: true
}

// httpHandler defers to the Server once it exists: its URLs name the
// listener's address, known only after listening.
func httpHandler(get func() *lnurl.Server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { get().ServeHTTP(w, r) })
}
