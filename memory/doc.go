// Package memory is an embedded, in-process Lightning node: the zero-setup
// default backend of l402kit and the engine behind the wire-level fakes that
// the other adapters are tested against.
//
// Its invoices are real BOLT11 strings (regtest, "lnbcrt"), signed with a key
// made when the node starts, with real payment hashes and preimages, so any
// BOLT11 decoder accepts them. It has every optional ability of package
// backend; it can pay only its own invoices, which is what a service and its
// tests need: the payment settles in process. Paying a hold invoice leaves it
// Held and blocks the payer, as an in-flight HTLC would, until the invoice is
// settled, canceled or expires, or the payer's context ends.
//
// URL: memory:// opens a new node; memory://NAME the node of that name in
// this process (see Scheme); memory+dev://HOST:PORT pays through a demo
// proxy's dev endpoint (see DevScheme).
//
// New, and backend.Open with a memory:// URL, return the portable
// *backend.Backend; there is no other way to make a node. Its As hands out a
// *Node (AsNode does it for you): what a demo or a test needs beyond the
// portable API, taking the node down with SetAvailable(false) to test how
// callers handle ErrUnavailable, and serving DevPayHandler. A Node is no
// driver: invoices and payments go through the Backend.
package memory
