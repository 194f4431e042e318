//go:build unix && !linux

package servicetest

import "syscall"

func setDeathSignal(*syscall.SysProcAttr) {}
