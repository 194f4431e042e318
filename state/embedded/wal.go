package embedded

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"

	"github.com/switchboard/switchboard/state"
)

// The write-ahead log of indexed appends. A run of XAddIndexed calls is
// durable once its record is written and fdatasync'd to the log: one
// sequential write. The committer acknowledges the writers then, and
// the applier writes the run into the B-trees afterwards, together with
// every run logged meanwhile, in one bbolt commit (commit.go). This is
// etcd's split of a log and a bbolt backend: the B-tree commit costs a
// page per touched timeline however few events touched it, so it is
// paid per apply, for thousands of events, not per fsync of a few
// hundred.
//
// The log is a series of segment files in the data directory, named by
// the position of their first record. A record is its body's length (4
// bytes), its CRC-32C (4 bytes) and the body: the batch's position (8
// bytes) and its appends, each with the IDs the committer gave its
// entries, so replaying it writes what the writers were told. The last
// applied position is kept in the tree (bucketWAL), in the commit that
// applies it; Open replays the records after it and removes the log. A
// segment whose every record is applied is removed while the store runs.
var (
	bucketWAL  = []byte("wal")
	walApplied = []byte("applied")
)

// walSegmentSize is the size past which the log starts a new segment, so
// applied ones can be removed.
const walSegmentSize = 64 << 20

// maxKeptBuffer is the largest record buffer the log keeps for reuse.
const maxKeptBuffer = 16 << 20

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// wal is the log. Only the committer uses it.
type wal struct {
	dir         string
	segmentSize int64    // walSegmentSize, but in tests
	f           *os.File // the segment being written; nil until the next record
	size        int64    // f's size
	segs        []walSegment
	buf         []byte
}

// walSegment is a segment file and the position of its last record.
type walSegment struct {
	path string
	last uint64
}

func segmentPath(dir string, first uint64) string {
	return filepath.Join(dir, fmt.Sprintf("wal-%016x.log", first))
}

// append writes the record of run, logged at pos, and waits until it is
// on disk.
func (l *wal) append(pos uint64, run []*write) error {
	l.buf = encodeLogRecord(l.buf[:0], pos, run)
	if l.f == nil {
		path := segmentPath(l.dir, pos)
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return fmt.Errorf("embedded: create log segment: %w", err)
		}
		// The directory entry must be durable before a record in the
		// file is acknowledged.
		if err := syncDir(l.dir); err != nil {
			f.Close()
			os.Remove(path)
			return err
		}
		l.f, l.size = f, 0
		l.segs = append(l.segs, walSegment{path: path})
	}
	_, err := l.f.Write(l.buf)
	if err == nil {
		err = unix.Fdatasync(int(l.f.Fd()))
	}
	if err != nil {
		// Cut the torn record off and end the segment, so a record
		// after it is never behind a bad one.
		_ = l.f.Truncate(l.size)
		l.closeSegment()
		return fmt.Errorf("embedded: write log: %w", err)
	}
	l.size += int64(len(l.buf))
	l.segs[len(l.segs)-1].last = pos
	if cap(l.buf) > maxKeptBuffer {
		l.buf = nil // one huge batch must not pin its size for good
	}
	if l.size >= l.segmentSize {
		l.closeSegment()
	}
	return nil
}

func (l *wal) closeSegment() {
	_ = l.f.Close()
	l.f = nil
}

// release removes the segments, but the one being written, whose records
// are all applied.
func (l *wal) release(applied uint64) {
	for len(l.segs) > 0 && l.segs[0].last <= applied && (l.f == nil || len(l.segs) > 1) {
		_ = os.Remove(l.segs[0].path)
		l.segs = l.segs[1:]
	}
}

// close ends the log. With everything applied it removes every segment:
// Open would find nothing to replay in them.
func (l *wal) close(allApplied bool) {
	if l.f != nil {
		l.closeSegment()
	}
	if allApplied {
		for _, sg := range l.segs {
			_ = os.Remove(sg.path)
		}
		l.segs = nil
	}
}

// syncDir makes dir's entries (a created or removed file) durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("embedded: sync data directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("embedded: sync data directory: %w", err)
	}
	return nil
}

// encodeLogRecord appends run's record to b.
func encodeLogRecord(b []byte, pos uint64, run []*write) []byte {
	start := len(b)
	b = append(b, make([]byte, 8)...)
	b = binary.BigEndian.AppendUint64(b, pos)
	b = binary.AppendUvarint(b, uint64(len(run)))
	for _, w := range run {
		a := w.appends
		b = appendString(b, a.stream)
		b = binary.AppendUvarint(b, uint64(len(a.entries)))
		for i, e := range a.entries {
			b = binary.BigEndian.AppendUint64(b, a.ids[i].Ms)
			b = binary.BigEndian.AppendUint64(b, a.ids[i].Seq)
			b = binary.AppendUvarint(b, uint64(len(e.Value)))
			b = append(b, e.Value...)
			b = binary.AppendUvarint(b, uint64(len(e.Indexes)))
			for _, ie := range e.Indexes {
				b = appendString(b, ie.Index)
				b = appendString(b, ie.Member)
			}
		}
	}
	body := b[start+8:]
	binary.BigEndian.PutUint32(b[start:], uint32(len(body)))
	binary.BigEndian.PutUint32(b[start+4:], crc32.Checksum(body, castagnoli))
	return b
}

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

// errBadRecord is a record whose checksum matched but whose body does not
// parse: not a torn write but a bug or a damaged disk.
var errBadRecord = errors.New("embedded: log record does not parse")

// decodeLogRecord parses a record's body.
func decodeLogRecord(body []byte) (uint64, []*write, error) {
	r := recordReader{b: body}
	pos := r.u64()
	n := r.count()
	run := make([]*write, 0, n)
	for range n {
		a := &indexedAppend{stream: string(r.bytes())}
		entries := r.count()
		a.entries = make([]state.IndexedEntry, entries)
		a.ids = make([]state.ID, entries)
		for i := range a.entries {
			a.ids[i] = state.ID{Ms: r.u64(), Seq: r.u64()}
			a.entries[i].Value = r.bytes()
			a.entries[i].Indexes = make([]state.IndexEntry, r.count())
			for j := range a.entries[i].Indexes {
				a.entries[i].Indexes[j] = state.IndexEntry{Index: string(r.bytes()), Member: string(r.bytes())}
			}
		}
		run = append(run, &write{appends: a})
	}
	if r.bad || len(r.b) != 0 {
		return 0, nil, errBadRecord
	}
	return pos, run, nil
}

// recordReader reads a record's fields; past the end or on a bad length
// it sets bad and returns zeros.
type recordReader struct {
	b   []byte
	bad bool
}

func (r *recordReader) u64() uint64 {
	if len(r.b) < 8 {
		r.bad = true
		return 0
	}
	v := binary.BigEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v
}

// count reads a length, bounded by the bytes left (every counted thing
// takes at least one), so a bad one cannot make a huge allocation.
func (r *recordReader) count() int {
	v, n := binary.Uvarint(r.b)
	if n <= 0 || v > uint64(len(r.b)-n) {
		r.bad = true
		return 0
	}
	r.b = r.b[n:]
	return int(v)
}

func (r *recordReader) bytes() []byte {
	n := r.count()
	if r.bad {
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

// readSegment calls fn with each record of the segment at path, in order.
// It stops at the first record that is short or fails its checksum: a
// write a crash tore, never acknowledged, and the end of what the
// segment holds.
func readSegment(path string, fn func(pos uint64, run []*write) error) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("embedded: read log: %w", err)
	}
	for len(data) >= 8 {
		n := binary.BigEndian.Uint32(data)
		if uint64(n) > uint64(len(data)-8) {
			return nil
		}
		body := data[8 : 8+n]
		if crc32.Checksum(body, castagnoli) != binary.BigEndian.Uint32(data[4:]) {
			return nil
		}
		pos, run, err := decodeLogRecord(body)
		if err != nil {
			return fmt.Errorf("%w (%s)", err, path)
		}
		if err := fn(pos, run); err != nil {
			return err
		}
		data = data[8+n:]
	}
	return nil
}

// replayLog writes the log's records that the tree does not hold yet
// into it, removes the log, and returns the last position logged.
func replayLog(db *bolt.DB, dir string) (uint64, error) {
	var applied uint64
	if err := db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketWAL)
		if v := b.Get(walApplied); err == nil && len(v) == 8 {
			applied = binary.BigEndian.Uint64(v)
		}
		return err
	}); err != nil {
		return 0, fmt.Errorf("embedded: read log position: %w", err)
	}
	paths, err := filepath.Glob(filepath.Join(dir, "wal-*.log"))
	if err != nil {
		return 0, err
	}
	slices.Sort(paths) // fixed-width hex names: name order is position order
	last := applied
	var pending []*write
	flush := func() error {
		if len(pending) == 0 {
			return nil
		}
		err := db.Update(func(tx *bolt.Tx) error { return applyLogged(tx, pending, last) })
		pending = pending[:0]
		if err != nil {
			return fmt.Errorf("embedded: replay log: %w", err)
		}
		return nil
	}
	for _, path := range paths {
		err := readSegment(path, func(pos uint64, run []*write) error {
			if pos <= applied {
				return nil
			}
			if pos <= last {
				return fmt.Errorf("embedded: log position %d after %d (%s)", pos, last, path)
			}
			last = pos
			pending = append(pending, run...)
			if len(pending) >= 4*maxBatch {
				return flush()
			}
			return nil
		})
		if err != nil {
			return 0, err
		}
	}
	if err := flush(); err != nil {
		return 0, err
	}
	for _, path := range paths {
		if err := os.Remove(path); err != nil {
			return 0, fmt.Errorf("embedded: remove replayed log: %w", err)
		}
	}
	if len(paths) > 0 {
		if err := syncDir(dir); err != nil {
			return 0, err
		}
	}
	return last, nil
}

// applyLogged writes logged runs into tx and records pos, the last one's
// position, as applied.
func applyLogged(tx *bolt.Tx, run []*write, pos uint64) error {
	if err := writeRun(tx, run); err != nil {
		return err
	}
	return tx.Bucket(bucketWAL).Put(walApplied, binary.BigEndian.AppendUint64(nil, pos))
}
