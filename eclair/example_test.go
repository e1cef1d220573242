package eclair_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/l402kit/l402kit/backend"
	_ "github.com/l402kit/l402kit/eclair" // registers eclair://
)

// Open an Eclair node from configuration, with the API password taken from
// an environment variable, then charge for something and wait for payment.
func Example() {
	ctx := context.Background()
	b, err := backend.Open(ctx, "eclair://:env:ECLAIR_API_PASSWORD@127.0.0.1:8080")
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()

	inv, err := b.CreateInvoice(ctx, backend.InvoiceRequest{Amount: backend.Sat(100), Memo: "one API call", Expiry: 10 * time.Minute})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("pay", inv.PaymentRequest)

	// Returns on the websocket's payment-received event (or by polling
	// while the socket is down), or when the invoice expires.
	paid, err := b.WaitInvoice(ctx, inv.PaymentHash)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(paid.State)
}
