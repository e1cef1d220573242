package phoenixd

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/l402kit/l402kit/backend"
)

// generatedInvoice is /createinvoice's answer (GeneratedInvoice in Api.kt);
// amountSat is left out for an any-amount invoice.
type generatedInvoice struct {
	AmountSat   *int64 `json:"amountSat"`
	PaymentHash string `json:"paymentHash"`
	Serialized  string `json:"serialized"`
}

// incomingPayment is GET /payments/incoming/{paymentHash}'s answer
// (IncomingPayment in JsonSerializers.kt). Times are Unix milliseconds; fees
// is in millisatoshis, the *Sat fields in satoshis. Absent fields are null in
// phoenixd's model and left out of its JSON.
type incomingPayment struct {
	Type         string  `json:"type"`
	SubType      string  `json:"subType"`
	PaymentHash  string  `json:"paymentHash"`
	Preimage     string  `json:"preimage"`
	ExternalID   *string `json:"externalId"`
	Description  *string `json:"description"`
	Invoice      *string `json:"invoice"`
	IsPaid       bool    `json:"isPaid"`
	IsExpired    bool    `json:"isExpired"`
	RequestedSat *int64  `json:"requestedSat"`
	ReceivedSat  int64   `json:"receivedSat"`
	Fees         int64   `json:"fees"`
	PayerNote    *string `json:"payerNote"`
	PayerKey     *string `json:"payerKey"`
	ExpiresAt    *int64  `json:"expiresAt"`
	CompletedAt  *int64  `json:"completedAt"`
	CreatedAt    int64   `json:"createdAt"`
}

// invoice converts phoenixd's record. The BOLT11 string, when present, is
// the authority for amount, creation time and expiry: it carries millisatoshis
// and the exact times the payer sees, where phoenixd's JSON rounds amounts to
// satoshis and stamps its own database times.
func (p *incomingPayment) invoice(want backend.PaymentHash) (*backend.Invoice, error) {
	hash, err := backend.ParsePaymentHash(p.PaymentHash)
	if err != nil {
		return nil, fmt.Errorf("phoenixd: incoming payment has a bad paymentHash: %w", err)
	}
	if !want.IsZero() && hash != want {
		return nil, fmt.Errorf("phoenixd: asked for invoice %s, phoenixd answered %s", want, hash)
	}
	inv := &backend.Invoice{
		PaymentHash:    hash,
		AmountReceived: backend.Sat(p.ReceivedSat),
		State:          backend.StateOpen,
		CreatedAt:      time.UnixMilli(p.CreatedAt),
	}
	if p.Description != nil {
		inv.Memo = *p.Description
	}
	if p.RequestedSat != nil {
		inv.Amount = backend.Sat(*p.RequestedSat)
	}
	if p.ExpiresAt != nil {
		inv.ExpiresAt = time.UnixMilli(*p.ExpiresAt)
	}
	if p.Invoice != nil {
		inv.PaymentRequest = *p.Invoice
		if d, err := backend.DecodeInvoice(*p.Invoice); err == nil && d.PaymentHash == hash {
			inv.Amount = d.Amount
			inv.CreatedAt = d.CreatedAt
			inv.ExpiresAt = d.ExpiresAt()
			if p.Description == nil {
				inv.Memo = d.Memo
			}
		}
	}
	if p.Preimage != "" {
		pre, err := backend.ParsePreimage(p.Preimage)
		if err != nil {
			return nil, fmt.Errorf("phoenixd: incoming payment %s has a bad preimage: %w", hash, err)
		}
		if pre.Matches(hash) {
			inv.Preimage = &pre
		}
	}
	if p.IsPaid {
		inv.State = backend.StateSettled
		if p.CompletedAt != nil {
			inv.SettledAt = time.UnixMilli(*p.CompletedAt)
		}
	}
	return inv, nil
}

// paymentResult is /payinvoice's answer: PaymentSent on success, or
// PaymentFailed ({"paymentHash", "reason"}), both with HTTP 200.
type paymentResult struct {
	RecipientAmountSat *int64  `json:"recipientAmountSat"`
	RoutingFeeSat      *int64  `json:"routingFeeSat"`
	PaymentID          string  `json:"paymentId"`
	PaymentHash        string  `json:"paymentHash"`
	PaymentPreimage    string  `json:"paymentPreimage"`
	Reason             *string `json:"reason"`
}

// payment reads a PaymentSent answer (of /payinvoice or /payoffer): a
// PaymentFailed, or an answer without a preimage, is ErrPaymentFailed; a
// preimage that does not parse leaves the outcome unknown.
func (r *paymentResult) payment() (*backend.Payment, error) {
	if r.Reason != nil || r.PaymentPreimage == "" {
		reason := "no preimage in the answer"
		if r.Reason != nil {
			reason = *r.Reason
		}
		return nil, fmt.Errorf("phoenixd: %w: %s", backend.ErrPaymentFailed, reason)
	}
	pre, err := backend.ParsePreimage(r.PaymentPreimage)
	if err != nil {
		return nil, fmt.Errorf("phoenixd: %w: payment answered a bad preimage: %v", backend.ErrPaymentUnknown, err)
	}
	pay := &backend.Payment{Preimage: pre}
	if r.RecipientAmountSat != nil {
		pay.Amount = backend.Sat(*r.RecipientAmountSat)
	}
	if r.RoutingFeeSat != nil {
		pay.Fee = backend.Sat(*r.RoutingFeeSat)
	}
	return pay, nil
}

// nodeInfo is GET /getinfo's answer (NodeInfo in JsonSerializers.kt). chain,
// blockHeight and version appear in 0.8.0's source; the documented example
// shows only nodeId and channels, so they are optional here.
type nodeInfo struct {
	NodeID   string `json:"nodeId"`
	Channels []struct {
		State               string `json:"state"`
		ChannelID           string `json:"channelId"`
		BalanceSat          *int64 `json:"balanceSat"`
		InboundLiquiditySat *int64 `json:"inboundLiquiditySat"`
		CapacitySat         *int64 `json:"capacitySat"`
		FundingTxID         string `json:"fundingTxId"`
	} `json:"channels"`
	Chain       *string `json:"chain"`
	BlockHeight *int64  `json:"blockHeight"`
	Version     *string `json:"version"`
}

func (n *nodeInfo) nodeInfo() *backend.NodeInfo {
	info := &backend.NodeInfo{NodeID: n.NodeID}
	if n.Chain != nil {
		info.Network = network(*n.Chain)
	}
	if n.BlockHeight != nil && *n.BlockHeight > 0 && *n.BlockHeight <= math.MaxUint32 {
		info.BlockHeight = uint32(*n.BlockHeight)
		info.Synced = true
	}
	return info
}

// network maps phoenixd's chain name (lightning-kmp's Chain name lowercased:
// "mainnet", "testnet3", "testnet4", "regtest") to backend's names. Both
// testnets use the lntb invoice prefix, hence one name.
func network(chain string) string {
	switch c := strings.ToLower(chain); {
	case c == "mainnet" || c == "regtest" || c == "signet":
		return c
	case strings.HasPrefix(c, "testnet"):
		return "testnet"
	default:
		return c
	}
}

// call does one API call and decodes a 200 answer into out. A form goes in
// the body of a POST as application/x-www-form-urlencoded, as phoenixd reads
// it with receiveParameters.
func (c *driver) call(ctx context.Context, method, path string, form url.Values, out any) error {
	req, err := c.api.Request(ctx, method, path, form)
	if err != nil {
		return fmt.Errorf("phoenixd: %w: %v", backend.ErrInvalid, err)
	}
	req.Header.Set("Accept", "application/json")
	status, data, err := c.api.Do(req, maxBody)
	if err != nil {
		return c.transportError(ctx, path, err)
	}
	if status != http.StatusOK {
		return statusError(path, status, data)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("phoenixd: %w: %s: answer is not the JSON phoenixd sends: %v (body %q)", backend.ErrUnavailable, path, err, snippet(data))
	}
	return nil
}
