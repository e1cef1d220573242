package memory

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/l402kit/l402kit/backend"
)

// DevPayPath is where the reference proxy mounts DevPayHandler, only when it
// runs on the memory backend.
const DevPayPath = "/l402/dev/pay"

// DevScheme names a payer that pays through a demo proxy's dev endpoint:
// memory+dev://127.0.0.1:8402 (add ?tls=1 for https).
const DevScheme = "memory+dev"

// DevPayHandler pays invoices of n on request: POST with form field
// "invoice", answered with JSON {"preimage","payment_hash","amount_msat"}.
// It is a development aid that lets a person try the L402 flow with curl
// against a memory node, which no outside wallet can pay. Never serve it in
// front of a real node: it would pay anyone's invoice with the node's money;
// that is why it takes a *Node and nothing else.
func DevPayHandler(n *Node) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			devError(w, http.StatusMethodNotAllowed, errors.New("use POST with form field invoice"))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
		bolt11 := strings.TrimSpace(r.FormValue("invoice"))
		if bolt11 == "" {
			devError(w, http.StatusBadRequest, errors.New("form field invoice is required"))
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
		defer cancel()
		p, err := n.PayInvoice(ctx, bolt11, backend.PayOptions{})
		if err != nil {
			status := http.StatusConflict
			switch {
			case errors.Is(err, backend.ErrInvalid):
				status = http.StatusBadRequest
			case errors.Is(err, backend.ErrUnavailable):
				status = http.StatusServiceUnavailable
			}
			devError(w, status, err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(devPayResponse{
			Preimage:    p.Preimage.String(),
			PaymentHash: p.PaymentHash.String(),
			AmountMsat:  int64(p.Amount),
		})
	})
}

type devPayResponse struct {
	Preimage    string `json:"preimage"`
	PaymentHash string `json:"payment_hash"`
	AmountMsat  int64  `json:"amount_msat"`
	Error       string `json:"error,omitempty"`
}

func devError(w http.ResponseWriter, status int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
}

// DevPayer pays invoices through a demo proxy's DevPayHandler. It is a
// backend only so it can be opened by URL where a payer is configured; it
// creates and looks up no invoices (ErrUnsupported).
type DevPayer struct {
	endpoint string
	client   *http.Client
}

// NewDevPayer returns a payer posting to endpoint (a full URL ending in
// DevPayPath). A nil client means http.DefaultClient.
func NewDevPayer(endpoint string, client *http.Client) *DevPayer {
	if client == nil {
		client = http.DefaultClient
	}
	return &DevPayer{endpoint: endpoint, client: client}
}

func openDevURL(_ context.Context, u *url.URL) (backend.Backend, error) {
	if u.Host == "" {
		return nil, fmt.Errorf("memory: %w: want %s://HOST:PORT", backend.ErrInvalid, DevScheme)
	}
	scheme := "http"
	if u.Query().Get("tls") == "1" {
		scheme = "https"
	}
	return NewDevPayer(scheme+"://"+u.Host+DevPayPath, nil), nil
}

// PayInvoice implements backend.Payer.
func (d *DevPayer) PayInvoice(ctx context.Context, bolt11 string, opts backend.PayOptions) (*backend.Payment, error) {
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	form := url.Values{"invoice": {bolt11}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("memory+dev: %w: %v", backend.ErrInvalid, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := d.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("memory+dev: %w: %v", backend.ErrUnavailable, err)
	}
	defer resp.Body.Close()
	var body devPayResponse
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&body); err != nil {
		return nil, fmt.Errorf("memory+dev: %w: dev endpoint answered %s with no JSON: %v", backend.ErrPaymentFailed, resp.Status, err)
	}
	if resp.StatusCode != http.StatusOK {
		sentinel := backend.ErrPaymentFailed
		switch resp.StatusCode {
		case http.StatusBadRequest:
			sentinel = backend.ErrInvalid
		case http.StatusServiceUnavailable, http.StatusNotFound:
			sentinel = backend.ErrUnavailable
		}
		return nil, fmt.Errorf("memory+dev: %w: %s", sentinel, body.Error)
	}
	pre, err := backend.ParsePreimage(body.Preimage)
	if err != nil {
		return nil, fmt.Errorf("memory+dev: %w: dev endpoint sent a bad preimage: %v", backend.ErrPaymentFailed, err)
	}
	dec, err := backend.DecodeInvoice(bolt11)
	if err != nil {
		return nil, fmt.Errorf("memory+dev: %w", err)
	}
	if !pre.Matches(dec.PaymentHash) {
		return nil, fmt.Errorf("memory+dev: %w: preimage does not match the invoice's payment hash", backend.ErrPaymentFailed)
	}
	return &backend.Payment{PaymentHash: dec.PaymentHash, Preimage: pre, Amount: backend.MilliSat(body.AmountMsat)}, nil
}

// CreateInvoice is not offered by a DevPayer.
func (d *DevPayer) CreateInvoice(context.Context, backend.InvoiceRequest) (*backend.Invoice, error) {
	return nil, fmt.Errorf("memory+dev: %w: a dev payer only pays", backend.ErrUnsupported)
}

// LookupInvoice is not offered by a DevPayer.
func (d *DevPayer) LookupInvoice(context.Context, backend.PaymentHash) (*backend.Invoice, error) {
	return nil, fmt.Errorf("memory+dev: %w: a dev payer only pays", backend.ErrUnsupported)
}

// Close implements backend.Backend.
func (d *DevPayer) Close() error { return nil }
