// Package ticket is the unified ticket stream: tickets, the append-only
// event log every channel writes into, per-ticket and per-customer
// timelines, identities across channels, signed ingest from outside
// channels, follow-ups, and the live feed.
//
// Layout on the state seam: every event is appended to one stream
// (StreamEvents), the log of record, which outside systems may consume
// with plain Redis commands. Timelines and ticket lists are ordered
// indexes projected from it, written in the same atomic step as the
// event (state.XAddIndexed), so the log and its projections never
// disagree.
//
// It is plain Go: it never imports gateway or Fiber.
package ticket
