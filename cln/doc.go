// Package cln is the l402kit backend for Core Lightning (v23.08 and later, v27.03 included):
// JSON-RPC 2.0 on lightningd's unix socket, or CLNRest over HTTPS with a
// rune for a node on another machine.
//
//	import _ "github.com/l402kit/l402kit/cln"
//
//	b, err := backend.Open(ctx, "cln:///home/me/.lightning/bitcoin/lightning-rpc")
//	b, err := backend.Open(ctx, "clnrest://node.example:3010?rune=env:CLN_RUNE&tlscert=/path/ca.pem")
//
// URL query parameters:
//
//	rune=...        CLNRest only, required: the rune itself, env:NAME or file:PATH
//	tlscert=PATH    CLNRest: trust this certificate (CLNRest's ca.pem) instead of the system roots
//	servername=NAME CLNRest: verify the certificate for NAME (CLNRest's own names "cln" and "localhost")
//	insecure=1      CLNRest: accept any certificate (tests only)
//	tls=0           CLNRest: plain HTTP, for clnrest-protocol=http and test fakes
//	timeout=30s     bound for each call whose context has none (not waitinvoice or pay)
//
// Methods called: getinfo and help (at open and for Info), invoice (with
// deschashonly for InvoiceRequest.HashedDescription), listinvoices,
// waitinvoice, listpays and xpay or pay; with the hold plugin also
// signinvoice and the plugin's methods below. A rune for CLNRest must allow
// them.
//
// Paying: xpay where the node has it (v24.11 and later; v26.06 deprecates
// pay and v27.03 removes it), pay on older nodes or where the xpay plugin
// is disabled. New asks help for xpay, then pay, so the node's own command
// list decides, not a setting. listpays comes first: a complete payment of
// the invoice is refused (xpay would answer 219, pay the earlier success
// again), a pending one is ErrPaymentUnknown. xpay's 203 (permanent
// failure at the destination), 205 (no route), 207 (expired) and 219 are
// ErrPaymentFailed. Its 209 (other; among them "Timed out" with parts still
// in flight, since xpay gives up without waiting for them), -1, a plugin
// error, pay's 200, and a connection lost mid-call are looked up in
// listpays: a complete payment is the success, one with a part in flight
// ErrPaymentUnknown, a failed or unrecorded one ErrPaymentFailed (or
// ErrPaymentUnknown when the node never answered). Nothing is sent twice.
// retry_for is PayOptions.Timeout in whole seconds and maxfee is
// PayOptions.MaxFee.
//
// BOLT12 offers (backend.Offerer and backend.OfferPayer) where help knows
// offer, listoffers, disableoffer and fetchinvoice (by default since
// v24.11) and the node can pay: CreateOffer is offer (amount "any" or
// msat, description, issuer, absolute_expiry), ListOffers listoffers,
// DisableOffer disableoffer ("Unknown offer" is ErrNotFound, an offer
// already disabled no error), OfferPayments listinvoices by offer_id (the
// paid ones), PayOffer fetchinvoice (amount_msat for an any-amount offer,
// payer_note, timeout) and then xpay (or pay) of the BOLT12 invoice, whose
// amount must be the one asked; fetchinvoice's failures (1002-1005) pay
// nothing and are ErrPaymentFailed. listinvoices' invoices made for offers
// (bolt12 instead of bolt11) read like the others.
//
// A plain invoice that commits to a description hash needs the description
// itself (InvoiceRequest.HashedDescription): lightningd hashes it
// (deschashonly) and refuses to store a caller-encoded invoice that has
// only the hash (createinvoice: "Missing description in invoice"), so a
// request with only DescriptionHash is ErrUnsupported. Hold invoices take
// either, since signinvoice accepts an invoice with only the hash.
//
// The JSON is decoded by this package's own small types, written from Core
// Lightning's doc/schemas (amounts are integers in millisatoshis since
// v23; the older "1000msat" strings decode too). glightning is not used:
// the Go module proxy does not serve it (403) and it is unmaintained, written
// for the string amounts that Core Lightning no longer sends.
//
// Hold invoices need BoltzExchange/hold, the hold invoice plugin Boltz runs
// in production (the older daywalker90/holdinvoice wraps lightningd's own
// invoice command, so the node always knows the preimage, which is not a
// hold invoice in backend's sense). New and Open ask help for
// injectholdinvoice, listholdinvoices, settleholdinvoice and
// cancelholdinvoice; when all are there the Backend has the hold ability
// (its driver implements backend.HoldInvoicer), otherwise it has not. The
// plugin's own holdinvoice RPC
// takes only a hash and an amount, so CreateHoldInvoice encodes the BOLT11
// itself (amount, memo or description hash, expiry, payment secret,
// min_final_cltv_expiry 80, no route hints), has lightningd sign it
// (signinvoice) and gives it to the plugin (injectholdinvoice). Hold
// invoices are not in lightningd's invoice table: LookupInvoice falls back
// to listholdinvoices, and WaitInvoice polls it, since the plugin streams
// updates only over its own gRPC.
//
// Error codes map to backend's sentinels: 900/901 (label or preimage exists)
// to ErrAlreadyExists, 905 and "not found" to ErrNotFound, pay's 2xx codes
// to ErrPaymentFailed, -32601 (unknown command) to ErrUnsupported, -32602
// and rune refusals (1501-1503) to ErrInvalid, a socket or port that does
// not answer and -4/-5 (plugin died, lightningd shutting down) to
// ErrUnavailable. The *RPCError stays in the chain for errors.As.
//
// Core Lightning has no canceled state: an unpaid invoice past its expiry is
// "expired", which reads here as StateOpen with Invoice.Expired true.
package cln
