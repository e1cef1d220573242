// Package proxy puts a Lightning price on HTTP resources with L402: a
// reverse proxy (Proxy), the same gate as net/http middleware
// (Proxy.Middleware), and as a forward-auth endpoint for nginx
// auth_request, Traefik ForwardAuth and Caddy forward_auth
// (Proxy.ForwardAuth).
//
// A request to a priced route without a token is answered 402 Payment
// Required with two challenges, L402 and the legacy LSAT, each carrying a
// macaroon and a BOLT11 invoice from the configured backend. A client that
// pays the invoice presents the macaroon and the preimage and is let
// through; verifying the token needs no call to the node, so holders of
// valid tokens keep being served when the node is down, while new challenges
// are answered 503 with the reason.
//
// Routes are matched by host and longest path prefix and have a mode:
// ModeRequired (402 to everyone without a token), ModeOptional (only
// clients that send Accept-Authenticate: L402 or LSAT are challenged; others
// get the free variant) and ModeFree. The upstream learns from the
// X-L402-Paid header whether the request was paid, so one service can serve
// a paid and a free variant.
//
// Single-use routes serve each token once. On a backend with hold invoices
// the payment stays held while the token is unused: the client presents the
// macaroon with an empty preimage ("L402 <macaroon>:") while its payment is
// in flight; the proxy sees the invoice Held, serves the request, then
// settles the invoice (completing the client's payment) or, when the
// upstream fails with a 5xx, cancels it so the payment goes back. On other
// backends the proxy records spent payment hashes in its Store.
//
// Root keys, spent hashes and held preimages live in a Store: in memory by
// default, in one file with package boltstore, or in PostgreSQL shared by
// several proxies with package pgstore. Package statetest is the contract
// every Store passes.
//
// Canonical requests: the request the gate authorizes is exactly the
// request the upstream receives. Routing, caveats and forwarding all use one
// reading of the path and host, and a request that some server could read
// differently (encoded dot segments, encoded slashes, backslashes, ";"
// parameters, double slashes, double encoding, Unicode lookalikes, letter
// case that reaches another route, ambiguous hosts) is refused with 400 and
// a JSON reason instead of being cleaned; CanonicalPath and CanonicalHost
// say exactly what passes, in both the reverse proxy and forward auth. No
// L402 or LSAT credential is forwarded upstream, and client-sent headers
// that any server could read as the gate's own X-L402-* headers are
// dropped (reverse proxy, middleware) or refused (forward auth).
package proxy
