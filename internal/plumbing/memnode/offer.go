package memnode

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sort"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/bolt12"
)

// The memory node makes real BOLT12 offers and invoices (bolt12's
// encoding, signed by the node key). With no network behind it, the
// invoice request goes to the issuer in process and the blinded path of
// each invoice is a one-hop path to the node made of fresh keys: well
// formed, never routed.

// offerInvoiceExpiry is the lifetime of the invoices the node answers
// invoice requests with: BOLT 12's default, 7200 s.
const offerInvoiceExpiry = bolt12.DefaultRelativeExpiry * time.Second

// chainHashes are the chain_hash values (genesis block hash, in the byte
// order BOLT 12 writes it) of the networks whose offers name their chain;
// mainnet offers leave offer_chains out.
var chainHashes = map[string]string{
	"testnet": "43497fd7f826957108f4a30fd9cec3aeba79972084e90ead01ea330900000000",
	"signet":  "f61eee3b63a380a477a063af32b2bbc97c9ff9f01f2c4225e973988108000000",
	"regtest": "06226e46111a0b59caaf126043eb5bbf28c34f3a5e332a1fc7b2b73cf188910f",
}

// chain returns the node's chain hash, and whether the node's network has
// one BOLT 12 can name.
func (n *Node) chain() ([32]byte, bool) {
	if n.network == "mainnet" {
		return bolt12.ChainBitcoin, true
	}
	h, ok := chainHashes[n.network]
	if !ok {
		return [32]byte{}, false
	}
	b, _ := hex.DecodeString(h)
	return [32]byte(b), true
}

// offerEntry is an offer the node made.
type offerEntry struct {
	off     backend.Offer
	created time.Time
}

var (
	_ backend.Offerer    = (*Node)(nil)
	_ backend.OfferPayer = (*Node)(nil)
)

// CreateOffer implements backend.Offerer.
func (n *Node) CreateOffer(_ context.Context, req backend.OfferRequest) (*backend.Offer, error) {
	chain, ok := n.chain()
	if !ok {
		return nil, fmt.Errorf("memory: %w: no BOLT 12 chain hash for network %s", backend.ErrUnsupported, n.network)
	}
	o := &bolt12.Offer{
		Amount:         uint64(req.Amount),
		Description:    req.Description,
		HasDescription: req.Description != "" || req.Amount > 0,
		Issuer:         req.Issuer,
		IssuerID:       n.key.PubKey().SerializeCompressed(),
	}
	if chain != bolt12.ChainBitcoin {
		o.Chains = [][32]byte{chain}
	}
	now := n.now()
	if req.Expiry > 0 {
		o.AbsoluteExpiry = now.Add(req.Expiry).Truncate(time.Second)
	}
	s, err := o.Encode()
	if err != nil {
		return nil, fmt.Errorf("memory: %w: %w", backend.ErrInvalid, err)
	}
	id := o.ID()
	e := &offerEntry{created: now, off: backend.Offer{
		ID: hex.EncodeToString(id[:]), Bolt12: s, Amount: req.Amount, Description: req.Description,
		Issuer: req.Issuer, ExpiresAt: o.AbsoluteExpiry, Active: true,
	}}
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.check(); err != nil {
		return nil, err
	}
	if old, dup := n.offers[e.off.ID]; dup {
		// The same offer again (same fields, same second): Core Lightning
		// answers the existing one while it is active.
		if !old.off.Active {
			return nil, fmt.Errorf("memory: %w: offer %s exists and is disabled", backend.ErrAlreadyExists, e.off.ID)
		}
		off := old.off
		return &off, nil
	}
	n.offers[e.off.ID] = e
	off := e.off
	return &off, nil
}

// ListOffers implements backend.Offerer.
func (n *Node) ListOffers(context.Context) ([]*backend.Offer, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.check(); err != nil {
		return nil, err
	}
	es := make([]*offerEntry, 0, len(n.offers))
	for _, e := range n.offers {
		es = append(es, e)
	}
	sort.Slice(es, func(i, j int) bool {
		if !es[i].created.Equal(es[j].created) {
			return es[i].created.Before(es[j].created)
		}
		return es[i].off.ID < es[j].off.ID
	})
	out := make([]*backend.Offer, len(es))
	for i, e := range es {
		off := e.off
		out[i] = &off
	}
	return out, nil
}

// DisableOffer implements backend.Offerer; disabling a disabled offer is
// no error.
func (n *Node) DisableOffer(_ context.Context, id string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.check(); err != nil {
		return err
	}
	e, ok := n.offers[id]
	if !ok {
		return fmt.Errorf("memory: %w: no offer %s", backend.ErrNotFound, id)
	}
	e.off.Active = false
	return nil
}

// LookupOffer returns the node's offer with that id.
func (n *Node) LookupOffer(id string) (*backend.Offer, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.check(); err != nil {
		return nil, err
	}
	e, ok := n.offers[id]
	if !ok {
		return nil, fmt.Errorf("memory: %w: no offer %s", backend.ErrNotFound, id)
	}
	off := e.off
	return &off, nil
}

// OfferPayments implements backend.Offerer.
func (n *Node) OfferPayments(_ context.Context, id string) ([]*backend.Invoice, error) {
	all, err := n.OfferInvoices(id)
	if err != nil {
		return nil, err
	}
	var out []*backend.Invoice
	for _, inv := range all {
		if inv.State == backend.StateSettled {
			out = append(out, inv)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].SettledAt.Before(out[j].SettledAt) })
	return out, nil
}

// OfferInvoices returns every invoice the node made for the offer, paid or
// not, oldest first.
func (n *Node) OfferInvoices(id string) ([]*backend.Invoice, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.check(); err != nil {
		return nil, err
	}
	if _, ok := n.offers[id]; !ok {
		return nil, fmt.Errorf("memory: %w: no offer %s", backend.ErrNotFound, id)
	}
	var out []*backend.Invoice
	for _, e := range n.invoices {
		if e.offer == id {
			out = append(out, e.view())
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out, nil
}

// InvoiceForOffer answers an invoice request for one of the node's offers
// as its issuer: it checks the request against the offer (active, not
// expired, the amount) and returns a signed BOLT12 invoice ("lni1...") the
// node will accept payment of. Fakes of nodes that fetch invoices use it.
func (n *Node) InvoiceForOffer(invreq string) (string, error) {
	q, err := bolt12.DecodeInvoiceRequest(invreq)
	if err != nil {
		return "", fmt.Errorf("memory: %w: %w", backend.ErrInvalid, err)
	}
	if !bytes.Equal(q.IssuerID, n.key.PubKey().SerializeCompressed()) {
		return "", fmt.Errorf("memory: %w: no route to the offer's issuer (the memory node answers only its own offers)", backend.ErrPaymentFailed)
	}
	id := offerID(q.Records)
	now := n.now().Truncate(time.Second)
	n.mu.Lock()
	if err := n.check(); err != nil {
		n.mu.Unlock()
		return "", err
	}
	e, ok := n.offers[id]
	var off backend.Offer
	if ok {
		off = e.off
	}
	n.mu.Unlock()
	switch {
	case !ok:
		return "", fmt.Errorf("memory: %w: the issuer knows no such offer", backend.ErrPaymentFailed)
	case !off.Active:
		return "", fmt.Errorf("memory: %w: offer %s is disabled", backend.ErrPaymentFailed, id)
	case !off.ExpiresAt.IsZero() && now.After(off.ExpiresAt):
		return "", fmt.Errorf("memory: %w: offer %s expired", backend.ErrPaymentFailed, id)
	case off.Amount == 0 && q.RequestAmount == 0:
		return "", fmt.Errorf("memory: %w: any-amount offer needs invreq_amount", backend.ErrInvalid)
	case off.Amount != 0 && q.RequestAmount != 0 && q.RequestAmount < uint64(off.Amount):
		return "", fmt.Errorf("memory: %w: invreq_amount %d under the offer's %s", backend.ErrInvalid, q.RequestAmount, off.Amount)
	}
	if chain, _ := n.chain(); (q.Chain == nil && chain != bolt12.ChainBitcoin) || (q.Chain != nil && *q.Chain != chain) {
		return "", fmt.Errorf("memory: %w: invoice request for another chain", backend.ErrInvalid)
	}
	amount := q.RequestAmount
	if amount == 0 {
		amount = uint64(off.Amount)
	}
	pre, err := backend.NewPreimage()
	if err != nil {
		return "", err
	}
	hash := pre.Hash()
	path, err := onePath(n.key.PubKey())
	if err != nil {
		return "", err
	}
	inv := &bolt12.Invoice{InvoiceRequest: *q, CreatedAt: now, RelativeExpiry: offerInvoiceExpiry,
		PaymentHash: hash, Amount: amount, NodeID: n.key.PubKey().SerializeCompressed(),
		Paths: []bolt12.BlindedPath{path}, BlindedPay: []bolt12.PayInfo{{CLTVExpiryDelta: 80, HTLCMaximumMsat: amount}}}
	s, err := inv.Encode(n.key)
	if err != nil {
		return "", fmt.Errorf("memory: %w", err)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.check(); err != nil {
		return "", err
	}
	n.invoices[hash] = &entry{
		inv: backend.Invoice{
			PaymentHash: hash, PaymentRequest: s, Amount: backend.MilliSat(amount), Memo: off.Description,
			State: backend.StateOpen, CreatedAt: now, ExpiresAt: now.Add(offerInvoiceExpiry),
		},
		preimage: &pre,
		offer:    id,
		changed:  make(chan struct{}),
	}
	return s, nil
}

// offerRecords keeps the records in the offer's ranges: the offer as the
// request copied it, whose Merkle root is the offer id.
func offerRecords(rs []bolt12.Record) []bolt12.Record {
	var out []bolt12.Record
	for _, r := range rs {
		if (r.Type >= 1 && r.Type <= 79) || (r.Type >= 1_000_000_000 && r.Type <= 1_999_999_999) {
			out = append(out, r)
		}
	}
	return out
}

// onePath is a one-hop blinded path to node made of fresh keys.
func onePath(node *btcec.PublicKey) (bolt12.BlindedPath, error) {
	pathKey, err := btcec.NewPrivateKey()
	if err != nil {
		return bolt12.BlindedPath{}, err
	}
	blinded, err := btcec.NewPrivateKey()
	if err != nil {
		return bolt12.BlindedPath{}, err
	}
	data := make([]byte, 16)
	if _, err := rand.Read(data); err != nil {
		return bolt12.BlindedPath{}, err
	}
	return bolt12.BlindedPath{
		FirstNodeID:  node.SerializeCompressed(),
		FirstPathKey: pathKey.PubKey().SerializeCompressed(),
		Hops:         []bolt12.BlindedHop{{BlindedNodeID: blinded.PubKey().SerializeCompressed(), EncryptedData: data}},
	}, nil
}

// NewInvoiceRequest writes a signed invoice request for offer with a fresh
// payer key, as a paying node does before fetching an invoice: amount is
// invreq_amount (required for an any-amount offer, zero otherwise), note
// invreq_payer_note.
func (n *Node) NewInvoiceRequest(offer string, amount backend.MilliSat, note string) (string, error) {
	o, err := bolt12.DecodeOffer(offer)
	if err != nil {
		return "", fmt.Errorf("memory: %w: %w", backend.ErrInvalid, err)
	}
	payer, err := btcec.NewPrivateKey()
	if err != nil {
		return "", err
	}
	meta := make([]byte, 16)
	if _, err := rand.Read(meta); err != nil {
		return "", err
	}
	q := &bolt12.InvoiceRequest{Offer: *o, PayerMetadata: meta, RequestAmount: uint64(amount),
		PayerID: payer.PubKey().SerializeCompressed(), PayerNote: note}
	if chain, ok := n.chain(); ok && chain != bolt12.ChainBitcoin {
		q.Chain = &chain
	}
	s, err := q.Encode(payer)
	if err != nil {
		return "", fmt.Errorf("memory: %w: %w", backend.ErrInvalid, err)
	}
	return s, nil
}

// PayBolt12Invoice pays one of the node's own BOLT12 invoices
// ("lni1..."), as PayInvoice pays its BOLT11 ones.
func (n *Node) PayBolt12Invoice(ctx context.Context, invoice string) (*backend.Payment, error) {
	inv, err := bolt12.DecodeInvoice(invoice)
	if err != nil {
		return nil, fmt.Errorf("memory: %w: %w", backend.ErrInvalid, err)
	}
	if inv.Expired(n.now()) {
		return nil, fmt.Errorf("memory: %w: invoice expired", backend.ErrPaymentFailed)
	}
	if !bytes.Equal(inv.NodeID, n.key.PubKey().SerializeCompressed()) {
		return nil, fmt.Errorf("memory: %w: no route to %x (the memory node pays only its own invoices)", backend.ErrPaymentFailed, inv.NodeID)
	}
	return n.payEntry(ctx, inv.PaymentHash, invoice, backend.MilliSat(inv.Amount))
}

// PayOffer implements backend.OfferPayer for the node's own offers: it
// writes an invoice request, answers it as the issuer and pays the
// invoice, which must answer the request.
func (n *Node) PayOffer(ctx context.Context, offer string, opts backend.OfferPayOptions) (*backend.Payment, error) {
	req, err := n.NewInvoiceRequest(offer, opts.Amount, opts.PayerNote)
	if err != nil {
		return nil, err
	}
	s, err := n.InvoiceForOffer(req)
	if err != nil {
		return nil, err
	}
	inv, err := bolt12.DecodeInvoice(s)
	if err != nil {
		return nil, fmt.Errorf("memory: %w: %w", backend.ErrPaymentFailed, err)
	}
	q, err := bolt12.DecodeInvoiceRequest(req)
	if err != nil || !inv.Matches(q) {
		return nil, fmt.Errorf("memory: %w: the invoice does not answer the request", backend.ErrPaymentFailed)
	}
	return n.PayBolt12Invoice(ctx, s)
}

// offerID is the id of the offer a request's records copy.
func offerID(rs []bolt12.Record) string {
	id := bolt12.MerkleRoot(offerRecords(rs))
	return hex.EncodeToString(id[:])
}
