// Package proxytest runs the HTTP 402 flow end to end through the real proxy
// over any backend's conformance.Harness: the same harnesses that run the
// driver contract (conformance.Run) run this suite, on every adapter.
package proxytest

import (
	"context"
	"testing"
	"time"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/conformance"
)

// flowPrice is what the proxy-flow routes charge: whole satoshis, small.
const flowPrice = backend.MilliSat(100_000)

// callTimeout bounds every single call the suite makes, as in conformance.
const callTimeout = 30 * time.Second

func callCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	t.Cleanup(cancel)
	return ctx
}

// restartCtx bounds a harness's StartNode, as in conformance: a real node
// on a busy machine can take well over callTimeout to start and sync (LND
// on a loaded 2-core machine took longer than 30 s and the rest of the run
// found it still starting), and how long it takes is no part of the flow.
func restartCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

type payResult struct {
	p   *backend.Payment
	err error
}

// RunFlow runs the HTTP 402 flow end to end over h's backend: a real
// upstream and a real proxy on loopback listeners, a client that pays with
// h's payer. Cases: challenge then paid access (all three Authorization
// forms), forged signature, wrong preimage, expired token, wrong path,
// optional route with and without Accept-Authenticate, single-use replay,
// single-use upstream failure, the paying client transport, prepaid
// bundles (a fixed cost per request until dry, then a top-up payment that
// credits the same balance; usage reported by the upstream; the client
// transport topping up), the Payment scheme's Lightning charge (alone, and
// beside L402 in one 402: paid by hand and by the client in either
// preference order, its replay, a credential for another route, a tampered
// request and an unreadable one refused with their problem types), and
// (when h is a conformance.Restarter) a node that goes down: challenges answer 503
// while valid tokens keep working.
func RunFlow(t *testing.T, h conformance.Harness) {
	t.Helper()
	f := newFlow(t, h)
	for _, c := range []struct {
		name string
		fn   func(*testing.T, *flow)
	}{
		{"Required/ChallengeThenAccess", flowChallengeThenAccess},
		{"Required/ForgedSignatureRefused", flowForged},
		{"Required/WrongPreimageRefused", flowWrongPreimage},
		{"Required/ExpiredTokenRefused", flowExpired},
		{"Required/WrongPathRefused", flowWrongPath},
		{"Optional/FreeVariantWithoutAcceptAuthenticate", flowOptionalFree},
		{"Optional/PaidVariantWithAcceptAuthenticate", flowOptionalPaid},
		{"SingleUse/ReplayRefused", flowSingleUse},
		{"SingleUse/UpstreamFailureReleasesToken", flowSingleUseFailure},
		{"Client/TransportPaysAndRetries", flowTransport},
		{"Client/TransportSingleUse", flowTransportSingleUse},
		{"Prepaid/BundleDrawsThenTopsUp", flowBundle},
		{"Prepaid/UsageReportedByUpstream", flowMetered},
		{"Prepaid/TransportTopsUp", flowTransportTopUp},
		{"Payment/ChargeOnceWithReceipt", flowCharge},
		{"Payment/BothSchemesInOne402", flowBothSchemes},
		{"Unavailable/ChallengesFailTokensWork", flowNodeDown},
	} {
		t.Run(c.name, func(t *testing.T) { c.fn(t, f) })
	}
}
