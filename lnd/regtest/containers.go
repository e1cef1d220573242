package regtest

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/testcontainers/testcontainers-go"
)

// printfLogger sends testcontainers' per-container messages to the
// harness's log (t.Logf in tests) instead of the process's stderr.
type printfLogger func(string, ...any)

func (l printfLogger) Printf(format string, args ...any) { l(format, args...) }

func labels() map[string]string {
	// org.l402kit.test=true is what .ci/run removes after a run, whatever
	// happened.
	return map[string]string{"org.l402kit.test": "true", "org.l402kit.regtest": "lnd"}
}

// publish binds each container port to its host port on 127.0.0.1 only.
// A host port "" lets the engine choose; LND nodes get fixed ones so a
// restart keeps their addresses.
func publish(ports map[string]string) func(*container.HostConfig) {
	return func(hc *container.HostConfig) {
		hc.PortBindings = network.PortMap{}
		for port, hostPort := range ports {
			p := network.MustParsePort(port)
			hc.PortBindings[p] = []network.PortBinding{{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: hostPort}}
		}
	}
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port), nil
}

// create starts a container and, when testcontainers returns one together
// with an error, still hands it back so it is removed.
func (n *LNDNet) create(ctx context.Context, req testcontainers.ContainerRequest) (testcontainers.Container, error) {
	req.Labels = labels()
	req.Networks = []string{n.net.Name}
	c, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{
		ContainerRequest: req, Started: true, Logger: printfLogger(n.logf),
	})
	if err != nil {
		return c, fmt.Errorf("start %s: %w", req.Hostname, err)
	}
	return c, nil
}

func (n *LNDNet) copyFrom(ctx context.Context, c testcontainers.Container, path string) ([]byte, error) {
	rc, err := c.CopyFileFromContainer(ctx, path)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// terminate removes the container; testcontainers removes its anonymous
// volumes with it.
func terminate(ctx context.Context, c testcontainers.Container) error {
	if err := c.Terminate(ctx, testcontainers.StopTimeout(2*time.Second)); err != nil {
		return fmt.Errorf("remove container %s: %w", c.GetContainerID(), err)
	}
	return nil
}
