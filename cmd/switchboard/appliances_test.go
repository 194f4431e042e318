package main

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMQTTPortTakenFailsStartUp: a taken --mqtt-addr stops start-up with a
// line naming the address, before anything serves.
func TestMQTTPortTakenFailsStartUp(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	failsToStart(t, "MQTT broker: listen on "+ln.Addr().String(), "--mqtt-addr", ln.Addr().String())
}

func TestApplianceSettingsAreValidated(t *testing.T) {
	rules := filepath.Join(t.TempDir(), "rules.json")
	if err := os.WriteFile(rules, []byte(`{"rules":[{"model":"*","code":"E1","action":"order_part"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ args []string }{
		{[]string{"--mqtt-addr", "nowhere"}},
		{[]string{"--mqtt-url", "http://broker:1883"}},
		{[]string{"--mqtt-client-id", "a/b"}},
		{[]string{"--appliance-rules", rules}},
		{[]string{"--relay-token-ttl", "48h"}},
	} {
		var stderr bytes.Buffer
		code := run(t.Context(), append([]string{"serve", "--data", t.TempDir()}, tc.args...), &bytes.Buffer{}, &stderr, env())
		if code != exitUsage || !strings.Contains(stderr.String(), tc.args[0]) {
			t.Errorf("%v: exit %d: %s", tc.args, code, stderr.String())
		}
	}
}
