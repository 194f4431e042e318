package servicetest

import (
	"bytes"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// Bounds for one server process: servers here listen within milliseconds;
// the margins are for a loaded CI machine and for a restart that replays
// a long log.
const (
	readyTimeout = 15 * time.Second
	stopTimeout  = 10 * time.Second
	pollEvery    = 20 * time.Millisecond
)

// Proc is a server process owned by one test: started and waited for
// until it serves, stopped gracefully (SIGTERM, then SIGKILL to its
// process group), and restarted on the same files.
type Proc struct {
	// Name says which server, for messages: "redis-server on 127.0.0.1:6380".
	Name string
	// Cmd makes a fresh command for each start.
	Cmd func() *exec.Cmd
	// Ready reports nil once the server serves.
	Ready func() error
	// LogTail is the end of the server's log, for failure messages.
	LogTail func() string

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{} // closed when cmd has been waited for
	waitErr error         // cmd.Wait's result, valid after exited is closed
}

// Start runs the server and waits until it is ready.
func (p *Proc) Start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.startLocked()
}

// Stop shuts the server down; it is idempotent.
func (p *Proc) Stop(tb testing.TB) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopLocked(tb)
}

// Restart stops the server and starts it again. The old socket may
// linger a moment, so starting is retried for a while.
func (p *Proc) Restart(tb testing.TB) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopLocked(tb)
	var err error
	for deadline := time.Now().Add(readyTimeout); ; time.Sleep(100 * time.Millisecond) {
		if err = p.startLocked(); err == nil || time.Now().After(deadline) {
			return err
		}
	}
}

func (p *Proc) startLocked() error {
	cmd := p.Cmd()
	// Servers write to their log files; anything on stdout or stderr is a
	// start-up failure worth showing.
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	setProcAttr(cmd)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	exited := make(chan struct{})
	p.cmd, p.exited = cmd, exited
	go func() {
		p.waitErr = cmd.Wait()
		close(exited)
	}()
	deadline := time.Now().Add(readyTimeout)
	for {
		select {
		case <-exited:
			p.cmd = nil
			return fmt.Errorf("%s exited during start-up (%v): %s\n%s", p.Name, p.waitErr, strings.TrimSpace(out.String()), p.LogTail())
		default:
		}
		err := p.Ready()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			p.stopLocked(nil)
			return fmt.Errorf("%s not ready after %v: %v\n%s", p.Name, readyTimeout, err, p.LogTail())
		}
		time.Sleep(pollEvery)
	}
}

func (p *Proc) stopLocked(tb testing.TB) {
	if p.cmd == nil {
		return
	}
	cmd, exited := p.cmd, p.exited
	p.cmd = nil
	_ = signalTerm(cmd)
	select {
	case <-exited:
		return
	case <-time.After(stopTimeout):
	}
	if tb != nil {
		tb.Logf("servicetest: %s ignored SIGTERM for %v; killing it", p.Name, stopTimeout)
	}
	killProcess(cmd)
	<-exited
}
