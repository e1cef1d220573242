package lnd_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/lightningnetwork/lnd/lnrpc"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/lnd"
)

// Open LND from a URL, secrets from files, and charge 2100 sat.
func Example() {
	ctx := context.Background()
	b, err := backend.Open(ctx, "lnd://127.0.0.1:10009?macaroon=/home/lnd/.lnd/data/chain/bitcoin/mainnet/invoice.macaroon&tlscert=/home/lnd/.lnd/tls.cert")
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()
	inv, err := b.CreateInvoice(ctx, backend.InvoiceRequest{Amount: backend.Sat(2100), Memo: "one API call", Expiry: 10 * time.Minute})
	if err != nil {
		log.Fatal(err) // errors.Is(err, backend.ErrUnavailable) when the node is down
	}
	fmt.Println(inv.PaymentRequest)
}

// The native client stays reachable for calls backend does not cover.
func ExampleBackend_As() {
	ctx := context.Background()
	b, err := lnd.New(ctx, lnd.Config{Address: "127.0.0.1:10009", Macaroon: "env:LND_MACAROON_HEX", TLSCert: "/home/lnd/.lnd/tls.cert"})
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()
	var ln lnrpc.LightningClient
	if b.As(&ln) {
		chans, err := ln.ListChannels(ctx, &lnrpc.ListChannelsRequest{ActiveOnly: true})
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(len(chans.Channels), "active channels")
	}
}
