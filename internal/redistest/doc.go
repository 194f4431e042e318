// Package redistest runs a real redis-server for tests: one process per
// Start, on a free 127.0.0.1 port, with its data in t.TempDir(), stopped in
// t.Cleanup. Tests of the Redis backend use it instead of a mock (see
// DESIGN.md, "The state seam") and never touch a Redis on the default port.
//
// When redis-server is missing, Start installs the Debian package if it can
// (root and apt-get), and otherwise skips the test loudly; with
// SWITCHBOARD_REQUIRE_SERVICES=1 the skip becomes a failure, so CI cannot
// pass by skipping. SWITCHBOARD_REDIS_SERVER names a specific binary.
//
// This package is imported only by tests. It must never import the state
// backends or any domain package.
package redistest
