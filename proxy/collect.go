package proxy

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/l402"
)

// collectBatch is how many records one store query of the collector returns.
const collectBatch = 500

func (p *Proxy) collectLoop(every time.Duration) {
	defer close(p.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-p.stop
		cancel()
	}()
	// The first pass also resolves what this instance had in flight when
	// it last stopped.
	p.collect(ctx, time.Now(), true)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			p.collect(ctx, time.Now(), false)
		}
	}
}

// Collect runs one collection pass at now, as the proxy does every
// Config.CollectEvery: hold invoices whose single-use token went unused
// until they expired are canceled (the payer gets the payment back), holds a
// dead request had claimed are settled, records of challenges never paid
// are dropped after their invoice expired, and the Store drops spent hashes
// and paid tokens past their expiry. Records the node cannot be asked about
// now (it is down) wait for the next pass. restarted also resolves the holds
// this instance (Config.Instance) had claimed: call it so once after a
// restart, before serving.
func (p *Proxy) Collect(ctx context.Context, now time.Time, restarted bool) error {
	return p.collect(ctx, now, restarted)
}

func (p *Proxy) collect(ctx context.Context, now time.Time, restarted bool) error {
	var errs []error
	if p.holder != nil {
		if err := p.collectHolds(ctx, now, restarted); err != nil {
			errs = append(errs, err)
		}
	}
	if err := p.collectChallenges(ctx, now); err != nil {
		errs = append(errs, err)
	}
	if err := p.collectReservations(ctx, now, restarted); err != nil {
		errs = append(errs, err)
	}
	n, err := p.store.Collect(ctx, now)
	if err != nil {
		errs = append(errs, fmt.Errorf("collect: %w", err))
	}
	p.m.collected.Add(float64(n))
	err = errors.Join(errs...)
	if err != nil {
		p.log.Warn("state collection incomplete; the next pass retries", "err", err)
	}
	return err
}

// collectHolds resolves holds no request will resolve: unclaimed past their
// invoice's expiry (cancel), and claimed by a request that can no longer
// finish (settle). A request in flight when its proxy stopped had reached
// the upstream, and the proxy saw no upstream failure; like a client that
// went away after the upstream got its request, it has used its token, so
// the payment is settled, never returned to be spent again.
func (p *Proxy) collectHolds(ctx context.Context, now time.Time, restarted bool) error {
	q := StaleHoldQuery{ExpiredBefore: now, ClaimedBefore: now.Add(-p.cfg.ClaimTimeout), Limit: collectBatch}
	if restarted {
		q.Owner = p.cfg.Instance
	}
	for {
		holds, err := p.store.StaleHolds(ctx, q)
		if err != nil {
			return fmt.Errorf("stale holds: %w", err)
		}
		resolved := 0
		for _, h := range holds {
			ok, err := p.resolveHold(ctx, h)
			if err != nil {
				return err
			}
			if ok {
				resolved++
			}
		}
		if len(holds) < q.Limit || resolved == 0 {
			return nil
		}
	}
}

// resolveHold settles or cancels one stale hold and forgets it; false when
// the hold must wait (it is still payable, or was claimed meanwhile).
func (p *Proxy) resolveHold(ctx context.Context, h Hold) (bool, error) {
	hash := h.Hash()
	inv, err := p.lookup(ctx, hash)
	switch {
	case errors.Is(err, backend.ErrNotFound):
		return true, p.store.DeleteHold(ctx, hash)
	case err != nil:
		return false, fmt.Errorf("hold %s: %w", hash, err)
	}
	cctx, cancel := context.WithTimeout(ctx, p.cfg.NodeTimeout)
	defer cancel()
	switch {
	case inv.State == backend.StateSettled || inv.State == backend.StateCanceled:
	case h.ClaimedBy != "" && inv.State == backend.StateHeld:
		p.log.Info("settling a single-use payment whose request was in flight when its proxy stopped", "hash", hash.String(), "route", h.Route, "instance", h.ClaimedBy)
		if err := p.nodeCall("settle", func() error { return p.holder.SettleInvoice(cctx, h.Preimage) }); err != nil {
			return false, fmt.Errorf("settle hold %s: %w", hash, err)
		}
		p.m.holdsResolved.WithLabelValues("settled").Inc()
	default:
		// Unclaimed past expiry, or claimed but never paid: nobody will
		// use it. Canceling returns a held payment to its payer.
		if err := p.nodeCall("cancel", func() error { return p.holder.CancelInvoice(cctx, hash) }); err != nil {
			return false, fmt.Errorf("cancel hold %s: %w", hash, err)
		}
		p.m.holdsResolved.WithLabelValues("canceled").Inc()
	}
	return true, p.store.DeleteHold(ctx, hash)
}

// collectChallenges drops the records of tokens whose invoices expired
// unpaid. The node has the last word: an invoice paid before it expired,
// whose token was never presented, keeps its token.
func (p *Proxy) collectChallenges(ctx context.Context, now time.Time) error {
	for {
		cs, err := p.store.ExpiredUnpaid(ctx, now, collectBatch)
		if err != nil {
			return fmt.Errorf("expired challenges: %w", err)
		}
		var dead []l402.TokenID
		for _, c := range cs {
			inv, err := p.lookup(ctx, c.PaymentHash)
			switch {
			case errors.Is(err, backend.ErrNotFound):
			case err != nil:
				err = fmt.Errorf("challenge %s: %w", c.PaymentHash, err)
				// Drop what is known dead before stopping.
				return errors.Join(err, p.store.Revoke(ctx, dead...))
			case inv.State == backend.StateSettled || inv.State == backend.StateHeld:
				if err := p.store.MarkPaid(ctx, c.TokenID); err != nil && !errors.Is(err, ErrNoRecord) {
					return err
				}
				continue
			}
			dead = append(dead, c.TokenID)
		}
		if len(dead) > 0 {
			if err := p.store.Revoke(ctx, dead...); err != nil {
				return err
			}
		}
		p.m.collected.Add(float64(len(dead)))
		if len(cs) < collectBatch {
			return nil
		}
	}
}

func (p *Proxy) countHolds() float64 {
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.NodeTimeout)
	defer cancel()
	n, err := p.store.CountHolds(ctx)
	if err != nil {
		return -1
	}
	return float64(n)
}
