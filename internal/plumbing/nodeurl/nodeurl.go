// Package nodeurl reads the query parameters of backend URLs, so every
// adapter speaks one vocabulary:
//
//	tls=1|0          TLS on or off (the default is the adapter's; off is for
//	                 loopback nodes and test fakes)
//	tlscert=PATH     trust this PEM or DER certificate (also file:PATH, env:NAME)
//	servername=NAME  verify the node's certificate for NAME
//	insecure=1       accept any certificate (tests only)
//	<secret>=VALUE   a secret (password, rune, macaroon): the value itself,
//	                 env:NAME or file:PATH (backend.ReadSecret)
//
// plus timeout=DURATION, which backend.Open reads itself. A parameter the
// adapter does not know is refused with its name; the spellings of earlier
// versions are refused with the name of the key that replaced them.
package nodeurl

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/l402kit/l402kit/backend"
)

// renamed maps keys of earlier versions to what replaced them.
var renamed = map[string]string{
	"plainhttp": "tls=0",
	"allowhttp": "tls=0",
}

// Query is a URL's parameters as one adapter reads them.
type Query struct {
	name string // the adapter, for messages
	u    *url.URL
	q    url.Values
	read map[string]bool
}

// New returns the query of u for the adapter called name.
func New(name string, u *url.URL) *Query {
	return &Query{name: name, u: u, q: u.Query(), read: map[string]bool{}}
}

// Password returns the password of an API behind basic auth: the password
// parameter, or the URL's user-info password (scheme://:PASSWORD@host), read
// through backend.ReadSecret. A file path holds slashes, which user-info
// cannot, hence the parameter. An absent password is refused.
func (q *Query) Password() (string, error) {
	userPass := ""
	if q.u.User != nil {
		userPass, _ = q.u.User.Password()
	}
	p, err := q.Secret("password", userPass)
	if err == nil && p == "" {
		err = q.errorf("no password (%s://:PASSWORD@host:port, or ?password=env:NAME|file:PATH)", q.u.Scheme)
	}
	return p, err
}

func (q *Query) errorf(format string, args ...any) error {
	return fmt.Errorf("%s: %w: "+format, append([]any{q.name, backend.ErrInvalid}, args...)...)
}

// String returns the value of key, "" when absent. A key given twice is
// refused, since which one wins would be a guess.
func (q *Query) String(key string) (string, error) {
	q.read[key] = true
	v := q.q[key]
	switch len(v) {
	case 0:
		return "", nil
	case 1:
		return v[0], nil
	}
	return "", q.errorf("URL parameter %s is given %d times", key, len(v))
}

// Has reports whether key is present.
func (q *Query) Has(key string) bool { return q.q.Has(key) }

// Secret returns the secret key names, read through backend.ReadSecret, or
// fallback (another place the URL may carry it, such as its user-info) when
// the key is absent. The error never shows the secret.
func (q *Query) Secret(key, fallback string) (string, error) {
	v, err := q.String(key)
	if err != nil {
		return "", err
	}
	if v == "" {
		v = fallback
	}
	if v == "" {
		return "", nil
	}
	s, err := backend.ReadSecret(v)
	if err != nil {
		return "", fmt.Errorf("%s: %s: %w", q.name, key, err)
	}
	return s, nil
}

// Bool returns key as a boolean (1, 0, true, false), def when absent.
func (q *Query) Bool(key string, def bool) (bool, error) {
	v, err := q.String(key)
	if err != nil || v == "" {
		return def, err
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, q.errorf("%s=%q is not 1 or 0", key, v)
	}
	return b, nil
}

// Duration returns key as a positive Go duration, zero when absent.
func (q *Query) Duration(key string) (time.Duration, error) {
	v, err := q.String(key)
	if err != nil || v == "" {
		return 0, err
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, q.errorf("%s=%q is not a positive duration (such as 10s)", key, v)
	}
	return d, nil
}

// TLS reads tls (default def), tlscert, servername and insecure. It returns
// whether TLS is on and, when it is, the client configuration: the system
// roots plus tlscert's certificate. The TLS-only keys with TLS off are
// refused, since they would be ignored.
func (q *Query) TLS(def bool) (bool, *tls.Config, error) {
	on, err := q.Bool("tls", def)
	if err != nil {
		return false, nil, err
	}
	cert, err := q.String("tlscert")
	if err != nil {
		return false, nil, err
	}
	name, err := q.String("servername")
	if err != nil {
		return false, nil, err
	}
	insecure, err := q.Bool("insecure", false)
	if err != nil {
		return false, nil, err
	}
	if !on {
		if cert != "" || name != "" || insecure {
			return false, nil, q.errorf("tlscert, servername and insecure need tls=1")
		}
		return false, nil, nil
	}
	conf := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: name}
	if insecure {
		conf.InsecureSkipVerify = true //nolint:gosec // asked for explicitly, for tests
	}
	if cert != "" {
		if conf.RootCAs, err = CertPool(cert); err != nil {
			return false, nil, fmt.Errorf("%s: tlscert: %w", q.name, err)
		}
	}
	return true, conf, nil
}

// CertPool returns the system roots plus the certificate v names: a file
// path, file:PATH or env:NAME, holding PEM or DER.
func CertPool(v string) (*x509.CertPool, error) {
	var data []byte
	if strings.HasPrefix(v, "env:") {
		s, err := backend.ReadSecret(v)
		if err != nil {
			return nil, err
		}
		data = []byte(s)
	} else {
		var err error
		if data, err = os.ReadFile(strings.TrimPrefix(v, "file:")); err != nil {
			return nil, fmt.Errorf("%w: %v", backend.ErrInvalid, err)
		}
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if blk, _ := pem.Decode(data); blk != nil {
		if !pool.AppendCertsFromPEM(data) {
			return nil, fmt.Errorf("%w: no certificate in the PEM data", backend.ErrInvalid)
		}
		return pool, nil
	}
	c, err := x509.ParseCertificate(data)
	if err != nil {
		return nil, fmt.Errorf("%w: neither PEM nor DER: %v", backend.ErrInvalid, err)
	}
	pool.AddCert(c)
	return pool, nil
}

// Done refuses every parameter that was not read: a renamed one with the key
// that replaced it, any other with its name and the known keys.
func (q *Query) Done() error {
	var unknown []string
	for k := range q.q {
		if !q.read[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	slices.Sort(unknown)
	k := unknown[0]
	if to, ok := renamed[k]; ok {
		return q.errorf("URL parameter %s is now %s", k, to)
	}
	known := make([]string, 0, len(q.read)+1)
	for r := range q.read {
		known = append(known, r)
	}
	known = append(known, "timeout")
	slices.Sort(known)
	return q.errorf("unknown URL parameter %q (known: %s)", k, strings.Join(known, ", "))
}
