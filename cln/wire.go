package cln

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// The types below are Core Lightning's JSON, field for field as
// doc/schemas/*.json (v26.06) names them; only the fields the adapter reads
// are declared. The holdinvoice types follow BoltzExchange/hold v0.3.x.

// Msat is an amount in millisatoshis as Core Lightning writes it: an integer
// since v23. Older nodes wrote strings such as "1000msat"; those decode too.
type Msat int64

// UnmarshalJSON accepts 1000, "1000", "1000msat" and "1sat".
func (m *Msat) UnmarshalJSON(b []byte) error {
	s := strings.TrimSpace(string(b))
	if s == "null" {
		return nil
	}
	if strings.HasPrefix(s, `"`) {
		var str string
		if err := json.Unmarshal(b, &str); err != nil {
			return err
		}
		mult := int64(1)
		switch {
		case strings.HasSuffix(str, "msat"):
			str = strings.TrimSuffix(str, "msat")
		case strings.HasSuffix(str, "sat"):
			str, mult = strings.TrimSuffix(str, "sat"), 1000
		}
		v, err := strconv.ParseInt(str, 10, 64)
		if err != nil {
			return fmt.Errorf("msat amount %q: %w", s, err)
		}
		*m = Msat(v * mult)
		return nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return fmt.Errorf("msat amount %s: %w", s, err)
	}
	*m = Msat(v)
	return nil
}

// invoiceParams is the request of the invoice method.
type invoiceParams struct {
	AmountMsat  any    `json:"amount_msat"` // integer, or "any"
	Label       string `json:"label"`
	Description string `json:"description"`
	Expiry      int64  `json:"expiry,omitempty"`
	Preimage    string `json:"preimage,omitempty"`
	// DescHashOnly puts the SHA-256 of Description in the invoice (h)
	// instead of the text (d); the text may then exceed 639 bytes.
	DescHashOnly bool `json:"deschashonly,omitempty"`
}

// invoiceResult is the response of the invoice method.
type invoiceResult struct {
	Bolt11        string `json:"bolt11"`
	PaymentHash   string `json:"payment_hash"`
	PaymentSecret string `json:"payment_secret"`
	ExpiresAt     int64  `json:"expires_at"`
	CreatedIndex  uint64 `json:"created_index"`
}

// invoiceFields is one invoice as listinvoices, waitinvoice and delinvoice
// report it (and as the data of waitinvoice's 903 error).
type invoiceFields struct {
	Label              string `json:"label"`
	Bolt11             string `json:"bolt11"`
	Bolt12             string `json:"bolt12"`
	PaymentHash        string `json:"payment_hash"`
	AmountMsat         *Msat  `json:"amount_msat"`
	Status             string `json:"status"` // "unpaid", "paid", "expired"
	PayIndex           uint64 `json:"pay_index"`
	AmountReceivedMsat *Msat  `json:"amount_received_msat"`
	PaidAt             int64  `json:"paid_at"`
	PaymentPreimage    string `json:"payment_preimage"`
	Description        string `json:"description"`
	ExpiresAt          int64  `json:"expires_at"`
	CreatedIndex       uint64 `json:"created_index"`
	UpdatedIndex       uint64 `json:"updated_index"`
}

// listInvoicesResult is the response of listinvoices.
type listInvoicesResult struct {
	Invoices []invoiceFields `json:"invoices"`
}

// payParams is the request of pay.
type payParams struct {
	Bolt11     string `json:"bolt11"`
	AmountMsat int64  `json:"amount_msat,omitempty"`
	MaxFee     int64  `json:"maxfee,omitempty"`
	RetryFor   int64  `json:"retry_for,omitempty"`
}

// payResult is the response of pay.
type payResult struct {
	PaymentPreimage string  `json:"payment_preimage"`
	PaymentHash     string  `json:"payment_hash"`
	Destination     string  `json:"destination"`
	CreatedAt       float64 `json:"created_at"`
	Parts           uint32  `json:"parts"`
	AmountMsat      Msat    `json:"amount_msat"`
	AmountSentMsat  Msat    `json:"amount_sent_msat"`
	Status          string  `json:"status"` // "complete", "pending", "failed"
}

// xpayParams is the request of xpay (v24.11 and later).
type xpayParams struct {
	Invstring  string `json:"invstring"`
	AmountMsat int64  `json:"amount_msat,omitempty"`
	MaxFee     int64  `json:"maxfee,omitempty"`
	RetryFor   int64  `json:"retry_for,omitempty"`
}

// xpayResult is the response of xpay.
type xpayResult struct {
	PaymentPreimage string `json:"payment_preimage"`
	FailedParts     uint64 `json:"failed_parts"`
	SuccessfulParts uint64 `json:"successful_parts"`
	AmountMsat      Msat   `json:"amount_msat"`
	AmountSentMsat  Msat   `json:"amount_sent_msat"`
}

// listPaysEntry is one payment (all its parts) as listpays reports it.
type listPaysEntry struct {
	PaymentHash    string  `json:"payment_hash"`
	Status         string  `json:"status"` // "pending", "failed", "complete"
	CreatedAt      float64 `json:"created_at"`
	AmountMsat     Msat    `json:"amount_msat"`      // complete only
	AmountSentMsat Msat    `json:"amount_sent_msat"` // complete and failed
	Preimage       string  `json:"preimage"`         // complete only
}

// listPaysResult is the response of listpays.
type listPaysResult struct {
	Pays []listPaysEntry `json:"pays"`
}

// getinfoResult is the response of getinfo.
type getinfoResult struct {
	ID                    string `json:"id"`
	Alias                 string `json:"alias"`
	Color                 string `json:"color"`
	Version               string `json:"version"`
	BlockHeight           uint32 `json:"blockheight"`
	Network               string `json:"network"`
	NumPeers              int    `json:"num_peers"`
	NumActiveChannels     int    `json:"num_active_channels"`
	FeesCollectedMsat     Msat   `json:"fees_collected_msat"`
	WarningBitcoindSync   string `json:"warning_bitcoind_sync"`
	WarningLightningdSync string `json:"warning_lightningd_sync"`
}

// helpResult is the response of help.
type helpResult struct {
	Help []struct {
		Command string `json:"command"`
	} `json:"help"`
}

// holdInvoiceResult is the response of signinvoice (and of the hold
// plugin's holdinvoice).
type holdInvoiceResult struct {
	Bolt11 string `json:"bolt11"`
}

// holdHTLC is one HTLC paying a hold invoice.
type holdHTLC struct {
	ID         int64  `json:"id"`
	InvoiceID  int64  `json:"invoice_id"`
	State      string `json:"state"` // "accepted", "paid", "cancelled"
	SCID       string `json:"scid"`
	ChannelID  int64  `json:"channel_id"`
	Msat       int64  `json:"msat"`
	CLTVExpiry *int64 `json:"cltv_expiry"`
	CreatedAt  string `json:"created_at"`
}

// holdInvoice is one entry of listholdinvoices.
type holdInvoice struct {
	ID          int64      `json:"id"`
	PaymentHash string     `json:"payment_hash"`
	Preimage    string     `json:"preimage"`
	Invoice     string     `json:"invoice"`
	State       string     `json:"state"` // "unpaid", "accepted", "paid", "cancelled"
	MinCLTV     *int64     `json:"min_cltv"`
	CreatedAt   string     `json:"created_at"`
	SettledAt   string     `json:"settled_at"`
	HTLCs       []holdHTLC `json:"htlcs"`
}

// listHoldInvoicesResult is the response of listholdinvoices.
type listHoldInvoicesResult struct {
	HoldInvoices []holdInvoice `json:"holdinvoices"`
}

// naiveTimeLayout is how the hold plugin writes times: chrono's NaiveDateTime
// (no zone; the plugin stores UTC).
const naiveTimeLayout = "2006-01-02T15:04:05.999999999"

// parseNaiveTime reads a hold plugin time as UTC; empty is the zero time.
func parseNaiveTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.ParseInLocation(naiveTimeLayout, s, time.UTC)
	if err != nil {
		return time.Time{}, fmt.Errorf("hold plugin time %q: %w", s, err)
	}
	return t, nil
}
