package eclairfake

import (
	"encoding/hex"
	"fmt"
	"time"

	"github.com/btcsuite/btcd/chaincfg"

	"github.com/l402kit/l402kit/backend"
)

// timestamp is Eclair's TimestampJson: ISO-8601 UTC as Java's
// DateTimeFormatter.ISO_INSTANT prints it, and whole unix seconds.
type timestamp struct {
	ISO  string `json:"iso"`
	Unix int64  `json:"unix"`
}

// millis renders t at millisecond precision (TimestampMilli). ISO_INSTANT
// prints no fraction when it is zero and three digits otherwise, unlike Go's
// RFC3339Nano, which trims trailing zeros.
func millis(t time.Time) timestamp {
	t = t.UTC().Truncate(time.Millisecond)
	iso := t.Format("2006-01-02T15:04:05")
	if ms := t.Nanosecond() / int(time.Millisecond); ms != 0 {
		iso += fmt.Sprintf(".%03d", ms)
	}
	return timestamp{ISO: iso + "Z", Unix: t.Unix()}
}

// invoiceJSON is Eclair's InvoiceSerializer output for a BOLT11 invoice.
// Optional fields are omitted when the invoice lacks them, as Eclair omits
// them.
type invoiceJSON struct {
	Prefix             string       `json:"prefix"`
	Timestamp          int64        `json:"timestamp"`
	NodeID             string       `json:"nodeId"`
	Serialized         string       `json:"serialized"`
	Description        *string      `json:"description,omitempty"`
	DescriptionHash    string       `json:"descriptionHash,omitempty"`
	PaymentHash        string       `json:"paymentHash"`
	Expiry             int64        `json:"expiry"`
	MinFinalCltvExpiry int          `json:"minFinalCltvExpiry"`
	Amount             *int64       `json:"amount,omitempty"`
	Features           featuresJSON `json:"features"`
	RoutingInfo        []any        `json:"routingInfo"`
}

type featuresJSON struct {
	Activated map[string]string `json:"activated"`
}

var prefixByNetwork = map[string]string{
	"regtest": "lnbcrt",
	"mainnet": "lnbc",
	"testnet": "lntb",
	"signet":  "lntbs",
	"simnet":  "lnsb",
}

// minFinalCltvExpiry is what the memory node writes into its invoices.
const minFinalCltvExpiry = 80

func newInvoiceJSON(bolt11 string) (*invoiceJSON, error) {
	d, err := backend.DecodeInvoice(bolt11)
	if err != nil {
		return nil, err
	}
	j := &invoiceJSON{
		Prefix:             prefixByNetwork[d.Network],
		Timestamp:          d.CreatedAt.Unix(),
		NodeID:             d.Payee,
		Serialized:         bolt11,
		PaymentHash:        d.PaymentHash.String(),
		Expiry:             int64(d.Expiry / time.Second),
		MinFinalCltvExpiry: minFinalCltvExpiry,
		Features: featuresJSON{Activated: map[string]string{
			"var_onion_optin": "mandatory",
			"payment_secret":  "mandatory",
		}},
		RoutingInfo: []any{},
	}
	if d.DescriptionHash != nil {
		j.DescriptionHash = hex.EncodeToString(d.DescriptionHash[:])
	} else {
		memo := d.Memo
		j.Description = &memo
	}
	if d.Amount > 0 {
		a := int64(d.Amount)
		j.Amount = &a
	}
	return j, nil
}

// incomingPayment is getreceivedinfo's IncomingStandardPayment.
type incomingPayment struct {
	Invoice         *invoiceJSON   `json:"invoice"`
	PaymentPreimage string         `json:"paymentPreimage"`
	PaymentType     string         `json:"paymentType"`
	CreatedAt       timestamp      `json:"createdAt"`
	Status          incomingStatus `json:"status"`
}

// incomingStatus: {"type":"pending"}, {"type":"expired"} or
// {"type":"received","amount":msat,"receivedAt":{...}}.
type incomingStatus struct {
	Type       string     `json:"type"`
	Amount     *int64     `json:"amount,omitempty"`
	ReceivedAt *timestamp `json:"receivedAt,omitempty"`
}

// outgoingPayment is one record of getsentinfo's list.
type outgoingPayment struct {
	ID              string         `json:"id"`
	ParentID        string         `json:"parentId"`
	ExternalID      string         `json:"externalId,omitempty"`
	PaymentHash     string         `json:"paymentHash"`
	PaymentType     string         `json:"paymentType"`
	Amount          int64          `json:"amount"`
	RecipientAmount int64          `json:"recipientAmount"`
	RecipientNodeID string         `json:"recipientNodeId"`
	CreatedAt       timestamp      `json:"createdAt"`
	Invoice         *invoiceJSON   `json:"invoice,omitempty"`
	Status          outgoingStatus `json:"status"`
}

// outgoingStatus: {"type":"pending"},
// {"type":"sent","paymentPreimage","feesPaid","route","completedAt"} or
// {"type":"failed","failures":[...],"completedAt"}.
type outgoingStatus struct {
	Type            string           `json:"type"`
	PaymentPreimage string           `json:"paymentPreimage,omitempty"`
	FeesPaid        *int64           `json:"feesPaid,omitempty"`
	Route           *[]any           `json:"route,omitempty"` // present, maybe empty, once sent
	Failures        []failureSummary `json:"failures,omitempty"`
	CompletedAt     *timestamp       `json:"completedAt,omitempty"`
}

// failureSummary is Eclair's FailureSummary.
type failureSummary struct {
	FailureType    string `json:"failureType"`
	FailureMessage string `json:"failureMessage"`
	FailedRoute    []any  `json:"failedRoute"`
}

// receivedPart is one part of a payment-received event.
type receivedPart struct {
	ChannelID    string    `json:"channelId"`
	RemoteNodeID string    `json:"remoteNodeId"`
	Amount       int64     `json:"amount"`
	ReceivedAt   timestamp `json:"receivedAt"`
}

type paymentReceivedEvent struct {
	Type        string         `json:"type"`
	PaymentHash string         `json:"paymentHash"`
	Parts       []receivedPart `json:"parts"`
}

type sentPart struct {
	ID             string    `json:"id"`
	ChannelID      string    `json:"channelId"`
	NextNodeID     string    `json:"nextNodeId"`
	AmountWithFees int64     `json:"amountWithFees"`
	Fees           int64     `json:"fees"`
	Route          []any     `json:"route"`
	StartedAt      timestamp `json:"startedAt"`
	SettledAt      timestamp `json:"settledAt"`
}

type paymentSentEvent struct {
	Type            string     `json:"type"`
	ID              string     `json:"id"`
	PaymentHash     string     `json:"paymentHash"`
	PaymentPreimage string     `json:"paymentPreimage"`
	RecipientAmount int64      `json:"recipientAmount"`
	RecipientNodeID string     `json:"recipientNodeId"`
	Parts           []sentPart `json:"parts"`
	Fees            int64      `json:"fees"`
	StartedAt       timestamp  `json:"startedAt"`
	SettledAt       timestamp  `json:"settledAt"`
}

type paymentFailure struct {
	Amount int64  `json:"amount"`
	Route  []any  `json:"route"`
	T      string `json:"t"`
}

type paymentFailedEvent struct {
	Type        string           `json:"type"`
	ID          string           `json:"id"`
	PaymentHash string           `json:"paymentHash"`
	Failures    []paymentFailure `json:"failures"`
	StartedAt   timestamp        `json:"startedAt"`
	SettledAt   timestamp        `json:"settledAt"`
}

// getInfoJSON is getinfo's GetInfoResponse.
type getInfoJSON struct {
	Version         string       `json:"version"`
	NodeID          string       `json:"nodeId"`
	Alias           string       `json:"alias"`
	Color           string       `json:"color"`
	Features        featuresJSON `json:"features"`
	ChainHash       string       `json:"chainHash"`
	Network         string       `json:"network"`
	BlockHeight     uint32       `json:"blockHeight"`
	PublicAddresses []string     `json:"publicAddresses"`
	InstanceID      string       `json:"instanceId"`
}

// chainHash is the genesis block hash in Eclair's byte order (the raw
// bytes, not Bitcoin Core's reversed display order).
func chainHash(network string) string {
	params := map[string]*chaincfg.Params{
		"mainnet": &chaincfg.MainNetParams,
		"testnet": &chaincfg.TestNet3Params,
		"signet":  &chaincfg.SigNetParams,
		"simnet":  &chaincfg.SimNetParams,
	}[network]
	if params == nil {
		params = &chaincfg.RegressionNetParams
	}
	return hex.EncodeToString(params.GenesisHash[:])
}
