// Package conformance is the contract every l402kit backend adapter passes.
//
// Run exercises a backend through a Harness: invoice fields checked by
// decoding the BOLT11 string, lookups, payment and settlement with the
// preimage checked against the hash, waiting, hold invoices, expiry,
// any-amount invoices, caller-chosen preimages, duplicate hashes, many
// invoices at once, and a node that goes away and comes back. A case whose
// ability the backend lacks (see backend.Abilities and Support) is skipped
// with its name and the reason, never passed.
//
// The same Harness runs the HTTP 402 flow end to end through the proxy with
// proxytest.RunFlow (package proxy/proxytest), which keeps this package free
// of everything above backend.
//
// Harnesses for real LND nodes on a regtest chain live in lnd/regtest; they
// build their container images locally and skip, saying why, when no Docker
// engine is reachable. Set L402KIT_REQUIRE_REGTEST=1 to make such a skip fail.
package conformance
