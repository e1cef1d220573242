package proxy

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// meter watches the response of a prepaid request: it settles the
// reservation to the request's cost, reading the usage the upstream
// reports (a header or trailer it removes, or a server-sent event) as the
// response flows, without holding any of it back.
type meter struct {
	p     *Proxy
	route *Route
	res   Reservation
	// reserved is the units available once the reservation was taken.
	reserved int64

	hdr http.Header // the response header, where trailers land after the body

	mu       sync.Mutex
	settled  bool
	usage    int64
	reported bool
	sse      bool
	event    string // event type of the server-sent event being read
	line     []byte // a line of the event stream not yet complete
}

// writer returns w wrapped so the meter sees the response.
func (m *meter) writer(w http.ResponseWriter) http.ResponseWriter {
	m.hdr = w.Header()
	return &meterWriter{ResponseWriter: w, m: m}
}

type meterWriter struct {
	http.ResponseWriter
	m           *meter
	wroteHeader bool
}

func (mw *meterWriter) WriteHeader(code int) {
	if !mw.wroteHeader && code >= 200 {
		mw.wroteHeader = true
		mw.m.header(mw.ResponseWriter.Header(), code)
	}
	mw.ResponseWriter.WriteHeader(code)
}

func (mw *meterWriter) Write(b []byte) (int, error) {
	if !mw.wroteHeader {
		mw.WriteHeader(http.StatusOK)
	}
	if mw.m.sse {
		mw.m.scan(b)
	}
	return mw.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach Flush and friends.
func (mw *meterWriter) Unwrap() http.ResponseWriter { return mw.ResponseWriter }

// Flush passes flushes on (ReverseProxy flushes event streams at once).
func (mw *meterWriter) Flush() {
	if !mw.wroteHeader {
		mw.WriteHeader(http.StatusOK)
	}
	http.NewResponseController(mw.ResponseWriter).Flush()
}

// header runs as the response header leaves: it takes the usage header
// out, settles at once when the cost is known (a fixed cost; a usage
// header), and sets the balance header.
func (m *meter) header(h http.Header, code int) {
	b := m.route.Bundle
	name := b.UsageHeader
	v, inHeader := h[name]
	delete(h, name)
	// A trailer announced under that name is dropped from the
	// announcement, so the client never gets it; ReverseProxy still sets
	// it after the body, where finish reads it.
	if ann := h.Values("Trailer"); len(ann) > 0 {
		h.Del("Trailer")
		for _, a := range ann {
			for _, t := range strings.Split(a, ",") {
				if t = strings.TrimSpace(t); t != "" && http.CanonicalHeaderKey(t) != name {
					h.Add("Trailer", t)
				}
			}
		}
	}
	m.sse = b.Metered && strings.HasPrefix(strings.ToLower(h.Get("Content-Type")), "text/event-stream")
	left := m.reserved
	switch {
	case !b.Metered:
		// The reservation is the cost, so the balance after it is the
		// balance after the request; a 5xx gives it back. The store is
		// told after the response (finish).
		if code >= 500 {
			left += m.res.Units
		}
	case inHeader && len(v) > 0:
		if n, err := strconv.ParseInt(strings.TrimSpace(v[0]), 10, 64); err == nil && n >= 0 {
			if st, ok := m.settle(n); ok {
				left = st.Available()
			}
		}
	}
	h.Set(HeaderBalance, strconv.FormatInt(left, 10))
}

// scan reads server-sent event lines as they pass for usage events.
func (m *meter) scan(b []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			if len(m.line)+len(b) <= 4096 { // longer lines carry no usage event
				m.line = append(m.line, b...)
			}
			return
		}
		line := b[:i]
		if len(m.line) > 0 {
			line = append(m.line, line...)
			m.line = m.line[:0]
		}
		b = b[i+1:]
		line = bytes.TrimSuffix(line, []byte{'\r'})
		switch {
		case len(line) == 0:
			m.event = ""
		case bytes.HasPrefix(line, []byte("event:")):
			m.event = string(bytes.TrimSpace(line[len("event:"):]))
		case bytes.HasPrefix(line, []byte("data:")) && m.event == m.route.Bundle.UsageEvent:
			if n, err := strconv.ParseInt(string(bytes.TrimSpace(line[len("data:"):])), 10, 64); err == nil && n >= 0 {
				m.usage, m.reported = n, true
			}
		}
	}
}

// finish settles the reservation once the response is over, if the header
// did not: to the usage reported (trailer or event), or to the
// reservation when nothing was reported or the client went away.
// status is as serve resolves grants (statusClientGone for a client that
// left after the upstream had the request).
func (m *meter) finish(status int) {
	if m.hdr != nil {
		m.trailer(m.hdr)
	}
	m.mu.Lock()
	done, usage, reported := m.settled, m.usage, m.reported
	m.mu.Unlock()
	if done {
		return
	}
	used := m.res.Units
	switch {
	case status == statusClientGone:
		used = max(m.res.Units, usage)
	case reported:
		used = usage
	case status >= 500:
		used = 0
	}
	if m.route.Bundle.Metered {
		m.settle(used)
		return
	}
	// A fixed cost was held in full before the request: settling it
	// changes no unit anyone can use, so the response need not wait for
	// the write. Drain waits for it; a proxy that dies first leaves the
	// reservation, which the collector charges: the same cost.
	m.p.inflight.Add(1)
	go func() {
		defer m.p.inflight.Done()
		m.settle(used)
	}()
}

// trailer reads the usage trailer from the response header map after the
// body (ReverseProxy copies trailers there) and removes it.
func (m *meter) trailer(h http.Header) {
	name := m.route.Bundle.UsageHeader
	for _, k := range []string{name, http.TrailerPrefix + name} {
		if v := h.Get(k); v != "" {
			if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil && n >= 0 {
				m.mu.Lock()
				m.usage, m.reported = n, true
				m.mu.Unlock()
			}
		}
		delete(h, k)
	}
}

// settle ends the reservation once; the store call outlives the client's
// context, so a client that leaves cannot cancel its own debit.
func (m *meter) settle(used int64) (Settlement, bool) {
	m.mu.Lock()
	if m.settled {
		m.mu.Unlock()
		return Settlement{}, false
	}
	m.settled = true
	m.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), m.p.cfg.NodeTimeout)
	defer cancel()
	st, err := m.p.store.Settle(ctx, m.res.ID, used)
	if err != nil {
		m.p.log.Warn("could not settle a prepaid request, trying again", "route", m.route.Name, "units", used, "err", err)
		m.p.resettle(m.route, m.res.ID, used, time.Second)
		return st, false
	}
	m.p.prepaid.countSettle(m.route.Name, st)
	return st, true
}

// settleTries is how many times resettle asks the store.
const settleTries = 4

// resettle settles reservation id to used in the background, asking again
// (after wait, then after 1, 2, 4 s) while the store fails: a busy store
// that timed out would otherwise leave the reservation to the collector,
// which charges it in full. Settling is once only in the store, so a retry
// after a write whose answer was lost finds ErrNoRecord and charges nothing
// twice. A give-back (used 0) of a reservation whose write timed out asks
// every time even on ErrNoRecord: that write may land late, and settling
// nothing twice costs nothing. Drain waits for it.
func (p *Proxy) resettle(route *Route, id ReservationID, used int64, wait time.Duration) {
	p.inflight.Add(1)
	go func() {
		defer p.inflight.Done()
		var err error
		for try := range settleTries {
			if try > 0 {
				wait = time.Second << (try - 1)
			}
			time.Sleep(wait)
			ctx, cancel := context.WithTimeout(context.Background(), p.cfg.NodeTimeout)
			var st Settlement
			st, err = p.store.Settle(ctx, id, used)
			cancel()
			switch {
			case err == nil:
				p.prepaid.countSettle(route.Name, st)
				return
			case errors.Is(err, ErrNoRecord) && used > 0:
				return // settled already
			case errors.Is(err, ErrNoRecord):
				err = nil // not (or not yet) written
			}
		}
		if err == nil {
			return
		}
		// The reservation stays in the store: the collector charges it
		// in full after ClaimTimeout, what the request was allowed to
		// cost.
		p.log.Warn("could not settle a prepaid request", "route", route.Name, "units", used, "tries", settleTries, "err", err)
	}()
}

// granted is the units available once a request granted by forward auth
// is charged its reservation, as it is there (the front reports no usage).
func (m *meter) granted() int64 { return m.reserved }
