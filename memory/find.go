package memory

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/internal/plumbing/memnode"
)

// serveFind answers GET DevPayPath?payment_hash=HEX for DevPayer.FindPayment:
// 200 with the payment, 404 unknown hash, 409 failed, 202 not decided. It
// reveals the preimages of settled invoices, which is no more than the
// dev endpoint gives away already (it pays any invoice of the node).
func serveFind(n *memnode.Node, w http.ResponseWriter, r *http.Request) {
	hash, err := backend.ParsePaymentHash(r.URL.Query().Get("payment_hash"))
	if err != nil {
		devError(w, http.StatusBadRequest, err)
		return
	}
	p, err := n.FindPayment(r.Context(), hash)
	if err != nil {
		status := http.StatusAccepted
		switch backend.Kind(err) {
		case backend.ErrNotFound:
			status = http.StatusNotFound
		case backend.ErrPaymentFailed:
			status = http.StatusConflict
		}
		devError(w, status, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(devPayResponse{Preimage: p.Preimage.String(), PaymentHash: hash.String(), AmountMsat: int64(p.Amount)})
}

// FindPayment asks the dev endpoint what became of the payment of hash
// (see the node's own FindPayment, which memory Backends have).
func (d *DevPayer) FindPayment(ctx context.Context, hash backend.PaymentHash) (*backend.Payment, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.endpoint+"?"+url.Values{"payment_hash": {hash.String()}}.Encode(), nil)
	if err != nil {
		return nil, fmt.Errorf("memory+dev: %w: %v", backend.ErrInvalid, err)
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("memory+dev: %w: %v", backend.ErrUnavailable, err)
	}
	defer resp.Body.Close()
	var body devPayResponse
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&body); err != nil {
		return nil, fmt.Errorf("memory+dev: %w: dev endpoint answered %s with no JSON: %v", backend.ErrUnavailable, resp.Status, err)
	}
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		return nil, fmt.Errorf("memory+dev: %w: %s", backend.ErrNotFound, body.Error)
	case http.StatusConflict:
		return nil, fmt.Errorf("memory+dev: %w: %s", backend.ErrPaymentFailed, body.Error)
	default:
		return nil, fmt.Errorf("memory+dev: %w: %s", backend.ErrPaymentUnknown, body.Error)
	}
	pre, err := backend.ParsePreimage(body.Preimage)
	if err != nil || !pre.Matches(hash) {
		return nil, fmt.Errorf("memory+dev: %w: dev endpoint sent a bad preimage", backend.ErrPaymentUnknown)
	}
	return &backend.Payment{PaymentHash: hash, Preimage: pre, Amount: backend.MilliSat(body.AmountMsat)}, nil
}
