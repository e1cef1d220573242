package memory

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/internal/plumbing/nodeurl"
)

// DevPayPath is where the reference proxy mounts DevPayHandler, only when it
// runs on the memory backend.
const DevPayPath = "/l402/dev/pay"

// DevScheme names a payer that pays through a demo proxy's dev endpoint:
// memory+dev://127.0.0.1:8402 (add ?tls=1 for https).
//
// The dev endpoint and its payer are a production feature of the demo, not a
// test fake: they let a person try the L402 flow by hand against a memory
// node, which no outside wallet can pay.
const DevScheme = "memory+dev"

// DevPayHandler pays invoices of n on request: POST with form field
// "invoice", answered with JSON {"preimage","payment_hash","amount_msat"}.
// It is a development aid that lets a person try the L402 flow with curl
// against a memory node, which no outside wallet can pay. Never serve it in
// front of a real node: it would pay anyone's invoice with the node's money;
// that is why it takes a *Node and nothing else.
func DevPayHandler(n *Node) http.Handler {
	b := backend.New(n.n, backend.Options{})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			serveFind(n.n, w, r)
			return
		}
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost+", "+http.MethodGet)
			devError(w, http.StatusMethodNotAllowed, errors.New("use POST with form field invoice"))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
		bolt11 := backend.TrimInvoice(r.FormValue("invoice"))
		if bolt11 == "" {
			devError(w, http.StatusBadRequest, errors.New("form field invoice is required"))
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
		defer cancel()
		p, err := b.PayInvoice(ctx, bolt11, backend.PayOptions{})
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
// driver only so it can be opened by URL where a payer is configured; it
// creates and looks up no invoices (ErrUnsupported).
type DevPayer struct {
	endpoint string
	client   *http.Client
}

// NewDevPayer returns a Backend paying through the DevPayHandler at
// endpoint (a full URL ending in DevPayPath). A nil client means one of its
// own.
func NewDevPayer(endpoint string, client *http.Client) *backend.Backend {
	return backend.New(newDevPayer(endpoint, client), backend.Options{})
}

func newDevPayer(endpoint string, client *http.Client) *DevPayer {
	if client == nil {
		client = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	}
	return &DevPayer{endpoint: endpoint, client: client}
}

func openDevURL(_ context.Context, u *url.URL) (backend.Driver, error) {
	if u.Host == "" {
		return nil, fmt.Errorf("memory: %w: want %s://HOST:PORT", backend.ErrInvalid, DevScheme)
	}
	q := nodeurl.New(DevScheme, u)
	on, conf, err := q.TLS(false)
	if err != nil {
		return nil, err
	}
	if err := q.Done(); err != nil {
		return nil, err
	}
	scheme := "http"
	var client *http.Client
	if on {
		scheme = "https"
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = conf
		client = &http.Client{Transport: tr}
	}
	return newDevPayer(scheme+"://"+u.Host+DevPayPath, client), nil
}

// PayInvoice implements backend.Payer. The dev endpoint pays no fee.
func (d *DevPayer) PayInvoice(ctx context.Context, bolt11 string, _ backend.PayOptions) (*backend.Payment, error) {
	form := url.Values{"invoice": {bolt11}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("memory+dev: %w: %v", backend.ErrInvalid, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := d.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("memory+dev: %w: %v", devSendError(err), err)
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
		return nil, fmt.Errorf("memory+dev: %w: dev endpoint sent a bad preimage: %v", backend.ErrPaymentUnknown, err)
	}
	return &backend.Payment{Preimage: pre, Amount: backend.MilliSat(body.AmountMsat)}, nil
}

// devSendError says whether a failed POST may have reached the endpoint: a
// refused or failed dial never did, so the payment did not start.
func devSendError(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return backend.ErrUnavailable
	}
	return backend.ErrPaymentUnknown
}

// LimitsFees implements backend.FeeLimiter: a memory node pays no fee.
func (d *DevPayer) LimitsFees() {}

// Ping implements backend.Pinger: any HTTP answer from the dev endpoint
// (it answers GET with 405) shows the demo proxy is up.
func (d *DevPayer) Ping(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.endpoint, nil)
	if err != nil {
		return fmt.Errorf("memory+dev: %w: %v", backend.ErrInvalid, err)
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return fmt.Errorf("memory+dev: %w: %v", backend.ErrUnavailable, err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return fmt.Errorf("memory+dev: %w: %s answered 404: not a demo proxy on the memory backend", backend.ErrUnavailable, d.endpoint)
	}
	return nil
}

// CreateInvoice is not offered by a DevPayer.
func (d *DevPayer) CreateInvoice(context.Context, backend.InvoiceRequest) (*backend.Invoice, error) {
	return nil, fmt.Errorf("memory+dev: %w: a dev payer only pays", backend.ErrUnsupported)
}

// LookupInvoice is not offered by a DevPayer.
func (d *DevPayer) LookupInvoice(context.Context, backend.PaymentHash) (*backend.Invoice, error) {
	return nil, fmt.Errorf("memory+dev: %w: a dev payer only pays", backend.ErrUnsupported)
}

// Close implements backend.Driver.
func (d *DevPayer) Close() error {
	d.client.CloseIdleConnections()
	return nil
}
