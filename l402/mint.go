package l402

import (
	"context"
	"fmt"

	"gopkg.in/macaroon.v2"

	"github.com/l402kit/l402kit/backend"
)

// DefaultLocation is the macaroon location NewMinter uses when given none.
const DefaultLocation = "l402"

// Minter makes macaroons for invoices, each with its own root key.
type Minter struct {
	store    RootKeyStore
	location string
}

// NewMinter returns a minter storing root keys in store. location is the
// macaroon's location hint (informational); empty means DefaultLocation.
func NewMinter(store RootKeyStore, location string) *Minter {
	if location == "" {
		location = DefaultLocation
	}
	return &Minter{store: store, location: location}
}

// Mint makes a macaroon committing to hash, with a fresh token id and root
// key, restricted by caveats in the order given. Caveats the verifier would
// not understand are refused here (ErrMalformed), not at first use.
func (m *Minter) Mint(ctx context.Context, hash backend.PaymentHash, caveats ...Caveat) (*macaroon.Macaroon, Identifier, error) {
	for _, c := range caveats {
		if err := c.Validate(); err != nil {
			return nil, Identifier{}, err
		}
	}
	id, err := NewIdentifier(hash)
	if err != nil {
		return nil, Identifier{}, err
	}
	key, err := m.store.NewRootKey(ctx, id.TokenID)
	if err != nil {
		return nil, Identifier{}, fmt.Errorf("l402: mint: %w", err)
	}
	mac, err := NewMacaroon(key, id, m.location, caveats...)
	if err != nil {
		// Leave no key behind for a token nobody received.
		_ = m.store.Revoke(context.WithoutCancel(ctx), id.TokenID)
		return nil, Identifier{}, err
	}
	return mac, id, nil
}

// NewMacaroon makes the macaroon of id signed with rootKey, restricted by
// caveats in the order given, for callers that keep root keys themselves
// (a store that records more about each token than RootKeyStore can say).
// Storing rootKey under id.TokenID, where a Verifier finds it, is the
// caller's job. location is informational; empty means DefaultLocation.
func NewMacaroon(rootKey []byte, id Identifier, location string, caveats ...Caveat) (*macaroon.Macaroon, error) {
	for _, c := range caveats {
		if err := c.Validate(); err != nil {
			return nil, err
		}
	}
	if location == "" {
		location = DefaultLocation
	}
	mac, err := macaroon.New(rootKey, id.Encode(), location, macaroon.V2)
	if err == nil {
		err = addCaveats(mac, caveats)
	}
	if err != nil {
		return nil, fmt.Errorf("l402: mint: %w", err)
	}
	return mac, nil
}

// Attenuate returns a copy of mac with caveats added. Anyone holding a token
// can do this, with no key: caveats only ever narrow what a token grants, so
// a holder can hand on a weaker token (shorter-lived, one path) safely.
func Attenuate(mac *macaroon.Macaroon, caveats ...Caveat) (*macaroon.Macaroon, error) {
	for _, c := range caveats {
		if err := c.Validate(); err != nil {
			return nil, err
		}
	}
	out := mac.Clone()
	if err := addCaveats(out, caveats); err != nil {
		return nil, fmt.Errorf("l402: attenuate: %w", err)
	}
	return out, nil
}

func addCaveats(mac *macaroon.Macaroon, caveats []Caveat) error {
	for _, c := range caveats {
		if err := mac.AddFirstPartyCaveat([]byte(c.String())); err != nil {
			return err
		}
	}
	return nil
}
