// Package lnd is the l402kit backend for LND, spoken over LND's REST API:
// JSON over HTTPS, the macaroon in a header, LND's TLS certificate pinned.
// It needs neither lnd's Go module nor gRPC or protobuf, so importing it
// adds no replace lines to a program's go.mod.
//
// A Backend implements backend.Backend and every invoice ability: Waiter
// (the invoice subscription stream, GET /v2/invoices/subscribe), HoldInvoicer
// (/v2/invoices/hodl, settle, cancel), Payer (the payment stream of
// POST /v2/router/send, routerrpc's SendPaymentV2, with fee limit and
// timeout) and Informer (/v1/getinfo). It has no offer abilities
// (backend.Offerer, backend.OfferPayer): LND has no native BOLT12, so
// Supports(backend.AbilityOffer) is false and the offer methods of the
// Backend answer ErrUnsupported.
//
// Connections are made when a call needs one and reused while they last, so
// a node that is down answers ErrUnavailable quickly and the same Backend
// works again once the node is back, without being reopened. Every call has
// a deadline; streams end with their context and with Close.
//
// Importing the package registers the URL scheme
//
//	lnd://host:port?macaroon=PATH|HEX&tlscert=PATH
//
// with backend.Open, where host:port is LND's REST listener (restlisten,
// 8080 by default), not its gRPC port (10009): a URL naming the gRPC port
// fails with ErrInvalid and says so. Both secrets also accept env:NAME and
// file:PATH (see backend.ReadSecret); tlscert may be left out for a node
// whose certificate the system trusts. LND must serve REST (it does unless
// started with --norest) over TLS (the default; --no-rest-tls is not
// supported).
package lnd
