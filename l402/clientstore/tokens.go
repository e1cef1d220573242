package clientstore

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"

	bolt "go.etcd.io/bbolt"

	"github.com/l402kit/l402kit/l402"
)

// Get implements l402.TokenCache. A stored token that cannot be read is
// treated as absent.
func (s *Store) Get(key string) (*l402.Token, bool) {
	var auth string
	_ = s.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketTokens).Get([]byte(key))
		if v == nil {
			return nil
		}
		var rec TokenRecord
		if json.Unmarshal(v, &rec) == nil {
			auth = rec.Authorization
		}
		return nil
	})
	if auth == "" {
		return nil, false
	}
	tok, err := l402.RestoreToken(auth)
	if err != nil {
		return nil, false
	}
	return tok, true
}

// Put implements l402.TokenCache. A Transport puts a token after its
// Ledger entry recorded it; Put writes only a token the store does not
// hold already under key (one bought without the store as Ledger).
func (s *Store) Put(key string, tok *l402.Token) {
	auth := tok.Authorization()
	_ = s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketTokens)
		if v := b.Get([]byte(key)); v != nil {
			var rec TokenRecord
			if json.Unmarshal(v, &rec) == nil && rec.Authorization == auth {
				return nil
			}
		}
		origin := key
		if u, err := url.Parse(key); err == nil {
			origin = l402.Origin(u)
		}
		return putJSON(b, []byte(key), TokenRecord{
			Key: key, Origin: origin, Authorization: auth, PaymentHash: tok.ID.PaymentHash, PaidAt: s.now(),
		})
	})
}

// Delete implements l402.TokenCache: a refused or expired token is
// dropped.
func (s *Store) Delete(key string) {
	_ = s.update(func(tx *bolt.Tx) error { return tx.Bucket(bucketTokens).Delete([]byte(key)) })
}

// Tokens lists the stored tokens, by key, dropping those past their
// validity.
func (s *Store) Tokens() ([]TokenRecord, error) {
	var out []TokenRecord
	var expired [][]byte
	now := s.now()
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketTokens).ForEach(func(k, v []byte) error {
			var rec TokenRecord
			if err := json.Unmarshal(v, &rec); err != nil {
				return fmt.Errorf("clientstore: token %q: %w", k, err)
			}
			if tok, err := l402.RestoreToken(rec.Authorization); err == nil && l402.TokenExpired(tok, now) {
				expired = append(expired, bytes.Clone(k))
				return nil
			}
			out = append(out, rec)
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	if len(expired) > 0 {
		err = s.update(func(tx *bolt.Tx) error {
			for _, k := range expired {
				if err := tx.Bucket(bucketTokens).Delete(k); err != nil {
					return err
				}
			}
			return nil
		})
	}
	return out, err
}

// RemoveToken deletes the token stored under key, or whose payment hash
// is key; it reports whether there was one.
func (s *Store) RemoveToken(key string) (bool, error) {
	found := false
	err := s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketTokens)
		if b.Get([]byte(key)) != nil {
			found = true
			return b.Delete([]byte(key))
		}
		c := b.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			var rec TokenRecord
			if json.Unmarshal(v, &rec) == nil && rec.PaymentHash.String() == strings.ToLower(key) {
				found = true
				return b.Delete(k)
			}
		}
		return nil
	})
	return found, err
}
