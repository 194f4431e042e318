//go:build unix

package servicetest

import (
	"os/exec"
	"syscall"
)

// setProcAttr puts the server in its own process group, so killProcess
// also reaches a child it forked (redis-server's append-only rewrite).
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	setDeathSignal(cmd.SysProcAttr)
}

// signalTerm asks the server to shut down cleanly (Redis flushes its
// append-only file, Mosquitto saves its persistence file).
func signalTerm(cmd *exec.Cmd) error { return cmd.Process.Signal(syscall.SIGTERM) }

func killProcess(cmd *exec.Cmd) {
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
}
