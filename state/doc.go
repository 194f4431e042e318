// Package state is the storage seam of Switchboard: one small set of
// primitives modelled on what Redis offers (key/value with TTL, ordered
// indexes, append-only streams with consumer groups, geo sets, pub/sub,
// and batches that read or write several keys in one step), with two
// implementations: state/embedded (a bbolt file, the zero-config
// default) and state/redis (go-redis v9, for many gateway nodes).
//
// Domains see only these interfaces, so they cannot tell which backend they
// run on. Every guarantee a method documents holds for both implementations;
// state/statetest is the contract suite that proves it.
//
// This package must never import a backend, gateway, Fiber or a domain.
package state
