package main

import (
	"bytes"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/l402"
	"github.com/l402kit/l402kit/proxy"
)

// fileConfig is the YAML configuration file (--config).
type fileConfig struct {
	Listen            string           `yaml:"listen"`
	Backend           string           `yaml:"backend"`
	State             string           `yaml:"state"` // as --state
	Routes            []routeConfig    `yaml:"routes"`
	Server            *serverConfig    `yaml:"server"`
	UpstreamTransport *transportConfig `yaml:"upstream_transport"`
	// Schemes the routes offer unless they name theirs (as --schemes).
	Schemes []string `yaml:"schemes"`
	// PaymentSecret keys Payment challenge ids (as --payment-secret).
	PaymentSecret string `yaml:"payment_secret"`
	// TokenChallenges also sends bLIP-26's L402 form (as
	// --token-challenges).
	TokenChallenges bool `yaml:"token_challenges"`
	// StoredRootKeys writes a random root key per challenge instead of
	// deriving it (as --stored-root-keys).
	StoredRootKeys bool `yaml:"stored_root_keys"`
	// PublicOrigin is the origin clients address the proxy at behind a
	// front (as --public-origin).
	PublicOrigin string `yaml:"public_origin"`
	// ClientCertHeader names the header a front passes the client's TLS
	// certificate in (as --client-cert-header).
	ClientCertHeader string `yaml:"client_cert_header"`
}

type routeConfig struct {
	Name          string   `yaml:"name"`
	Host          string   `yaml:"host"`
	Path          string   `yaml:"path"`
	Upstream      string   `yaml:"upstream"`
	PriceSat      int64    `yaml:"price_sat"`
	PriceMsat     int64    `yaml:"price_msat"`
	Mode          string   `yaml:"mode"`
	SingleUse     bool     `yaml:"single_use"`
	TokenLifetime duration `yaml:"token_lifetime"`
	InvoiceExpiry duration `yaml:"invoice_expiry"`
	Memo          string   `yaml:"memo"`
	Caveats       []string `yaml:"caveats"`
	Schemes       []string `yaml:"schemes"`
	// BindOrigin and BindClientCert bind the route's tokens (bLIP-26):
	// proxy.Route's fields of the same names.
	BindOrigin     bool `yaml:"bind_origin"`
	BindClientCert bool `yaml:"bind_client_cert"`
	// Bundle makes the route prepaid (proxy.Bundle).
	Bundle *bundleConfig `yaml:"bundle"`
}

// bundleConfig is a route's prepaid bundle: units a payment of the price
// buys, and how requests draw from them.
type bundleConfig struct {
	Units        int64  `yaml:"units"`
	Cost         int64  `yaml:"cost"`
	Metered      bool   `yaml:"metered"`
	UsageHeader  string `yaml:"usage_header"`
	UsageEvent   string `yaml:"usage_event"`
	Reserve      int64  `yaml:"reserve"`
	ReserveField string `yaml:"reserve_field"`
	MaxReserve   int64  `yaml:"max_reserve"`
}

// duration reads "90s", "1h" as well as plain seconds.
type duration time.Duration

func (d *duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	if v, err := time.ParseDuration(s); err == nil {
		*d = duration(v)
		return nil
	}
	var secs int64
	if _, err := fmt.Sscan(s, &secs); err != nil {
		return fmt.Errorf("duration %q: want e.g. 90s, 1h or a number of seconds", s)
	}
	*d = duration(time.Duration(secs) * time.Second)
	return nil
}

func loadConfig(path string) (*fileConfig, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	fc, err := parseConfig(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return fc, nil
}

// parseConfig reads the YAML configuration; unknown keys are errors, so a
// typo does not silently drop a setting.
func parseConfig(b []byte) (*fileConfig, error) {
	var fc fileConfig
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&fc); err != nil {
		return nil, err
	}
	return &fc, nil
}

func (rc routeConfig) route() (proxy.Route, error) {
	mode, err := proxy.ParseMode(rc.Mode)
	if err != nil {
		return proxy.Route{}, err
	}
	r := proxy.Route{
		Name:           rc.Name,
		Host:           rc.Host,
		PathPrefix:     rc.Path,
		Mode:           mode,
		SingleUse:      rc.SingleUse,
		TokenLifetime:  time.Duration(rc.TokenLifetime),
		InvoiceExpiry:  time.Duration(rc.InvoiceExpiry),
		Memo:           rc.Memo,
		Price:          backend.Sat(rc.PriceSat) + backend.MilliSat(rc.PriceMsat),
		Schemes:        rc.Schemes,
		BindOrigin:     rc.BindOrigin,
		BindClientCert: rc.BindClientCert,
	}
	if b := rc.Bundle; b != nil {
		r.Bundle = &proxy.Bundle{Units: b.Units, Cost: b.Cost, Metered: b.Metered, UsageHeader: b.UsageHeader,
			UsageEvent: b.UsageEvent, Reserve: b.Reserve, ReserveField: b.ReserveField, MaxReserve: b.MaxReserve}
	}
	if rc.Upstream != "" {
		if r.Upstream, err = parseUpstream(rc.Upstream); err != nil {
			return r, err
		}
	}
	for _, c := range rc.Caveats {
		cv, err := l402.ParseCaveat(c)
		if err != nil {
			return r, fmt.Errorf("route %s: %w", rc.Name, err)
		}
		r.Caveats = append(r.Caveats, cv)
	}
	return r, nil
}

func parseUpstream(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("upstream %q: want http://host:port or https://host:port", s)
	}
	return u, nil
}

// splitList reads a comma-separated list, dropping empty entries.
func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// paymentSecret reads the key of Payment challenge ids (value, env:NAME or
// file:PATH). Proxies sharing a PostgreSQL state must share it, so one that
// offers Payment there without one is refused rather than left to refuse
// the charges its peers issue.
func paymentSecret(o *options, where string, routes []proxy.Route) ([]byte, error) {
	if o.paymentSecret != "" {
		v, err := backend.ReadSecret(o.paymentSecret)
		if err != nil {
			return nil, fmt.Errorf("payment secret: %w", err)
		}
		if len(v) < 32 {
			return nil, fmt.Errorf("payment secret: %d bytes, want 32 or more", len(v))
		}
		return []byte(v), nil
	}
	offers := slices.ContainsFunc(o.schemes, func(s string) bool { return strings.EqualFold(s, proxy.SchemePayment) })
	for _, r := range routes {
		offers = offers || slices.ContainsFunc(r.Schemes, func(s string) bool { return strings.EqualFold(s, proxy.SchemePayment) })
	}
	if offers && strings.HasPrefix(where, "postgres") {
		return nil, fmt.Errorf("routes offer the Payment scheme on a shared state (%s): set --payment-secret (or payment_secret) to the same value on every proxy", where)
	}
	return nil, nil
}
