package statetest

import (
	"bytes"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/l402"
	"github.com/l402kit/l402kit/proxy"
)

// keyCases check a proxy.KeyStore: one master secret per store, the same on
// every handle and after a restart, the revocation list, and through a
// proxy: a challenge writes no record, a token minted by one proxy verifies
// on another over the same state and after a restart, a revoked one is
// refused on both, and a token minted with a stored root key (before keys
// were derived) still verifies.
func keyCases(t *testing.T, h Harness) {
	isKeyStore := func(t *testing.T, s proxy.Store) proxy.KeyStore {
		ks, ok := s.(proxy.KeyStore)
		if !ok {
			t.Skip("this store keeps no master secret (not a proxy.KeyStore): root keys are stored per token")
		}
		return ks
	}
	t.Run("Keys/Master", func(t *testing.T) {
		a := isKeyStore(t, h.Open(t))
		b := a
		if h.Second != nil {
			b = isKeyStore(t, h.Second(t, a))
		}
		// Concurrent first calls on two handles agree.
		var ka, kb []byte
		var ea, eb error
		var wg sync.WaitGroup
		wg.Go(func() { ka, ea = a.MasterKey(ctx) })
		wg.Go(func() { kb, eb = b.MasterKey(ctx) })
		wg.Wait()
		must(t, errors.Join(ea, eb))
		if len(ka) != proxy.MasterKeySize || !bytes.Equal(ka, kb) {
			t.Fatalf("master secrets of two handles: %x and %x", ka, kb)
		}
		again, err := a.MasterKey(ctx)
		must(t, err)
		if !bytes.Equal(again, ka) {
			t.Fatal("master secret changed between calls")
		}
		if bytes.Equal(ka, make([]byte, proxy.MasterKeySize)) {
			t.Fatal("master secret is all zeros")
		}
		if other := isKeyStore(t, h.Open(t)); other != nil {
			ko, err := other.MasterKey(ctx)
			must(t, err)
			if bytes.Equal(ko, ka) {
				t.Fatal("two stores share a master secret")
			}
		}
		if h.Reopen == nil {
			return
		}
		r := isKeyStore(t, h.Reopen(t, a))
		kr, err := r.MasterKey(ctx)
		must(t, err)
		if !bytes.Equal(kr, ka) {
			t.Fatal("master secret changed across a reopen: every token sold would fail")
		}
	})
	t.Run("Keys/RevocationList", func(t *testing.T) { revocationList(t, isKeyStore(t, h.Open(t))) })
	t.Run("Keys/ChallengeWritesNoRecord", func(t *testing.T) {
		s := h.Open(t)
		isKeyStore(t, s)
		node := newNode(t, h)
		p := newProxy(t, node, s, "a", false, 0)
		c := challengeOf(t, p)
		id, err := l402.DecodeIdentifier(c.Macaroon.Id())
		must(t, err)
		if _, err := s.Token(ctx, id.TokenID); !errors.Is(err, proxy.ErrNoRecord) {
			t.Fatalf("record of a challenge's token: %v, want none", err)
		}
	})
	t.Run("Keys/SecondInstanceVerifies", func(t *testing.T) {
		a := h.Open(t)
		isKeyStore(t, a)
		second := func() proxy.Store {
			if h.Second == nil {
				return a // two proxies over one store, when it has no second handle
			}
			return h.Second(t, a)
		}
		node := newNode(t, h)
		pa := newProxy(t, node, a, "a", false, 0)
		auth, id := paidToken(t, node, pa)
		expect(t, serve(pa, auth), http.StatusOK, "token on the proxy that sold it")
		// The second proxy starts after the first minted: it learns the
		// master secret from the store.
		pb := newProxy(t, node, second(), "b", false, 0)
		expect(t, serve(pb, auth), http.StatusOK, "token on a second proxy")
		must(t, pb.Revoke(ctx, id))
		expect(t, serve(pb, auth), http.StatusPaymentRequired, "revoked token on the proxy that revoked it")
		// A proxy whose cache has not seen the token asks the list.
		pc := newProxy(t, node, a, "c", false, 0)
		expect(t, serve(pc, auth), http.StatusPaymentRequired, "revoked token on another proxy")
	})
	t.Run("Restart/DerivedTokenAndRevocation", func(t *testing.T) {
		if h.Reopen == nil {
			t.Skip("this store does not outlive its process (no Reopen in the harness)")
		}
		s := h.Open(t)
		isKeyStore(t, s)
		node := newNode(t, h)
		p := newProxy(t, node, s, "a", false, 0)
		keep, _ := paidToken(t, node, p)
		gone, goneID := paidToken(t, node, p)
		must(t, p.Revoke(ctx, goneID))
		p.Close()

		s = h.Reopen(t, s)
		p = newProxy(t, node, s, "a", false, 0)
		expect(t, serve(p, keep), http.StatusOK, "derived token after restart")
		expect(t, serve(p, gone), http.StatusPaymentRequired, "revoked token after restart")
		must(t, p.Collect(ctx, time.Now().Add(24*time.Hour), false))
		expect(t, serve(p, keep), http.StatusOK, "derived token after collection")
		expect(t, serve(p, gone), http.StatusPaymentRequired, "revoked token (no expiry) after collection")
	})
	t.Run("Restart/StoredKeyTokenStillValid", func(t *testing.T) {
		if h.Reopen == nil {
			t.Skip("this store does not outlive its process (no Reopen in the harness)")
		}
		s := h.Open(t)
		isKeyStore(t, s)
		node := newNode(t, h)
		// A proxy minting as before keys were derived.
		old, err := proxy.New(proxy.Config{
			Backend: node, Store: s, Instance: "a", CollectEvery: -1, ChallengesPerMinute: -1, Logger: quiet, StoredRootKeys: true,
			Routes: []proxy.Route{{Name: "r", PathPrefix: "/", Price: backend.Sat(1)}},
		})
		must(t, err)
		auth, id := paidToken(t, node, old)
		if _, err := s.Token(ctx, id); err != nil {
			t.Fatalf("a stored-key token has no record: %v", err)
		}
		expect(t, serve(old, auth), http.StatusOK, "stored-key token")
		old.Close()

		s = h.Reopen(t, s)
		p := newProxy(t, node, s, "a", false, 0)
		expect(t, serve(p, auth), http.StatusOK, "stored-key token on a deriving proxy after restart")
		must(t, p.Collect(ctx, time.Now().Add(24*time.Hour), false))
		expect(t, serve(p, auth), http.StatusOK, "stored-key token after collection")
		must(t, p.Revoke(ctx, id))
		expect(t, serve(p, auth), http.StatusPaymentRequired, "revoked stored-key token")
	})
}

// paidToken buys a token from p and returns its Authorization and id.
func paidToken(t *testing.T, node *backend.Backend, p *proxy.Proxy) (string, l402.TokenID) {
	t.Helper()
	c := challengeOf(t, p)
	pay, err := node.PayInvoice(ctx, c.Invoice, backend.PayOptions{})
	must(t, err)
	id, err := l402.DecodeIdentifier(c.Macaroon.Id())
	must(t, err)
	return (&l402.Token{Macaroon: c.Macaroon, Preimage: pay.Preimage}).Authorization(), id.TokenID
}

func revocationList(t *testing.T, s proxy.KeyStore) {
	forever, hour, later, never := tokenID(t), tokenID(t), tokenID(t), tokenID(t)
	must(t, s.AddRevoked(ctx, time.Time{}, forever))
	must(t, s.AddRevoked(ctx, at.Add(time.Hour), hour, later))
	must(t, s.AddRevoked(ctx, at.Add(3*time.Hour), later))   // extends
	must(t, s.AddRevoked(ctx, at.Add(time.Minute), later))   // never shortens
	must(t, s.AddRevoked(ctx, at.Add(time.Minute), forever)) // nor ends a for-ever entry
	must(t, s.AddRevoked(ctx, time.Time{}))                  // nothing to add
	listed := func(id l402.TokenID) bool {
		ok, err := s.Revoked(ctx, id)
		must(t, err)
		return ok
	}
	if !listed(forever) || !listed(hour) || !listed(later) || listed(never) {
		t.Fatal("revocation list does not say what was added")
	}
	_, err := s.Collect(ctx, at.Add(2*time.Hour))
	must(t, err)
	if !listed(forever) || listed(hour) || !listed(later) {
		t.Fatalf("after collecting at +2h: for ever %v (want true), +1h %v (want false), +3h %v (want true)", listed(forever), listed(hour), listed(later))
	}
	_, err = s.Collect(ctx, at.Add(4*time.Hour))
	must(t, err)
	if !listed(forever) || listed(later) {
		t.Fatal("after collecting at +4h: the for-ever entry must stay, the +3h one go")
	}
}
