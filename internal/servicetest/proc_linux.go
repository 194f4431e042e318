//go:build linux

package servicetest

import "syscall"

// setDeathSignal kills the server if the test binary dies without running
// its cleanups (a panic, a -timeout kill), so no orphan keeps the port.
// Linux sends it when the OS thread that started the child exits; the Go
// runtime ends threads only for goroutines that exit while locked to one
// (runtime.LockOSThread), which tests starting servers do not do.
func setDeathSignal(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGKILL }
