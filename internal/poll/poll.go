// Package poll waits in tests for a condition, never for a fixed time
// (nats-server's checkFor): a slow machine makes a test slower, not red.
// Test code only.
package poll

import (
	"testing"
	"time"
)

// Until calls f every interval until it returns nil, and fails the test
// with f's last error once total has passed.
func Until(t testing.TB, total, every time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(total)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(every)
	}
}
