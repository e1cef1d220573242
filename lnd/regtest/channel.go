package regtest

import (
	"context"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/internal/plumbing/lndrest"
)

// fundBob sends the reward of block 1 to Bob's wallet and confirms it.
func (n *LNDNet) fundBob(ctx context.Context, m *miner) error {
	var addr lndrest.NewAddressResponse
	if err := n.bob.rest.Call(ctx, http.MethodGet, "/v1/newaddress?type=WITNESS_PUBKEY_HASH", nil, &addr); err != nil {
		return fmt.Errorf("bob new address: %w", err)
	}
	cb, err := n.chain.coinbase(ctx, 1)
	if err != nil {
		return err
	}
	tx, err := m.spendCoinbase(cb, addr.Address, 10_000)
	if err != nil {
		return err
	}
	if _, err := n.chain.sendRaw(ctx, tx); err != nil {
		return err
	}
	if err := n.chain.generate(ctx, 1); err != nil {
		return err
	}
	return poll(ctx, time.Minute, func() error {
		var bal lndrest.WalletBalanceResponse
		if err := n.bob.rest.Call(ctx, http.MethodGet, "/v1/balance/blockchain", nil, &bal); err != nil {
			return err
		}
		if bal.ConfirmedBalance < ChannelSats*2 {
			return fmt.Errorf("bob's confirmed balance is %d sat", bal.ConfirmedBalance)
		}
		return nil
	})
}

func (n *LNDNet) connectPeer(ctx context.Context) error {
	err := n.bob.rest.Call(ctx, http.MethodPost, "/v1/peers", &lndrest.ConnectPeerRequest{
		Addr:    lndrest.LightningAddress{Pubkey: n.alice.pubkey, Host: "alice:9735"},
		Timeout: 10,
	}, nil)
	if err != nil && !strings.Contains(err.Error(), "already connected") {
		return fmt.Errorf("bob connect to alice: %w", err)
	}
	return nil
}

func (n *LNDNet) openChannel(ctx context.Context) error {
	// Synced to chain is not yet "server started": ConnectPeer can still
	// answer "server is still in the process of starting" for a moment.
	if err := poll(ctx, time.Minute, func() error { return n.connectPeer(ctx) }); err != nil {
		return err
	}
	var cp lndrest.ChannelPoint
	pubkey, err := hex.DecodeString(n.alice.pubkey)
	if err != nil {
		return fmt.Errorf("alice's pubkey %q: %w", n.alice.pubkey, err)
	}
	// Right after connecting, LND may still be syncing the peer's
	// features; a short retry covers it.
	err = poll(ctx, 30*time.Second, func() error {
		return n.bob.rest.Call(ctx, http.MethodPost, "/v1/channels", &lndrest.OpenChannelRequest{
			NodePubkey:         pubkey,
			LocalFundingAmount: ChannelSats,
			PushSat:            PushSats,
			SatPerVbyte:        2,
		}, &cp)
	})
	if err != nil {
		return fmt.Errorf("open channel bob→alice: %w", err)
	}
	txid, err := fundingTxid(cp)
	if err != nil {
		return err
	}
	n.chanPt = fmt.Sprintf("%s:%d", txid, cp.OutputIndex)
	if err := n.chain.generate(ctx, 6); err != nil {
		return err
	}
	if err := n.waitChannelActive(ctx); err != nil {
		return err
	}
	return n.probe(ctx)
}

// probe pays Alice one satoshi until it works. "Active" in ListChannels
// comes a moment before Bob's link will carry a payment: until then LND
// refuses with FAILURE_REASON_INSUFFICIENT_BALANCE.
func (n *LNDNet) probe(ctx context.Context) error {
	tries := 0
	err := poll(ctx, time.Minute, func() error {
		tries++
		inv, err := n.alice.b.CreateInvoice(ctx, backend.InvoiceRequest{Amount: backend.Sat(1), Memo: "l402kit regtest probe"})
		if err != nil {
			return err
		}
		_, err = n.bob.b.PayInvoice(ctx, inv.PaymentRequest, backend.PayOptions{Timeout: 10 * time.Second})
		return err
	})
	if err != nil {
		return fmt.Errorf("probe payment bob→alice: %w", err)
	}
	if tries > 1 {
		n.logf("regtest: probe payment bob→alice went through at attempt %d", tries)
	}
	return nil
}

// waitChannelActive waits until both ends list the channel as active.
func (n *LNDNet) waitChannelActive(ctx context.Context) error {
	return poll(ctx, 2*time.Minute, func() error {
		for _, nd := range []*node{n.bob, n.alice} {
			var r lndrest.ListChannelsResponse
			if err := nd.rest.Call(ctx, http.MethodGet, "/v1/channels?active_only=true", nil, &r); err != nil {
				return err
			}
			found := false
			for _, ch := range r.Channels {
				if ch.ChannelPoint == n.chanPt && ch.Active {
					found = true
				}
			}
			if !found {
				return fmt.Errorf("channel %s not active on %s yet", n.chanPt, nd.name)
			}
		}
		return nil
	})
}

// fundingTxid is the channel point's transaction id in the usual
// (reversed, display) hex form.
func fundingTxid(cp lndrest.ChannelPoint) (string, error) {
	switch {
	case cp.FundingTxidStr != "":
		return cp.FundingTxidStr, nil
	case len(cp.FundingTxidBytes) == 32:
		// Bytes are in internal order; the string form is reversed.
		b := make([]byte, 32)
		for i, x := range cp.FundingTxidBytes {
			b[31-i] = x
		}
		return hex.EncodeToString(b), nil
	}
	return "", fmt.Errorf("channel point without txid")
}
