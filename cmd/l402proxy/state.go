package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/proxy"
	"github.com/l402kit/l402kit/proxy/boltstore"
	"github.com/l402kit/l402kit/proxy/pgstore"
)

// openState opens the store --state names and says where it is, for the
// log (never a database password).
func openState(ctx context.Context, spec string) (proxy.Store, string, error) {
	// A DSN may carry a password: env:NAME and file:PATH keep it off the
	// command line.
	spec, err := backend.ReadSecret(spec)
	if err != nil {
		return nil, "", fmt.Errorf("--state: %w", err)
	}
	switch {
	case spec == "memory":
		return proxy.NewMemoryStore(), "memory (lost on exit)", nil
	case strings.HasPrefix(spec, "postgres://") || strings.HasPrefix(spec, "postgresql://"):
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		s, err := pgstore.Open(ctx, pgstore.Config{DSN: spec, Schema: os.Getenv("L402_STATE_SCHEMA")})
		if err != nil {
			return nil, "", fmt.Errorf("--state: %w", err)
		}
		return s, "postgresql", nil
	}
	path := spec
	if path == "" {
		if path, err = boltstore.DefaultPath(); err != nil {
			return nil, "", fmt.Errorf("--state: %w (set --state or L402_STATE)", err)
		}
	}
	s, err := boltstore.Open(path)
	if err != nil {
		return nil, "", fmt.Errorf("--state: %w", err)
	}
	return s, path, nil
}
