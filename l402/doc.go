// Package l402 implements L402 (formerly LSAT) credentials: a macaroon whose
// identifier commits to a Lightning invoice's payment hash, presented together
// with the invoice's preimage as proof of payment.
//
// The server side mints macaroons (Minter) with a root key per token id held
// by a RootKeyStore, so one token can be revoked without touching the others,
// and verifies presented tokens (Verifier) in memory: signature, preimage and
// caveats, with no call to the Lightning node. The header codec writes the
// WWW-Authenticate challenges and reads the Authorization forms that L402 and
// older LSAT clients send.
//
// The client side is Transport, an http.RoundTripper that answers a 402
// challenge by paying its invoice through any backend.Payer under a spending
// limit, and retries with the token. It pays other servers' challenges too:
// Aperture's, and ngx_l402's, whose identifiers are the bare payment hash
// (see PaymentHashOf) and whose caveats bind a token to one request path
// and method.
//
// One extension to L402 is defined here: a single-use route on hold
// invoices cannot release the preimage before it has served the request,
// so its challenge ends with the auth-param inflight="1" (ParamInFlight),
// and a client may then present the macaroon alone, "L402 <macaroon>:",
// while its payment is in flight (PendingAuthorization). Clients send that
// form to no other server.
//
// Challenges are read in both of L402's forms, macaroon="..." and the
// token-agnostic version="0", token="..." of bLIP-26 (the L402
// specification of March 2026), unknown parameters ignored; Header writes
// the first, which every client reads, TokenHeader the second.
//
// Beside L402, the package speaks the Payment HTTP authentication scheme
// (IETF draft-httpauth-payment) with the Lightning charge intent
// (draft-lightning-charge), as Aperture v0.5.0 serves it next to L402 in
// one 402: PaymentChallenge and its parser, the charge request as
// base64url of RFC 8785 canonical JSON (Canonical), ChargeIssuer, which
// binds a challenge's id to its parameters by HMAC so that verifying a
// credential needs no record of the challenge, PaymentCredential,
// PaymentReceipt and RFC 9457 problem details (Problem). Transport pays
// charges too, in the preference order of Transport.Schemes.
//
// The identifier layout (version 0, payment hash, token id) and the caveat
// conventions (services, <service>_capabilities, <service>_valid_until) are
// those of Lightning Labs' Aperture, so tokens interoperate with it.
package l402
