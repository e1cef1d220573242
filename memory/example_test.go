package memory_test

import (
	"context"
	"fmt"
	"log"

	"github.com/l402kit/l402kit/backend"
	_ "github.com/l402kit/l402kit/memory" // registers memory://
)

// Open the embedded node by URL, charge for something and pay it: the
// memory node signs real BOLT11 invoices and pays its own, which makes it
// the backend for demos, tests and development.
func Example() {
	ctx := context.Background()
	b, err := backend.Open(ctx, "memory://")
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()

	inv, err := b.CreateInvoice(ctx, backend.InvoiceRequest{Amount: backend.Sat(21), Memo: "one API call"})
	if err != nil {
		log.Fatal(err)
	}
	paid, err := b.PayInvoice(ctx, inv.PaymentRequest, backend.PayOptions{})
	if err != nil {
		log.Fatal(err)
	}
	got, err := b.LookupInvoice(ctx, inv.PaymentHash)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(got.State, got.AmountReceived, paid.Preimage.Matches(inv.PaymentHash))
	// Output: settled 21 sat true
}
