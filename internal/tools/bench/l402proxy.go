package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/l402"
	"github.com/l402kit/l402kit/memory"
)

// meteredUnits is the bundle the metered route sells: enough that no run
// drains it.
const meteredUnits = 1_000_000_000_000

// meteredYAML is the configuration of the proxy measured on a prepaid
// route: the plain route's upstream sold as a bundle, one unit a request.
func meteredYAML(listen, upstream string) string {
	return fmt.Sprintf(`listen: %s
backend: memory://
routes:
  - name: metered
    path: /
    upstream: http://%s
    price_sat: 10
    bundle:
      units: %d
      cost: 1
`, listen, upstream, meteredUnits)
}

// stateFor is the --state of one measured proxy: the -state flag, or a file
// of its own in the run's directory (each embedded store is one process's).
func stateFor(dir, flagValue, name string) string {
	if flagValue != "" {
		return flagValue
	}
	return filepath.Join(dir, name+"-state.db")
}

// buyToken pays for one token through the real flow; the proxy runs on the
// memory backend, whose development endpoint pays its invoices.
func buyToken(ctx context.Context, base string) (string, error) {
	tr := &l402.Transport{Base: &http.Transport{}, Payer: memory.NewDevPayer(base+memory.DevPayPath, nil), MaxPrice: backend.Sat(1000)}
	defer tr.Base.(*http.Transport).CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/", nil)
	if err != nil {
		return "", err
	}
	resp, err := (&http.Client{Transport: tr, Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return "", fmt.Errorf("buying a token: %w", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	auth := resp.Request.Header.Get("Authorization")
	if resp.StatusCode != http.StatusOK || auth == "" {
		return "", fmt.Errorf("buying a token: status %d, Authorization %q", resp.StatusCode, auth)
	}
	return auth, nil
}

// cpuProfile fetches a CPU profile of d from l402proxy's --pprof listener.
func cpuProfile(ctx context.Context, addr string, d time.Duration, path string) error {
	secs := max(1, int(d/time.Second))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, secs), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("pprof answered %s", resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
