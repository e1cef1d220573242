// Package lnd is the l402kit backend for LND, spoken over LND's gRPC API
// with lnd's own generated clients: lnrpc for invoices and node info,
// invoicesrpc for hold invoices and invoice subscriptions, routerrpc for
// payments.
//
// A Backend implements backend.Backend and every optional ability: Waiter
// (SubscribeSingleInvoice), HoldInvoicer (AddHoldInvoice, SettleInvoice,
// CancelInvoice), Payer (SendPaymentV2) and Informer (GetInfo).
//
// The gRPC connection is made lazily and reconnects by itself, so a node
// that is down answers ErrUnavailable quickly and the same Backend works
// again once the node is back, without being reopened.
//
// Importing the package registers the URL scheme
//
//	lnd://host:port?macaroon=PATH|HEX&tlscert=PATH
//
// with backend.Open. Both secrets also accept env:NAME and file:PATH (see
// backend.ReadSecret); tlscert may be left out for a node whose certificate
// the system trusts.
package lnd
