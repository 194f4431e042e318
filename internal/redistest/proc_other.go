//go:build !unix

package redistest

import "os/exec"

func setProcAttr(*exec.Cmd) {}

func killProcess(cmd *exec.Cmd) { _ = cmd.Process.Kill() }

// lockFile is a no-op where flock does not exist; apt-get does not either.
func lockFile(string) (func(), error) { return func() {}, nil }
