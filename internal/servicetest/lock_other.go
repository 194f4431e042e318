//go:build !unix

package servicetest

// lockFile is a no-op where flock does not exist; installs happen on
// Debian only.
func lockFile(string) (func(), error) { return func() {}, nil }
