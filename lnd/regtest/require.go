package regtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
)

// ErrNoDocker is wrapped by StartLND's error when no Docker engine can be
// reached; Require turns it into a skip.
var ErrNoDocker = errors.New("no Docker engine reachable")

// ErrNoImages is wrapped by StartLND's error when the images are missing
// and building them was not asked for; Require turns it into a skip.
var ErrNoImages = errors.New("regtest images not built")

// EnvRequire, set to 1, makes Require fail instead of skip.
const EnvRequire = "L402KIT_REQUIRE_REGTEST"

// EnvBuild, set to 1, lets StartLND build missing images itself (as
// WithBuild does). Off by default: building lnd takes minutes, more than go
// test's default timeout allows on a small machine.
const EnvBuild = "L402KIT_REGTEST_BUILD"

// BuildCommand is what builds the images (make images runs it).
const BuildCommand = "go run ./internal/testenv/images/cmd/images"

// Require ends the test when err is not nil: a skip naming the reason when
// Docker is unreachable or the images are not built (a failure instead when
// L402KIT_REQUIRE_REGTEST=1), a failure for any other error.
func Require(t testing.TB, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if (errors.Is(err, ErrNoDocker) || errors.Is(err, ErrNoImages)) && os.Getenv(EnvRequire) != "1" {
		t.Skipf("regtest harness skipped: %v (set %s=1 to make this a failure)", err, EnvRequire)
	}
	t.Fatalf("regtest harness: %v", err)
}

// setTestcontainersEnv sets the two variables this machine kind needs,
// unless the user set them; testcontainers reads them once, on first use.
func setTestcontainersEnv() {
	for k, v := range map[string]string{
		"TESTCONTAINERS_RYUK_DISABLED": "true",
		"TESTCONTAINERS_HOST_OVERRIDE": "127.0.0.1",
	} {
		if _, ok := os.LookupEnv(k); !ok {
			os.Setenv(k, v)
		}
	}
}

// CheckDocker returns an error wrapping ErrNoDocker when no Docker engine
// answers.
func CheckDocker(ctx context.Context) error {
	setTestcontainersEnv()
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNoDocker, err)
	}
	defer cli.Close()
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := cli.Ping(pctx, client.PingOptions{}); err != nil {
		return fmt.Errorf("%w: %v", ErrNoDocker, err)
	}
	return nil
}
