// Package backend is the portable face of a Lightning node for services that
// charge with invoices: create and look up invoices, and, where the node can,
// wait for settlement, hold invoices until the service decides, pay, and
// describe itself.
//
// Every adapter (lnd, cln, eclair, phoenixd, lnurl, memory) implements
// Backend. The optional abilities (Waiter, HoldInvoicer, Payer, Informer) are
// separate small interfaces that a caller discovers by type assertion, as in
// database/sql/driver: a backend never advertises an ability it lacks, so no
// capability flag can lie. Abilities lists them.
//
// Errors from every adapter wrap one of the sentinels of this package
// (ErrNotFound, ErrUnavailable, ...) so callers match them with errors.Is
// whatever node sits underneath; the node's own text stays in the message.
//
// Adapters register a URL scheme in their init function, so a program that
// imports them can open a backend from configuration:
//
//	import _ "github.com/l402kit/l402kit/lnd"
//
//	b, err := backend.Open(ctx, "lnd://127.0.0.1:10009?macaroon=/path/invoice.macaroon&tlscert=/path/tls.cert")
package backend
