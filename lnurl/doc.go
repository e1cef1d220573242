// Package lnurl lets any LNURL-pay service or lightning address stand in for
// a Lightning node, and lets any backend.Backend be reached as a lightning
// address.
//
// The client side (New, Client) is a backend.Backend whose invoices come from
// a LNURL-pay service: it resolves a lightning address (LUD-16) or a bech32
// LNURL (LUD-01) to pay parameters (LUD-06), asks the service's callback for
// an invoice, and refuses any invoice whose amount or description hash is not
// what LUD-06 requires. As wallets do, it does not insist that the
// metadata's identifier names the address asked for: an address on a custom
// domain that redirects to, or serves a copy of, its provider's document
// names the provider's address. Pay parameters are reused only while the
// service's callback stays the same from fetch to fetch; a service that
// binds each callback to one invoice of its own (BTCPay Server) gets a
// fetch per invoice, and a callback that refuses or repeats a payment hash
// is asked once more with fresh parameters. A service that cannot be
// reached or answers 5xx (LNbits: 520), 408 or 429 gives errors wrapping
// backend.ErrUnavailable; refusals wrap backend.ErrInvalid. Lookups and waits go through the LUD-21 verify URL the
// service returned with the invoice; services without it give invoices that
// can be created and paid but whose state this client cannot learn, so
// LookupInvoice and WaitInvoice answer backend.ErrUnsupported for them (a
// paying client's preimage still proves payment). It registers the URL
// schemes
//
//	lnurl://user@domain        a lightning address
//	lnurl:LNURL1...            a bech32 LNURL (lnurl:user@domain works too)
//
// The server side (NewServer, Server) is an http.Handler serving
// /.well-known/lnurlp/<name>, the pay callback and a LUD-21 verify endpoint
// on top of any backend that can commit to a description hash, so a node
// becomes a lightning address.
//
// Encoding is written here (Encode, Decode) on btcutil's bech32 rather than
// taken from github.com/fiatjaf/go-lnurl, because that module cannot be
// fetched through the module proxy this project builds with.
package lnurl
