// Package mosquittotest runs a real Mosquitto broker for tests, on a free
// 127.0.0.1 port with its data in a temp dir, the way redistest runs
// redis-server: never the machine's own broker on 1883. When mosquitto is
// missing it is installed (Debian package, as root) or the test is
// skipped loudly; SWITCHBOARD_REQUIRE_SERVICES=1 makes that a failure.
//
// It is test support only: production code must never import it.
package mosquittotest
