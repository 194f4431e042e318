// Package redis is the scaled-out state backend: state.Store on Redis
// (go-redis v9), shared by every gateway node.
//
// Each primitive maps to the Redis structure it was modelled on, under a
// key prefix (Config.Prefix, "sb:" by default) so several deployments can
// share one Redis and operators can read the keys:
//
//	sb:kv:<key>      string             KV (Get, Set, SetNX, CAS, ...)
//	sb:n:<key>       string (integer)   KV counters (Incr)
//	sb:z:<index>     sorted set         Index
//	sb:x:<stream>    stream             Streams; one field "d" per entry
//	sb:geo:<set>     geo (sorted) set   Geo
//	sb:ps:<channel>  pub/sub channel    PubSub
//
// Streams are plain Redis Streams, so an outside service (CRM, analytics)
// can consume sb:x:<stream> with XREADGROUP and read the payload from "d".
//
// Redis replies are translated at this seam: redis.Nil becomes
// state.ErrNotFound, a closed client state.ErrClosed, and inputs Redis
// would reject with an error reply (bad coordinates, NaN scores, malformed
// stream IDs) are refused before they are sent, with the same errors the
// embedded backend returns.
//
// Operators: run Redis with appendonly yes and maxmemory-policy noeviction.
// Streams and claims are state, not cache; an evicting policy or RDB-only
// persistence loses them. Nothing here trims streams (no MAXLEN).
//
// This package must never import a domain package, gateway or Fiber.
package redis
