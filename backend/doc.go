// Package backend is the portable face of a Lightning node for services that
// charge with invoices: create and look up invoices, and, where the node can,
// wait for settlement, hold invoices until the service decides, pay, and
// describe itself.
//
// Users hold a *Backend; adapters (lnd, cln, eclair, phoenixd, lnurl,
// memory) implement the small Driver interface under it, as gocloud's
// blob.Bucket sits over driver.Bucket and database/sql's DB over
// driver.Conn. The Backend does once what every adapter would otherwise
// repeat: it validates requests, fills defaults (expiry, call and pay
// deadlines), trims "lightning:" prefixes, applies the pay amount and fee
// rules, checks what drivers return, ends every call after Close with
// ErrClosed, and gives every error exactly one sentinel of this package.
//
// The optional abilities (Waiter, HoldInvoicer, Payer, FeeLimiter,
// Informer, Pinger) are separate small interfaces a driver implements, found
// by type assertion as in database/sql/driver, so no capability flag can
// lie. Backend.Supports and Abilities report them; Backend's methods for an
// ability its driver lacks answer ErrUnsupported (WaitInvoice polls
// instead).
//
// Adapters register a URL scheme in their init function, so a program that
// imports them can open a backend from configuration:
//
//	import _ "github.com/l402kit/l402kit/lnd"
//
//	b, err := backend.Open(ctx, "lnd://127.0.0.1:8080?macaroon=/path/invoice.macaroon&tlscert=/path/tls.cert")
package backend
