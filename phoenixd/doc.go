// Package phoenixd is the l402kit adapter for ACINQ's phoenixd, over its HTTP
// API (basic auth, form-encoded POSTs, JSON answers) and its /websocket event
// stream. It was written against phoenixd 0.8.0 (source commit
// de6f8ae81c01534fa9ffdf0934385fd4a5ad9f9f, Api.kt and json/JsonSerializers.kt)
// and the API reference at phoenix.acinq.co/server/api ("up-to-date for
// version 0.8.0"); testdata/ keeps the documented examples it decodes.
//
// What phoenixd offers and what it does not, and how this adapter maps it:
//
//   - Invoices: POST /createinvoice and GET /payments/incoming/{paymentHash}.
//     Any-amount invoices (amountSat left out) and description hashes are
//     supported. phoenixd always picks the preimage itself, so a request with
//     InvoiceRequest.Preimage is refused with backend.ErrUnsupported. It has
//     no hold invoices and cannot cancel an invoice, so a *Client is not a
//     backend.HoldInvoicer; l402kit's proxy then records spent payment hashes
//     itself for single-use tokens. phoenixd limits descriptions to 128
//     characters (BOLT11 allows 639): longer memos are backend.ErrInvalid.
//   - Units: phoenixd speaks whole satoshis (amountSat, receivedSat, ...),
//     while backend amounts are millisatoshis. An invoice or payment amount
//     that is not a whole number of satoshis is refused with
//     backend.ErrInvalid rather than rounded, because rounding would ask for
//     (or pay) a different amount than the caller named. Amounts phoenixd
//     reports are whole satoshis rounded down by phoenixd (it truncates), so
//     Invoice.AmountReceived is a multiple of 1000 msat; Invoice.Amount comes
//     from the BOLT11 string and is exact.
//   - Waiting: WaitInvoice listens to payment_received events on the
//     /websocket stream, shared by every waiter of a Client, and looks the
//     invoice up on each event for its hash. While the socket is down (it is
//     redialled with backoff) waiters poll every Config.PollInterval, and each
//     waiter looks up once more after every reconnection, so no payment is
//     missed across a drop. An open invoice that reaches its expiry ends the
//     wait, as an expired phoenixd invoice can no longer be paid.
//   - Offers: POST /payoffer (offer, amountSat, message) fetches the
//     offer's invoice and pays it, answering as /payinvoice does, so the
//     driver is a backend.OfferPayer. phoenixd has one offer of its own
//     (GET /getoffer) and cannot list or disable offers, so it is no
//     backend.Offerer.
//   - Paying: POST /payinvoice returns the preimage. phoenixd takes no fee
//     limit (its fee is set by its LSP policy, 0.4% at the time of writing),
//     so PayOptions.MaxFee cannot be enforced before paying: a fee above it is
//     logged, and the payment is still returned, since the money is spent and
//     the preimage is the proof. phoenixd answers a failed payment with HTTP
//     200 and {"paymentHash", "reason"}; that is backend.ErrPaymentFailed. A
//     payment whose HTTP answer never arrives (timeout) has an unknown
//     outcome; that is ErrPaymentFailed too, with a message saying so, and
//     never ErrUnavailable, which callers treat as safe to retry.
//   - Info: GET /getinfo gives node id, chain and block height. phoenixd has
//     no alias, so NodeInfo.Alias is empty; Synced means phoenixd knows a
//     block height.
//   - Webhooks: VerifyWebhook and WebhookHandler check phoenixd's
//     X-Phoenix-Signature header, for services that prefer webhooks to the
//     websocket.
//
// Errors: a refused password (HTTP 401) is backend.ErrInvalid, not
// ErrUnavailable: retrying cannot fix a wrong password, and reporting the node
// as down would hide a configuration mistake behind "try again later". The
// limited-access password (http-password-limited-access) is also refused with
// 401 by /payinvoice, and the message says so. A refused connection, a DNS
// failure or a timeout is backend.ErrUnavailable, returned as soon as the
// dial fails. An unknown payment hash (404 "Not found") is backend.ErrNotFound;
// any other 404 (phoenixd's "Unknown endpoint", or a reverse proxy's page for
// a wrong path) is backend.ErrUnsupported.
// 400 is ErrInvalid; 5xx is ErrUnavailable.
//
// The URL form, registered with backend.Open:
//
//	phoenixd://:PASSWORD@host:9740
//	phoenixd://:env:PHOENIXD_PASSWORD@host:9740         (from the environment)
//	phoenixd://host:9740?password=file:/etc/phoenixd/pw  (from a file)
//	phoenixd://:PASSWORD@host:443/phoenixd?tls=1         (https, path prefix)
//
// The password may be env:NAME or file:PATH (see backend.ReadSecret); a file
// path holds slashes, which a URL's user-info cannot, so give it as the
// password query parameter. tls=1 selects https and wss; tlscert=PATH trusts
// that PEM certificate in addition to the system roots.
//
// As: a Backend's As hands out nothing of phoenixd's own; the driver is
// unexported and every call goes through the portable API.
package phoenixd
