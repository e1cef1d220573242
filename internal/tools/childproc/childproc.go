// Package childproc starts the server processes that make bench and make
// demo-lnd run (proxies, upstreams, nginx) and makes sure they end with the
// run: stopped in reverse order when it returns, and killed by the kernel
// (Linux) when it dies without returning.
package childproc

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// Proc is a child process; Stop ends it.
type Proc struct {
	Name   string
	cmd    *exec.Cmd
	out    *tailBuffer
	exited chan struct{}
	err    error // valid once exited is closed
	once   sync.Once
}

// Group is every child started through it, so one deferred StopAll ends
// them all, also when the run fails halfway. The zero value is ready.
type Group struct {
	mu   sync.Mutex
	list []*Proc
}

// Start runs bin with args; its output is kept (the last 8 KiB) for error
// messages.
func (g *Group) Start(name, bin string, args ...string) (*Proc, error) {
	cmd := exec.Command(bin, args...)
	out := &tailBuffer{max: 8 << 10}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = Attr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Proc{Name: name, cmd: cmd, out: out, exited: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.exited) }()
	g.mu.Lock()
	g.list = append(g.list, p)
	g.mu.Unlock()
	return p, nil
}

// StopAll ends every child, last started first. Safe to call more than
// once and from several goroutines.
func (g *Group) StopAll() {
	g.mu.Lock()
	list := g.list
	g.list = nil
	g.mu.Unlock()
	for i := len(list) - 1; i >= 0; i-- {
		list[i].Stop()
	}
}

// Stop sends SIGTERM, then SIGKILL if the child still runs 5 s later, and
// waits for it to exit.
func (p *Proc) Stop() {
	p.once.Do(func() {
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(5 * time.Second):
			p.cmd.Process.Kill()
			<-p.exited
		}
	})
}

// PID is the child's process id.
func (p *Proc) PID() int { return p.cmd.Process.Pid }

// Output is the child's last output.
func (p *Proc) Output() string { return p.out.String() }

// WaitListen returns once addr accepts connections, or with an error
// carrying the child's last output when it exits first or 30 s pass.
func (p *Proc) WaitListen(ctx context.Context, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-p.exited:
			return fmt.Errorf("%s exited before listening on %s (%v):\n%s", p.Name, addr, p.err, p.out)
		case <-ctx.Done():
			return fmt.Errorf("%s not listening on %s: %w\n%s", p.Name, addr, context.Cause(ctx), p.out)
		case <-time.After(30 * time.Millisecond):
		}
	}
}

// FreeAddr returns a loopback address nobody listens on right now, for a
// child to bind next (a clash shows as the child failing to start).
func FreeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// tailBuffer keeps the last max bytes written.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
