package phoenixd_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/l402kit/l402kit/backend"
	_ "github.com/l402kit/l402kit/phoenixd" // registers phoenixd://
)

// Open phoenixd with the http-password from phoenix.conf, taken from the
// environment, charge for something and wait for the payment.
func Example() {
	ctx := context.Background()
	b, err := backend.Open(ctx, "phoenixd://:env:PHOENIXD_PASSWORD@127.0.0.1:9740")
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()
	inv, err := b.CreateInvoice(ctx, backend.InvoiceRequest{Amount: backend.Sat(100), Memo: "one API call", Expiry: 10 * time.Minute})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("pay", inv.PaymentRequest)
	// Returns on phoenixd's payment_received websocket event (or by
	// polling while the socket is down), or when the invoice expires.
	paid, err := b.WaitInvoice(ctx, inv.PaymentHash)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(paid.State)
}
