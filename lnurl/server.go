package lnurl

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/l402kit/l402kit/backend"
)

// Server defaults for the zero values of ServerConfig.
const (
	DefaultMinSendable backend.MilliSat = 1000          // 1 sat
	DefaultMaxSendable backend.MilliSat = 1_000_000_000 // 1,000,000 sat
)

// ServerConfig says what a Server serves.
type ServerConfig struct {
	// Backend makes the invoices. It must commit to the metadata's hash:
	// the server asks with both InvoiceRequest.HashedDescription (the
	// metadata, for nodes that hash the text themselves) and its
	// DescriptionHash; a backend that answers ErrUnsupported makes every
	// callback fail with a reason saying so.
	Backend *backend.Backend
	// Domain is the domain of the addresses served (name@Domain), written
	// into each name's metadata as its LUD-16 text/identifier.
	Domain string
	// BaseURL is where this handler is reachable from outside, scheme and
	// host (and path prefix, if any), e.g. "https://pay.example.com"; the
	// callback and verify URLs handed to wallets start with it. Empty means
	// "https://" + Domain. When it has a path, mount the Server under that
	// path with http.StripPrefix.
	BaseURL string
	// Min and Max bound the amounts accepted (DefaultMinSendable and
	// DefaultMaxSendable when zero).
	Min, Max backend.MilliSat
	// Names are the user names served. Ignored when Lookup is set.
	Names []string
	// Lookup, when set, decides which names exist and gives each the
	// text/plain description wallets show. It must answer the same for a
	// name between a wallet's two requests, or the wallet will find the
	// invoice's description hash wrong.
	Lookup func(ctx context.Context, name string) (description string, ok bool)
	// Expiry of the invoices made (backend.DefaultExpiry when zero).
	Expiry time.Duration
	// VerifyKey authenticates verify URLs, so the verify endpoint answers
	// only for invoices this server made and never becomes a way to read
	// any invoice's state (and preimage) off the node. Nil means a random
	// key per Server: verify URLs then stop working when the process
	// restarts. Give a fixed key of at least 32 bytes to keep them.
	VerifyKey []byte
	// Logger receives one line per backend failure; nil means
	// slog.Default().
	Logger *slog.Logger
}

// Server is an http.Handler that makes a backend a LNURL-pay service for
// lightning addresses name@Domain. It serves
//
//	GET /.well-known/lnurlp/<name>           pay parameters (LUD-06, LUD-16)
//	GET /lnurlp/<name>/callback?amount=<msat> an invoice, with a verify URL
//	GET /lnurlp/<name>/verify/<hash>?k=<mac> LUD-21 verify
//
// Failures are {"status":"ERROR","reason":...}, with an HTTP status that
// LNURL clients ignore but logs and this package's Client read: 400 for a
// bad request, 404 for an unknown name or invoice, 503 when the backend is
// unavailable, 500 otherwise.
type Server struct {
	cfg  ServerConfig
	base string
	key  []byte
	log  *slog.Logger
	mux  *http.ServeMux
}

// NewServer checks cfg and returns its Server.
func NewServer(cfg ServerConfig) (*Server, error) {
	if cfg.Backend == nil {
		return nil, fmt.Errorf("lnurl: %w: ServerConfig.Backend is nil", backend.ErrInvalid)
	}
	if err := validDomain(strings.ToLower(cfg.Domain)); err != nil || cfg.Domain == "" {
		return nil, fmt.Errorf("lnurl: %w: ServerConfig.Domain %q is not a domain", backend.ErrInvalid, cfg.Domain)
	}
	cfg.Domain = strings.ToLower(cfg.Domain)
	if cfg.BaseURL == "" {
		cfg.BaseURL = "https://" + cfg.Domain
	}
	if u, err := url.Parse(cfg.BaseURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" {
		return nil, fmt.Errorf("lnurl: %w: ServerConfig.BaseURL %q is not an http(s) URL without query", backend.ErrInvalid, cfg.BaseURL)
	}
	if cfg.Min == 0 {
		cfg.Min = DefaultMinSendable
	}
	if cfg.Max == 0 {
		cfg.Max = DefaultMaxSendable
	}
	if cfg.Min < 1 || cfg.Max < cfg.Min {
		return nil, fmt.Errorf("lnurl: %w: amount range %d..%d msat is empty", backend.ErrInvalid, int64(cfg.Min), int64(cfg.Max))
	}
	if cfg.Expiry < 0 {
		return nil, fmt.Errorf("lnurl: %w: negative expiry", backend.ErrInvalid)
	}
	if cfg.Lookup == nil {
		names := make(map[string]bool, len(cfg.Names))
		for _, n := range cfg.Names {
			if err := validUser(n); err != nil {
				return nil, fmt.Errorf("lnurl: %w: name %q: %v", backend.ErrInvalid, n, err)
			}
			names[n] = true
		}
		if len(names) == 0 {
			return nil, fmt.Errorf("lnurl: %w: ServerConfig needs Names or Lookup", backend.ErrInvalid)
		}
		domain := cfg.Domain
		cfg.Lookup = func(_ context.Context, name string) (string, bool) {
			return "Payment to " + name + "@" + domain, names[name]
		}
	}
	s := &Server{cfg: cfg, base: strings.TrimSuffix(cfg.BaseURL, "/"), key: cfg.VerifyKey, log: cfg.Logger}
	if s.log == nil {
		s.log = slog.Default()
	}
	if len(s.key) == 0 {
		s.key = make([]byte, 32)
		if _, err := rand.Read(s.key); err != nil {
			return nil, fmt.Errorf("lnurl: verify key: %w", err)
		}
	}
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("GET /.well-known/lnurlp/{name}", s.handleParams)
	s.mux.HandleFunc("GET /lnurlp/{name}/callback", s.handleCallback)
	s.mux.HandleFunc("GET /lnurlp/{name}/verify/{hash}", s.handleVerify)
	return s, nil
}

// ServeHTTP serves the three endpoints; anything else is an LNURL error
// with 404.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Web wallets fetch these from other origins; the answers hold nothing
	// a cookie would protect.
	w.Header().Set("Access-Control-Allow-Origin", "*")
	if _, pattern := s.mux.Handler(r); pattern == "" {
		writeError(w, http.StatusNotFound, "no LNURL endpoint at "+r.URL.Path)
		return
	}
	s.mux.ServeHTTP(w, r)
}

// Address returns the lightning address of name on this server.
func (s *Server) Address(name string) string { return name + "@" + s.cfg.Domain }

// metadata returns the metadata string of name, or false for an unknown
// name.
func (s *Server) metadata(ctx context.Context, name string) (string, bool) {
	if validUser(name) != nil {
		return "", false
	}
	desc, ok := s.cfg.Lookup(ctx, name)
	if !ok {
		return "", false
	}
	return buildMetadata(desc, s.Address(name)), true
}

func (s *Server) handleParams(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	md, ok := s.metadata(r.Context(), name)
	if !ok {
		writeError(w, http.StatusNotFound, "unknown name "+strconv.Quote(name))
		return
	}
	writeJSON(w, http.StatusOK, payParams{
		Tag:         "payRequest",
		Callback:    s.base + "/lnurlp/" + name + "/callback",
		MinSendable: int64(s.cfg.Min),
		MaxSendable: int64(s.cfg.Max),
		Metadata:    md,
	})
}

func (s *Server) handleCallback(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	md, ok := s.metadata(r.Context(), name)
	if !ok {
		writeError(w, http.StatusNotFound, "unknown name "+strconv.Quote(name))
		return
	}
	raw := r.URL.Query().Get("amount")
	amount, err := strconv.ParseInt(raw, 10, 64)
	if err != nil {
		writeError(w, http.StatusBadRequest, "amount "+strconv.Quote(raw)+" is not a whole number of millisatoshis")
		return
	}
	if amount < int64(s.cfg.Min) || amount > int64(s.cfg.Max) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("amount %d msat is outside %d..%d msat", amount, int64(s.cfg.Min), int64(s.cfg.Max)))
		return
	}
	h := metadataHash(md)
	inv, err := s.cfg.Backend.CreateInvoice(r.Context(), backend.InvoiceRequest{
		Amount:            backend.MilliSat(amount),
		DescriptionHash:   &h,
		HashedDescription: md,
		Expiry:            s.cfg.Expiry,
	})
	if err != nil {
		s.log.Warn("lnurl: backend refused invoice", "name", name, "amount_msat", amount, "err", err)
		if errors.Is(err, backend.ErrUnsupported) {
			writeError(w, http.StatusInternalServerError,
				"this service's node cannot make invoices that commit to a description hash, which LNURL-pay requires")
			return
		}
		writeBackendError(w, "cannot create invoice", err)
		return
	}
	writeJSON(w, http.StatusOK, invoiceResponse{
		PR:     inv.PaymentRequest,
		Routes: []any{},
		Verify: s.base + "/lnurlp/" + name + "/verify/" + inv.PaymentHash.String() + "?k=" + s.mac(inv.PaymentHash),
	})
}

func (s *Server) handleVerify(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.metadata(r.Context(), r.PathValue("name")); !ok {
		writeError(w, http.StatusNotFound, "Not found")
		return
	}
	hash, err := backend.ParsePaymentHash(r.PathValue("hash"))
	if err != nil {
		writeError(w, http.StatusBadRequest, "not a payment hash: "+err.Error())
		return
	}
	got, err := hex.DecodeString(r.URL.Query().Get("k"))
	want, _ := hex.DecodeString(s.mac(hash))
	if err != nil || !hmac.Equal(got, want) {
		// Answered like an unknown invoice: the caller learns nothing about
		// invoices this server did not hand out.
		writeError(w, http.StatusNotFound, "Not found")
		return
	}
	inv, err := s.cfg.Backend.LookupInvoice(r.Context(), hash)
	if err != nil {
		if !errors.Is(err, backend.ErrNotFound) {
			s.log.Warn("lnurl: backend lookup failed", "hash", hash, "err", err)
		}
		writeBackendError(w, "cannot look up invoice", err)
		return
	}
	resp := verifyResponse{Status: "OK", Settled: inv.State == backend.StateSettled, PR: inv.PaymentRequest}
	// The preimage goes out only once paid: before that, it would let
	// anyone claim a payment that never happened.
	if resp.Settled && inv.Preimage != nil {
		p := inv.Preimage.String()
		resp.Preimage = &p
	}
	writeJSON(w, http.StatusOK, resp)
}

// mac is the verify URL's authenticator for hash: the first 16 bytes of
// HMAC-SHA256 under the server's key, in hex.
func (s *Server) mac(hash backend.PaymentHash) string {
	m := hmac.New(sha256.New, s.key)
	m.Write(hash[:])
	return hex.EncodeToString(m.Sum(nil)[:16])
}

// writeBackendError answers a backend failure with the status and the
// sentinel's text only: the node's own message may name internal hosts and
// is logged instead.
func writeBackendError(w http.ResponseWriter, what string, err error) {
	switch {
	case errors.Is(err, backend.ErrUnavailable):
		writeError(w, http.StatusServiceUnavailable, what+": "+backend.ErrUnavailable.Error()+", try again later")
	case errors.Is(err, backend.ErrNotFound):
		writeError(w, http.StatusNotFound, "Not found")
	case errors.Is(err, backend.ErrInvalid):
		writeError(w, http.StatusBadRequest, what+": "+backend.ErrInvalid.Error())
	default:
		writeError(w, http.StatusInternalServerError, what)
	}
}

func writeError(w http.ResponseWriter, code int, reason string) {
	writeJSON(w, code, statusResponse{Status: "ERROR", Reason: reason})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code = http.StatusInternalServerError
		b = []byte(`{"status":"ERROR","reason":"cannot encode answer"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}
