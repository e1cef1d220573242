package backend

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// Opener opens a driver from a parsed URL. Adapters register one per scheme.
// The URL it sees has lost the parameters Open reads itself (timeout); it
// refuses any other it does not know, naming it.
type Opener func(ctx context.Context, u *url.URL) (Driver, error)

var (
	openersMu sync.RWMutex
	openers   = map[string]Opener{}
)

// Register makes a URL scheme available to Open. It panics when the scheme is
// registered twice, as database/sql.Register does, since that is a build
// mistake, not a runtime condition.
func Register(scheme string, o Opener) {
	scheme = strings.ToLower(scheme)
	openersMu.Lock()
	defer openersMu.Unlock()
	if o == nil {
		panic("backend: Register opener is nil")
	}
	if _, dup := openers[scheme]; dup {
		panic("backend: Register called twice for scheme " + scheme)
	}
	openers[scheme] = o
}

// Schemes lists the registered URL schemes, sorted.
func Schemes() []string {
	openersMu.RLock()
	defer openersMu.RUnlock()
	out := make([]string, 0, len(openers))
	for s := range openers {
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// Open opens the backend rawURL names, with the opener registered for its
// scheme. The adapter's package must be imported for its scheme to be known.
//
// Every scheme takes timeout=DURATION (a Go duration such as 10s), the
// Backend's Options.CallTimeout; the rest of the URL is the adapter's.
func Open(ctx context.Context, rawURL string) (*Backend, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("backend: %w: %v", ErrInvalid, redactParseError(err))
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme == "" {
		return nil, fmt.Errorf("backend: %w: URL has no scheme (want one of %s)", ErrInvalid, strings.Join(Schemes(), ", "))
	}
	openersMu.RLock()
	o := openers[scheme]
	openersMu.RUnlock()
	if o == nil {
		return nil, fmt.Errorf("backend: %w: no backend registered for scheme %q (registered: %s; is its package imported?)",
			ErrUnsupported, scheme, strings.Join(Schemes(), ", "))
	}
	var opts Options
	q := u.Query()
	if v, ok := q["timeout"]; ok {
		d, err := time.ParseDuration(v[0])
		if err != nil || d <= 0 || len(v) > 1 {
			return nil, fmt.Errorf("backend: %w: timeout=%q is not one positive duration (such as 10s)", ErrInvalid, v[0])
		}
		opts.CallTimeout = d
		q.Del("timeout")
		u.RawQuery = q.Encode()
	}
	d, err := o(ctx, u)
	if err != nil {
		if Kind(err) == nil {
			err = as(ErrInvalid, err)
		}
		return nil, err
	}
	return New(d, opts), nil
}

// redactParseError drops the URL from url.Parse's error, which would echo
// passwords and runes into logs.
func redactParseError(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}
