// Package embedded is the zero-config state.Store: one bbolt file in a
// data directory, so `switchboard serve` runs with nothing else installed
// and keeps its state across restarts.
//
// Layout. Everything durable lives in bbolt buckets (but for the log's
// tail not yet applied): key/values (value
// prefixed by its expiry) with an expiry index for the sweeper, ordered
// indexes (three trees all indexes share, keys prefixed by the index's
// name: member->score, a score-ordered key for range scans, and counts;
// see index.go), streams (entries by big-endian ID, a meta record with length and last
// ID) with their consumer groups (last-delivered ID and pending entries),
// and geo points. What is only fast in memory is rebuilt or kept there:
// an octree over the geo points, rebuilt at Open, and Incr counters,
// which the state.KV contract lets a single node keep in memory.
//
// Writes. Every write goes through one committer goroutine that packs all
// writes queued while the previous batch was fsyncing into the next batch
// (group commit). A returned write is durable, a lone writer pays one
// fsync, and many concurrent writers share them. A batch of indexed
// appends (the ticket stream) is made durable in a write-ahead log and
// written into the tree afterwards by the applier, many batches to a
// bbolt commit (wal.go); any other batch is one bbolt transaction, which
// the applier commits in its turn. Indexed appends applied together are
// merged (append.go): each index position they touch is written once per
// commit. Reads of streams and indexes wait until the applier has caught
// up with what was answered, so nobody reads past a returned write.
//
// Pub/sub is in process: each subscriber has a bounded channel and loses
// messages when it is full, so a slow subscriber never blocks a publisher
// (state.PubSub is at-most-once by contract).
//
// This package imports only package state, bbolt and the standard
// library; it must never import gateway, Fiber or a domain.
package embedded
