// Package nwc is Nostr Wallet Connect (NIP-47) for l402kit, both ways: a
// wallet's nostr+walletconnect:// URI as a backend (New, or backend.Open with
// the URI as wallets print it), and any *backend.Backend served as an NWC
// wallet (NewService, Service.Connect) with per-connection method
// permissions and spending limits. It follows nostr-protocol/nips 47.md at
// commit db5fe3de8c5d1443b634c9bbf66ecb004f337057 (July 2026) and uses
// github.com/nbd-wtf/go-nostr for events, Schnorr signatures, NIP-44 and
// NIP-04.
//
// The URL form, registered with backend.Open:
//
//	nostr+walletconnect://<wallet pubkey hex>?relay=wss%3A%2F%2Frelay.example&relay=...&secret=<hex>[&lud16=name@domain]
//
// secret may be env:NAME or file:PATH (backend.ReadSecret), so it need not
// sit on a command line; timeout= is read by backend.Open.
//
// The client: requests are kind 23194 events to the wallet, each with an
// expiration tag (the call's deadline), answers kind 23195 matched by their
// e tag and accepted only when signed by the wallet's key; a second answer,
// or an answer to a request this client never sent, is logged and dropped.
// Notifications are kind 23197 (NIP-44) or 23196 (NIP-04). Encryption is
// negotiated from the info event (kind 13194): NIP-44 v2 when its
// encryption tag lists nip44_v2, NIP-04 only when it has no encryption tag
// (or lists only nip04).
//
// Abilities are what the wallet grants this connection, read once by New
// from the info event and, when offered, get_info (whose method list is the
// connection's own): pay_invoice makes the Backend a Payer (not a
// FeeLimiter: NIP-47 has no fee limit), the three hold methods a
// HoldInvoicer, payment_received notifications (and hold_invoice_accepted
// for a hold wallet) a Waiter, get_info an Informer and Pinger. Without
// notifications the Backend polls lookup_invoice. NIP-47 takes no preimage
// for make_invoice, so InvoiceRequest.Preimage is backend.ErrUnsupported.
//
// Errors: each NIP-47 error code maps to one backend sentinel (see
// Sentinel): RATE_LIMITED, INTERNAL, OTHER ErrUnavailable; NOT_IMPLEMENTED,
// RESTRICTED, UNSUPPORTED_ENCRYPTION ErrUnsupported; INSUFFICIENT_BALANCE,
// QUOTA_EXCEEDED, PAYMENT_FAILED ErrPaymentFailed; UNAUTHORIZED ErrInvalid;
// NOT_FOUND ErrNotFound. A request no relay took is ErrUnavailable; one the
// relays took but the wallet never answered ends with the call's deadline.
//
// Payments: pay_invoice is published once and never again, not even after
// a relay reconnects. An answer is believed when it is the preimage or a
// refusal that says nothing was paid. A pay_invoice that was published but
// not answered, or answered with INTERNAL/OTHER (Alby Hub's answer to real
// payment failures), is resolved by lookup_invoice: the preimage of a
// settled invoice is success, a failed payment is ErrPaymentFailed, and
// anything else backend.ErrPaymentUnknown.
//
// A wallet service that cannot be reached when New runs (no relay
// connects, no info event) is backend.ErrUnavailable at New.
//
// As: a Backend's As hands out nothing of NWC's own; the driver is
// unexported and every call goes through the portable API. *WalletError
// carries the wallet's NIP-47 code and message (errors.As).
package nwc
