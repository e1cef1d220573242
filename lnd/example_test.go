package lnd_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"net/url"
	"time"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/lnd"
)

// Open LND from a URL naming its REST listener, secrets from files, and
// charge 2100 sat.
func Example() {
	ctx := context.Background()
	b, err := backend.Open(ctx, "lnd://127.0.0.1:8080?macaroon=/home/lnd/.lnd/data/chain/bitcoin/mainnet/invoice.macaroon&tlscert=/home/lnd/.lnd/tls.cert")
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

// The REST client stays reachable for calls backend does not cover: an
// http.Client that trusts the node and sends the macaroon, and the base URL.
func ExampleBackend_As() {
	ctx := context.Background()
	b, err := lnd.New(ctx, lnd.Config{Address: "127.0.0.1:8080", Macaroon: "env:LND_MACAROON_HEX", TLSCert: "/home/lnd/.lnd/tls.cert"})
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()
	var hc *http.Client
	var base url.URL
	if b.As(&hc) && b.As(&base) {
		resp, err := hc.Get(base.JoinPath("/v1/channels").String() + "?active_only=true")
		if err != nil {
			log.Fatal(err)
		}
		defer resp.Body.Close()
		var r struct {
			Channels []json.RawMessage `json:"channels"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
			log.Fatal(err)
		}
		fmt.Println(len(r.Channels), "active channels")
	}
}
