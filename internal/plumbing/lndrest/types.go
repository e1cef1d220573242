package lndrest

// Invoice is lnrpc.Invoice: the body of POST /v1/invoices and the answer of
// lookups and invoice subscriptions.
type Invoice struct {
	Memo            string `json:"memo,omitempty"`
	RPreimage       []byte `json:"r_preimage,omitempty"`
	RHash           []byte `json:"r_hash,omitempty"`
	ValueMsat       int64  `json:"value_msat,string,omitempty"`
	CreationDate    int64  `json:"creation_date,string,omitempty"`
	SettleDate      int64  `json:"settle_date,string,omitempty"`
	PaymentRequest  string `json:"payment_request,omitempty"`
	DescriptionHash []byte `json:"description_hash,omitempty"`
	Expiry          int64  `json:"expiry,string,omitempty"`
	AmtPaidMsat     int64  `json:"amt_paid_msat,string,omitempty"`
	State           string `json:"state,omitempty"`
}

// Invoice states (lnrpc.Invoice.InvoiceState).
const (
	InvoiceOpen     = "OPEN"
	InvoiceSettled  = "SETTLED"
	InvoiceCanceled = "CANCELED"
	InvoiceAccepted = "ACCEPTED" // a hold invoice whose HTLCs arrived
)

// AddInvoiceResponse answers POST /v1/invoices.
type AddInvoiceResponse struct {
	RHash          []byte `json:"r_hash"`
	PaymentRequest string `json:"payment_request"`
}

// AddHoldInvoiceRequest is the body of POST /v2/invoices/hodl.
type AddHoldInvoiceRequest struct {
	Memo            string `json:"memo,omitempty"`
	Hash            []byte `json:"hash"`
	ValueMsat       int64  `json:"value_msat,string,omitempty"`
	DescriptionHash []byte `json:"description_hash,omitempty"`
	Expiry          int64  `json:"expiry,string,omitempty"`
}

// AddHoldInvoiceResponse answers POST /v2/invoices/hodl.
type AddHoldInvoiceResponse struct {
	PaymentRequest string `json:"payment_request"`
}

// SettleInvoiceRequest is the body of POST /v2/invoices/settle.
type SettleInvoiceRequest struct {
	Preimage []byte `json:"preimage"`
}

// CancelInvoiceRequest is the body of POST /v2/invoices/cancel.
type CancelInvoiceRequest struct {
	PaymentHash []byte `json:"payment_hash"`
}

// SendPaymentRequest is the body of POST /v2/router/send (routerrpc
// SendPaymentV2).
type SendPaymentRequest struct {
	PaymentRequest string `json:"payment_request"`
	AmtMsat        int64  `json:"amt_msat,string,omitempty"`
	FeeLimitMsat   int64  `json:"fee_limit_msat,string,omitempty"`
	TimeoutSeconds int32  `json:"timeout_seconds"`
	// NoInflightUpdates asks for the final update only.
	NoInflightUpdates bool `json:"no_inflight_updates,omitempty"`
}

// Payment is lnrpc.Payment, one message of the /v2/router/send and
// /v2/router/track streams. Its hash and preimage are hex strings, not
// bytes, in LND's API.
type Payment struct {
	PaymentHash     string `json:"payment_hash"`
	PaymentPreimage string `json:"payment_preimage"`
	ValueMsat       int64  `json:"value_msat,string"`
	FeeMsat         int64  `json:"fee_msat,string"`
	Status          string `json:"status"`
	FailureReason   string `json:"failure_reason"`
}

// Payment statuses (lnrpc.Payment.PaymentStatus).
const (
	PaymentInFlight  = "IN_FLIGHT"
	PaymentInitiated = "INITIATED"
	PaymentSucceeded = "SUCCEEDED"
	PaymentFailed    = "FAILED"
)

// GetInfoResponse answers GET /v1/getinfo.
type GetInfoResponse struct {
	IdentityPubkey string  `json:"identity_pubkey"`
	Alias          string  `json:"alias"`
	BlockHeight    uint32  `json:"block_height"`
	SyncedToChain  bool    `json:"synced_to_chain"`
	Chains         []Chain `json:"chains"`
}

// Chain is one entry of GetInfoResponse.Chains.
type Chain struct {
	Chain   string `json:"chain"`
	Network string `json:"network"`
}

// NewAddressResponse answers GET /v1/newaddress.
type NewAddressResponse struct {
	Address string `json:"address"`
}

// WalletBalanceResponse answers GET /v1/balance/blockchain.
type WalletBalanceResponse struct {
	ConfirmedBalance int64 `json:"confirmed_balance,string"`
}

// ConnectPeerRequest is the body of POST /v1/peers.
type ConnectPeerRequest struct {
	Addr    LightningAddress `json:"addr"`
	Timeout uint64           `json:"timeout,string,omitempty"` // seconds
}

// LightningAddress is a node's pubkey (hex) and host:port.
type LightningAddress struct {
	Pubkey string `json:"pubkey"`
	Host   string `json:"host"`
}

// OpenChannelRequest is the body of POST /v1/channels (OpenChannelSync).
type OpenChannelRequest struct {
	NodePubkey         []byte `json:"node_pubkey"`
	LocalFundingAmount int64  `json:"local_funding_amount,string"`
	PushSat            int64  `json:"push_sat,string,omitempty"`
	SatPerVbyte        uint64 `json:"sat_per_vbyte,string,omitempty"`
}

// ChannelPoint answers POST /v1/channels: the funding transaction (bytes in
// internal order, or a display-order hex string) and output.
type ChannelPoint struct {
	FundingTxidBytes []byte `json:"funding_txid_bytes,omitempty"`
	FundingTxidStr   string `json:"funding_txid_str,omitempty"`
	OutputIndex      uint32 `json:"output_index"`
}

// ListChannelsResponse answers GET /v1/channels.
type ListChannelsResponse struct {
	Channels []Channel `json:"channels"`
}

// Channel is one entry of ListChannelsResponse; ChannelPoint is "txid:n".
type Channel struct {
	Active       bool   `json:"active"`
	ChannelPoint string `json:"channel_point"`
}
