//go:build !unix

package servicetest

import "os/exec"

func setProcAttr(*exec.Cmd) {}

func signalTerm(cmd *exec.Cmd) error { return cmd.Process.Kill() }

func killProcess(cmd *exec.Cmd) { _ = cmd.Process.Kill() }
