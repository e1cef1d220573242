package nwc_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/l402kit/l402kit/backend"
	_ "github.com/l402kit/l402kit/nwc" // registers nostr+walletconnect://
)

// Open a wallet by the nostr+walletconnect:// URI it printed, kept in the
// environment since it carries the connection's secret, and see what the
// wallet lets this connection do.
func Example() {
	ctx := context.Background()
	b, err := backend.Open(ctx, os.Getenv("NWC_URI")) // nostr+walletconnect://<pubkey>?relay=wss%3A%2F%2F...&secret=...
	if err != nil {
		log.Fatal(err) // errors.Is(err, backend.ErrUnavailable) when no relay or no wallet answers
	}
	defer b.Close()
	fmt.Println(backend.Abilities(b))
	if b.Supports(backend.AbilityPay) {
		p, err := b.PayInvoice(ctx, os.Getenv("INVOICE"), backend.PayOptions{})
		if err != nil {
			log.Fatal(err) // backend.ErrPaymentUnknown: do not pay again blindly
		}
		fmt.Println("paid, preimage", p.Preimage)
	}
}
