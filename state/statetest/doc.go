// Package statetest is the contract suite for state.Store: one body of
// tests that every backend runs, so a guarantee documented in package state
// is proven for state/embedded and state/redis alike (the pattern of
// centrifuge's map_broker_shared_test.go and nats-server's store_test.go).
//
// A backend's test file calls Run with a constructor returning a fresh,
// empty store (the constructor registers its own t.Cleanup), RunReopen
// when the backend persists to a directory, and Bench from a benchmark.
//
// The suite uses only the standard library testing package. Every case is
// bounded by a context timeout, and waits for time-based behaviour (TTL
// expiry, idle times, blocking reads) by polling with checkFor, never by
// sleeping and hoping.
//
// This package imports only package state and the standard library; it
// must never import a backend.
package statetest
