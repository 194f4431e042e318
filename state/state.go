package state

import (
	"context"
	"time"
)

// Store is every primitive a domain may use. One value is safe for
// concurrent use by many goroutines.
type Store interface {
	KV
	Index
	Streams
	Geo
	PubSub
	Batch

	// Ping reports whether the backend answers; /readyz calls it.
	Ping(ctx context.Context) error
	// Close releases the backend. It is idempotent; after it every method
	// returns ErrClosed (or a wrapped error).
	Close() error
}

// KV is a key/value map with optional expiry. A ttl of zero means the key
// never expires. Keys are opaque strings; values opaque bytes.
type KV interface {
	// Get returns the value of key, or ErrNotFound if it is absent or expired.
	Get(ctx context.Context, key string) ([]byte, error)
	// Set stores value under key, replacing any previous value and TTL.
	Set(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// SetNX stores value only if key is absent (or expired) and reports
	// whether it did. Atomic: of many concurrent callers exactly one wins.
	SetNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error)
	// CompareAndSwap replaces the value of key with value, and its TTL with
	// ttl, only if the current value equals old byte for byte, and reports
	// whether it did. A nil old means "only if absent", like SetNX. Atomic.
	CompareAndSwap(ctx context.Context, key string, old, value []byte, ttl time.Duration) (bool, error)
	// CompareAndDelete deletes key only if its value equals old and reports
	// whether it did; it releases a claim without stealing someone else's.
	CompareAndDelete(ctx context.Context, key string, old []byte) (bool, error)
	// Delete removes key; deleting an absent key is not an error.
	Delete(ctx context.Context, key string) error
	// Incr adds delta to the integer counter at key and returns the new
	// value. The ttl is applied only when the call creates the counter, so
	// a fixed-window rate limit is Incr(key, 1, window). Atomic.
	//
	// Counters are meant for rate limits and other short-lived tallies: the
	// embedded store keeps them in memory (one node has nobody to share them
	// with) and they do not survive a restart; Redis shares them across nodes.
	// A counter's key is for Incr and Delete (which resets it) only: Get,
	// Set and the compare operations need not see counters.
	Incr(ctx context.Context, key string, delta int64, ttl time.Duration) (int64, error)
}

// ScoredMember is a member of an ordered index with its score.
type ScoredMember struct {
	Member string
	Score  float64
}

// RangeOptions selects members of an ordered index by score, inclusive at
// both ends. Members with equal scores are ordered by member, byte-wise.
type RangeOptions struct {
	Min, Max float64 // use math.Inf for open ends
	Reverse  bool    // highest score first: the forward order backwards, ties included
	Offset   int     // members to skip
	Limit    int     // 0 means no limit
}

// Index is an ordered set of members by score: queues ("longest idle
// agent"), "tickets by last update", schedules ("follow-ups due by now").
type Index interface {
	// ZAdd sets the score of member, adding it if absent.
	ZAdd(ctx context.Context, index, member string, score float64) error
	// ZRem removes member and reports whether it was there.
	ZRem(ctx context.Context, index, member string) (bool, error)
	// ZScore returns the score of member or ErrNotFound.
	ZScore(ctx context.Context, index, member string) (float64, error)
	// ZRange returns members whose score lies in [Min, Max], ordered.
	ZRange(ctx context.Context, index string, opt RangeOptions) ([]ScoredMember, error)
	// ZPopMin atomically removes and returns up to n members with the
	// lowest scores; of concurrent callers each member goes to exactly one.
	ZPopMin(ctx context.Context, index string, n int) ([]ScoredMember, error)
	// ZCard returns the number of members.
	ZCard(ctx context.Context, index string) (int64, error)
}

// Entry is one element of a stream. IDs have the Redis form "ms-seq" and
// grow strictly within a stream; compare them with CompareIDs.
type Entry struct {
	ID   string
	Data []byte
}

// IndexEntry is an index entry written by XAddIndexed.
type IndexEntry struct {
	Index string
	// Member is the member to set; empty means the new entry's ID in
	// IDMember form, so the index lists entries in ID order.
	Member string
}

// IndexedEntry is a stream value and the index entries written with it.
type IndexedEntry struct {
	Value   []byte
	Indexes []IndexEntry
}

// Streams are append-only logs with consumer groups, as Redis Streams.
//
// Delivery guarantees: XReadGroup hands each new entry to exactly one
// consumer of a group; an entry stays pending until acknowledged, and
// XAutoClaim moves pending entries idle for long enough to another
// consumer, so an entry is delivered at least once even when its first
// consumer dies.
type Streams interface {
	// XAdd appends values in order, atomically as one batch, and returns
	// their IDs. When XAdd returns nil the entries are durable to the
	// degree the backend is configured for (embedded: fsynced to disk).
	XAdd(ctx context.Context, stream string, values ...[]byte) ([]string, error)
	// XAddIndexed appends entries in order and, in the same atomic step,
	// adds each entry's IndexEntry members to their indexes with the
	// entry's millisecond as score: all of it is written, or none. It
	// lets a log and the indexes projected from it never disagree, in one
	// write instead of many. Durable as XAdd.
	XAddIndexed(ctx context.Context, stream string, entries ...IndexedEntry) ([]string, error)
	// XRead returns up to count entries with an ID greater than after
	// ("0" or "" for the start), oldest first; a count of 0 means no limit.
	// If there are none and block is positive it waits up to block for new
	// ones; it returns an empty slice, not an error, when block runs out.
	XRead(ctx context.Context, stream, after string, count int, block time.Duration) ([]Entry, error)
	// XRevRange returns up to count entries with an ID less than before
	// ("" for the end), newest first: the page before a cursor. A count of
	// 0 means no limit.
	XRevRange(ctx context.Context, stream, before string, count int) ([]Entry, error)
	// XLen returns the number of entries in stream.
	XLen(ctx context.Context, stream string) (int64, error)

	// XGroupCreate creates group on stream (creating an empty stream if
	// needed), delivering entries after startID ("0" for all, "$" for only
	// new ones). Creating an existing group is not an error.
	XGroupCreate(ctx context.Context, stream, group, startID string) error
	// XReadGroup delivers up to count never-delivered entries to consumer,
	// marking them pending; it blocks up to block when there are none.
	XReadGroup(ctx context.Context, stream, group, consumer string, count int, block time.Duration) ([]Entry, error)
	// XAck acknowledges entries; acknowledging twice is not an error.
	XAck(ctx context.Context, stream, group string, ids ...string) error
	// XAutoClaim transfers up to count entries pending for at least
	// minIdle, whoever held them, to consumer and returns them. Their idle
	// time restarts, so two claimers never take the same entry at once.
	XAutoClaim(ctx context.Context, stream, group, consumer string, minIdle time.Duration, count int) ([]Entry, error)
}

// MaxLatitude is the largest latitude a geo set accepts: the limit of the
// Web Mercator projection that Redis GEO uses (EPSG:900913).
const MaxLatitude = 85.05112878

// GeoPoint is a member of a geo set at a position in degrees (WGS 84).
type GeoPoint struct {
	Member string
	Lat    float64
	Lon    float64
}

// GeoResult is a GeoPoint found by a search, with its distance in metres
// from the search centre.
type GeoResult struct {
	GeoPoint
	DistanceM float64
}

// Geo holds points for nearest searches: technicians' positions, stores.
// Distances are great-circle (haversine) on the sphere Redis uses
// (EarthRadiusM), so both backends agree to within a metre.
type Geo interface {
	// GeoAdd adds or moves points. Any invalid coordinate fails the whole
	// call with ErrInvalidCoordinates and stores nothing.
	GeoAdd(ctx context.Context, set string, points ...GeoPoint) error
	// GeoRemove removes members; absent ones are ignored.
	GeoRemove(ctx context.Context, set string, members ...string) error
	// GeoPos returns the stored position of member or ErrNotFound. The
	// Redis backend stores 52-bit geohashes, so a position comes back
	// within about a metre of what was put.
	GeoPos(ctx context.Context, set, member string) (GeoPoint, error)
	// GeoNearest returns up to k members within radiusM metres of the
	// centre, nearest first; a k of 0 means no limit.
	GeoNearest(ctx context.Context, set string, lat, lon, radiusM float64, k int) ([]GeoResult, error)
}

// EarthRadiusM is the sphere radius Redis uses for GEO distances.
const EarthRadiusM = 6372797.560856

// Message is one pub/sub message.
type Message struct {
	Channel string
	Payload []byte
}

// Subscription receives messages published to its channels after
// Subscribe returned.
type Subscription interface {
	// C delivers messages. It is closed when the subscription ends.
	C() <-chan Message
	// Close ends the subscription; it is idempotent.
	Close() error
}

// PubSub is live, at-most-once fan-out across nodes. A subscriber that
// falls behind may lose messages: anything that must not be lost goes
// through a stream, and pub/sub only says "look".
type PubSub interface {
	Publish(ctx context.Context, channel string, payload []byte) error
	Subscribe(ctx context.Context, channels ...string) (Subscription, error)
}
