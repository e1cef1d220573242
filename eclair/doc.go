// Package eclair is the l402kit backend for an Eclair node, over Eclair's
// HTTP API: form-encoded POSTs behind HTTP basic auth (an empty user name and
// the API password), and the /ws websocket for payment events.
//
// It creates invoices (createinvoice), looks them up (getreceivedinfo, whose
// answer carries the BOLT11 string, so no second call is needed), waits for
// payment through payment-received events on /ws, falling back to polling
// while the socket is down, pays invoices (payinvoice, then getsentinfo until
// the payment succeeds or fails) and describes the node (getinfo). It
// makes, lists and disables BOLT12 offers and pays them (createoffer,
// listoffers, disableoffer, listreceivedpayments, payoffer; see offer.go).
// Eclair has no hold invoices, so a Backend is not a backend.HoldInvoicer; a proxy in
// front of it makes tokens single-use by recording spent payment hashes.
//
// Importing the package registers the URL scheme (Scheme, open.go)
//
//	eclair://:PASSWORD@host:port[?tls=1&tlscert=PATH&servername=NAME]
//
// where PASSWORD may be env:NAME or file:PATH (percent-encode the slashes of
// PATH, or pass it as the query parameter password=file:/path), read with
// backend.ReadSecret so it need not appear on a command line. tls=1 talks
// HTTPS, for an API behind a TLS-terminating proxy (default tls=0: Eclair's
// API is plain HTTP); tlscert trusts that certificate besides the system
// roots. timeout=DURATION bounds each call (backend.Open).
//
// Errors wrap backend's sentinels (errors.go): a wrong password is
// ErrInvalid (a configuration mistake that retrying cannot fix), an
// unreachable node or an HTTP 5xx/408 is ErrUnavailable, an unknown payment
// hash is ErrNotFound, a failed payment is ErrPaymentFailed. *APIError
// carries the HTTP status and Eclair's message for callers who want them
// (errors.As).
//
// As: a Backend's As hands out nothing of Eclair's own; the driver is
// unexported and every call goes through the portable API.
package eclair
