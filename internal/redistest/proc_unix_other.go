//go:build unix && !linux

package redistest

import "syscall"

func setDeathSignal(*syscall.SysProcAttr) {}
