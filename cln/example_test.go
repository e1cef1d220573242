package cln_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/l402kit/l402kit/backend"
	_ "github.com/l402kit/l402kit/cln" // registers cln:// and clnrest://
)

// Open Core Lightning through lightningd's JSON-RPC socket, on the node's
// own machine, and charge for something.
func Example() {
	ctx := context.Background()
	b, err := backend.Open(ctx, "cln:///home/cln/.lightning/bitcoin/lightning-rpc")
	if err != nil {
		log.Fatal(err) // errors.Is(err, backend.ErrUnavailable) when the socket does not answer
	}
	defer b.Close()
	inv, err := b.CreateInvoice(ctx, backend.InvoiceRequest{Amount: backend.Sat(100), Memo: "one API call", Expiry: 10 * time.Minute})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(inv.PaymentRequest)
}

// Open a Core Lightning node on another machine through CLNRest, with a
// rune read from the environment and the node's CA certificate trusted.
// Hold invoices are offered when the node runs the BoltzExchange hold
// plugin.
func Example_clnrest() {
	ctx := context.Background()
	b, err := backend.Open(ctx, "clnrest://node.example:3010?rune=env:CLN_RUNE&tlscert=/etc/l402/cln-ca.pem")
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()
	fmt.Println(b.Supports(backend.AbilityHold))
}
