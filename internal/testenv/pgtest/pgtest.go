// Package pgtest gives tests a PostgreSQL database: the one named by
// L402KIT_TEST_POSTGRES_DSN, or a throwaway server on loopback that
// scripts/pg-test.sh starts from the Debian package's binaries. Without
// either a test skips with the reason, unless L402KIT_REQUIRE_POSTGRES=1
// (set in CI) makes that a failure.
package pgtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvDSN names a PostgreSQL the tests may use; EnvRequire=1 makes a missing
// one fail the tests instead of skipping them.
const (
	EnvDSN     = "L402KIT_TEST_POSTGRES_DSN"
	EnvRequire = "L402KIT_REQUIRE_POSTGRES"
)

var (
	once   sync.Once
	dsn    string
	dsnErr error
)

// DSN returns the connection string of a running PostgreSQL, or skips (or,
// under EnvRequire, fails) t saying why there is none.
func DSN(t testing.TB) string {
	t.Helper()
	once.Do(func() { dsn, dsnErr = find() })
	if dsnErr != nil {
		if os.Getenv(EnvRequire) == "1" {
			t.Fatalf("PostgreSQL required (%s=1): %v", EnvRequire, dsnErr)
		}
		t.Skipf("no PostgreSQL: %v (set %s, or install postgresql for scripts/pg-test.sh)", dsnErr, EnvDSN)
	}
	return dsn
}

func find() (string, error) {
	if v := os.Getenv(EnvDSN); v != "" {
		return v, ping(v)
	}
	script, err := scriptPath()
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out, errOut bytes.Buffer
	cmd := exec.CommandContext(ctx, "sh", script)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("scripts/pg-test.sh: %v: %s", err, strings.TrimSpace(errOut.String()))
	}
	v := strings.TrimSpace(out.String())
	return v, ping(v)
}

func ping(dsn string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	return c.Close(ctx)
}

// scriptPath finds scripts/pg-test.sh above the working directory (a test
// runs in its package's directory).
func scriptPath() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, "scripts", "pg-test.sh")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("scripts/pg-test.sh not found above the working directory")
		}
		dir = parent
	}
}

// Schema returns a fresh schema name, dropped with everything in it when
// the test ends, so tests sharing one server do not see each other's rows.
func Schema(t testing.TB, dsn string) string {
	t.Helper()
	var b [6]byte
	rand.Read(b[:])
	name := "t_" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Errorf("drop schema %s: %v", name, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP SCHEMA IF EXISTS "+name+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", name, err)
		}
	})
	return name
}
