//go:build unix

package redistest

import (
	"os/exec"
	"syscall"
)

// setProcAttr puts redis-server in its own process group, so killProcess
// also reaches a child forked for an append-only rewrite.
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	setDeathSignal(cmd.SysProcAttr)
}

func killProcess(cmd *exec.Cmd) {
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
}
