package nwc

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/l402kit/l402kit/backend"
)

// Scheme is the URL scheme this package registers with backend.Open: the
// connection URI exactly as wallets print it.
const Scheme = "nostr+walletconnect"

func init() { backend.Register(Scheme, openURL) }

// ParseURI reads a nostr+walletconnect:// connection URI into a Config.
func ParseURI(s string) (Config, error) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil {
		return Config{}, fmt.Errorf("nwc: %w: connection URI does not parse", backend.ErrInvalid)
	}
	return configFromURL(u)
}

func configFromURL(u *url.URL) (Config, error) {
	if !strings.EqualFold(u.Scheme, Scheme) {
		return Config{}, fmt.Errorf("nwc: %w: scheme %q, want %s://", backend.ErrInvalid, u.Scheme, Scheme)
	}
	pub := u.Host
	if pub == "" {
		// nostr+walletconnect:PUBKEY?... (no slashes) parses as opaque.
		pub = u.Opaque
	}
	q := u.Query()
	cfg := Config{WalletPubKey: strings.ToLower(pub), Relays: q["relay"], LUD16: q.Get("lud16")}
	if s := q["secret"]; len(s) == 1 {
		sec, err := backend.ReadSecret(s[0])
		if err != nil {
			return Config{}, err
		}
		cfg.Secret = strings.ToLower(strings.TrimSpace(sec))
	}
	for k := range q {
		switch k {
		case "relay", "secret", "lud16":
		default:
			return Config{}, fmt.Errorf("nwc: %w: unknown URI parameter %q", backend.ErrInvalid, k)
		}
	}
	return cfg, cfg.check()
}

func openURL(ctx context.Context, u *url.URL) (backend.Driver, error) {
	cfg, err := configFromURL(u)
	if err != nil {
		return nil, err
	}
	return newDriver(ctx, cfg)
}
