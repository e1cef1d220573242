package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/l402kit/l402kit/backend"
	"github.com/l402kit/l402kit/proxy"
	"github.com/l402kit/l402kit/proxy/boltstore"
	"github.com/l402kit/l402kit/proxy/pgstore"
)

// openState opens the store --state names and says where it is, for the
// log (never a database password).
// newStore (--new-state) lets the embedded store start empty where one
// existed before.
func openState(ctx context.Context, spec string, newStore bool) (proxy.Store, string, error) {
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
	s, err := boltstore.OpenOptions(path, boltstore.Options{New: newStore})
	if err != nil {
		return nil, "", stateHint(path, err)
	}
	return s, path, nil
}

// stateHint adds to a refusal of the state file the commands that help.
func stateHint(path string, err error) error {
	switch {
	case errors.Is(err, boltstore.ErrCorrupt), errors.Is(err, boltstore.ErrForeign):
		return fmt.Errorf("--state: %w\n  (inspect it with: l402proxy state check --state %s; restore your backup; to start an empty store and lose the tokens sold so far, move the file aside and run once with --new-state)",
			err, path)
	case errors.Is(err, boltstore.ErrLost):
		return fmt.Errorf("--state: %w\n  (restore your backup of %s; or, to start an empty store knowingly, run once with --new-state or L402_NEW_STATE=1)", err, path)
	}
	return fmt.Errorf("--state: %w", err)
}

// stateCommand runs "l402proxy state check [--state PATH]": it proves the
// embedded store's file whole, read-only, and prints what it holds. The
// exit status says whether the proxy would open it.
func stateCommand(args []string, out io.Writer) error {
	if len(args) > 0 && args[0] == "rotate-master" {
		return rotateMaster(args[1:], out)
	}
	if len(args) == 0 || args[0] != "check" {
		return fmt.Errorf("usage: l402proxy state check [--state PATH] | l402proxy state rotate-master [--state PATH|postgres://...]")
	}
	fs := flag.NewFlagSet("l402proxy state check", flag.ContinueOnError)
	state := fs.String("state", env("L402_STATE", ""), "the embedded store's file (default $XDG_STATE_HOME/l402kit/state.db)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	path := *state
	if path == "memory" || strings.Contains(path, "://") {
		return fmt.Errorf("state check reads the embedded store's file; %q is not one (PostgreSQL: use its own tools)", path)
	}
	if path == "" {
		var err error
		if path, err = boltstore.DefaultPath(); err != nil {
			return fmt.Errorf("--state: %w", err)
		}
	}
	r, err := boltstore.Check(path)
	if err != nil {
		if errors.Is(err, boltstore.ErrInUse) {
			return fmt.Errorf("%w\n  (a running proxy holds it: stop it, or check a copy)", err)
		}
		return stateHint(path, err)
	}
	fmt.Fprintf(out, "%s: sound\nstore id: %s\nmarker %s: %s\nsize: %d bytes\n", r.Path, r.ID, boltstore.MarkerPath(r.Path), r.Marker, r.Size)
	for _, k := range slices.Sorted(maps.Keys(r.Records)) {
		fmt.Fprintf(out, "%s: %d\n", k, r.Records[k])
	}
	return nil
}

// rotateMaster runs "l402proxy state rotate-master [--state SPEC]": it
// replaces the master secret root keys are derived from, in the embedded
// store (with its proxy stopped: the file is locked) or in PostgreSQL
// (then restart every proxy sharing it, each keeping the secret it read).
// Every token sold under the old secret is refused from then on.
func rotateMaster(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("l402proxy state rotate-master", flag.ContinueOnError)
	state := fs.String("state", env("L402_STATE", ""), "the state whose master secret to replace: a file path (default $XDG_STATE_HOME/l402kit/state.db) or postgres://...")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *state == "memory" {
		return errors.New("a memory state ends with its process: there is no master secret to replace")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, where, err := openState(ctx, *state, false)
	if err != nil {
		if errors.Is(err, boltstore.ErrInUse) {
			return fmt.Errorf("%w\n  (a running proxy holds it: stop it first)", err)
		}
		return err
	}
	defer s.Close()
	r, ok := s.(interface{ ReplaceMasterKey(context.Context) error })
	if !ok {
		return fmt.Errorf("%s keeps no master secret", where)
	}
	if err := r.ReplaceMasterKey(ctx); err != nil {
		return fmt.Errorf("replace the master secret of %s: %w", where, err)
	}
	fmt.Fprintf(out, "%s: master secret replaced; every token sold under the old one is refused from now on (tokens minted with --stored-root-keys are not affected). Restart every proxy sharing this state.\n", where)
	return nil
}
