package embedded

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/switchboard/switchboard/state"
)

func segments(t *testing.T, dir string) []string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, "wal-*.log"))
	if err != nil {
		t.Fatal(err)
	}
	return paths
}

// TestLogReadYourWrites checks that a read begun after an indexed append
// returned sees it, although the applier writes it into the tree later.
func TestLogReadYourWrites(t *testing.T) {
	s := openT(t, t.TempDir())
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for g := range 32 {
		wg.Go(func() {
			ix := fmt.Sprint("tl:", g)
			for i := range 40 {
				ids, err := s.XAddIndexed(ctx, "events", state.IndexedEntry{
					Value:   []byte("v"),
					Indexes: []state.IndexEntry{{Index: ix}, {Index: "list", Member: ix}},
				})
				if err != nil {
					errs <- err
					return
				}
				id, _ := state.ParseID(ids[0])
				if n, err := s.ZCard(ctx, ix); err != nil || n != int64(i+1) {
					errs <- fmt.Errorf("%s after %d appends: ZCard %d, %v", ix, i+1, n, err)
					return
				}
				if sc, err := s.ZScore(ctx, "list", ix); err != nil || sc != float64(id.Ms) {
					errs <- fmt.Errorf("list score of %s: %v, %v; want %d", ix, sc, err, id.Ms)
					return
				}
				prev := state.ID{Ms: id.Ms, Seq: id.Seq - 1}
				if id.Seq == 0 {
					prev = state.ID{Ms: id.Ms - 1, Seq: 1<<64 - 1}
				}
				if es, err := s.XRead(ctx, "events", prev.String(), 1, 0); err != nil || len(es) != 1 || es[0].ID != ids[0] {
					errs <- fmt.Errorf("XRead of %s: %v, %v", ids[0], es, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestLogSegmentsReleased checks that applied segments are removed while
// the store runs, and the rest at Close, with nothing lost.
func TestLogSegmentsReleased(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir)
	s.log.segmentSize = 1 << 10 // read by the committer after the first write is queued
	ctx := context.Background()
	value := []byte(strings.Repeat("x", 200))
	for range 300 {
		if _, err := s.XAddIndexed(ctx, "events", state.IndexedEntry{Value: value, Indexes: []state.IndexEntry{{Index: "tl"}}}); err != nil {
			t.Fatal(err)
		}
	}
	// A read waits until all of it is applied; the next append releases
	// every segment but its own.
	if n, err := s.ZCard(ctx, "tl"); err != nil || n != 300 {
		t.Fatalf("ZCard = %d, %v; want 300", n, err)
	}
	if _, err := s.XAddIndexed(ctx, "events", state.IndexedEntry{Value: value}); err != nil {
		t.Fatal(err)
	}
	if got := segments(t, dir); len(got) != 1 {
		t.Errorf("segments after everything was applied: %v; want only the one being written", got)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got := segments(t, dir); len(got) != 0 {
		t.Errorf("segments after Close: %v", got)
	}
	s = openT(t, dir)
	if n, err := s.XLen(ctx, "events"); err != nil || n != 301 {
		t.Errorf("XLen after reopen = %d, %v; want 301", n, err)
	}
}

// TestLogReplay writes segments as a crash would leave them (records the
// tree has, records it lacks, a torn record and one with a bad checksum)
// and checks that Open writes exactly the records it lacks.
func TestLogReplay(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s := openT(t, dir)
	ids, err := s.XAddIndexed(ctx, "events", state.IndexedEntry{Value: []byte("a"), Indexes: []state.IndexEntry{{Index: "tl"}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	applied := s.progress.applied.Load()
	first, _ := state.ParseID(ids[0])

	rec := func(pos uint64, value string, id state.ID) []byte {
		return encodeLogRecord(nil, pos, []*write{{appends: &indexedAppend{
			stream:  "events",
			entries: []state.IndexedEntry{{Value: []byte(value), Indexes: []state.IndexEntry{{Index: "tl"}, {Index: "list", Member: value}}}},
			ids:     []state.ID{id},
		}}})
	}
	idB, idC, idD := state.ID{Ms: first.Ms + 1}, state.ID{Ms: first.Ms + 2}, state.ID{Ms: first.Ms + 3}
	// Segment 1: "a" again (applied already: must not be written twice),
	// then "b". Segment 2: "c", then "d" torn in half.
	seg1 := append(rec(applied, "a", first), rec(applied+1, "b", idB)...)
	d := rec(applied+3, "d", idD)
	seg2 := append(rec(applied+2, "c", idC), d[:len(d)/2]...)
	// Segment 3: a record whose checksum fails ends it.
	bad := rec(applied+4, "e", state.ID{Ms: first.Ms + 4})
	bad[len(bad)-1] ^= 0xff
	for i, data := range [][]byte{seg1, seg2, bad} {
		if err := os.WriteFile(segmentPath(dir, applied+uint64(2*i)), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}

	s = openT(t, dir)
	if got := segments(t, dir); len(got) != 0 {
		t.Errorf("segments after replay: %v", got)
	}
	es, err := s.XRead(ctx, "events", "0-0", 10, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range es {
		got = append(got, e.ID+"="+string(e.Data))
	}
	want := []string{first.String() + "=a", idB.String() + "=b", idC.String() + "=c"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("entries after replay: %v; want %v", got, want)
	}
	if n, err := s.XLen(ctx, "events"); err != nil || n != 3 {
		t.Errorf("XLen = %d, %v; want 3", n, err)
	}
	if n, err := s.ZCard(ctx, "tl"); err != nil || n != 3 {
		t.Errorf("timeline has %d, %v; want 3", n, err)
	}
	if sc, err := s.ZScore(ctx, "list", "c"); err != nil || sc != float64(idC.Ms) {
		t.Errorf("list score of c = %v, %v; want %d", sc, err, idC.Ms)
	}
	// New IDs follow the replayed ones, and positions the old log used.
	next, err := s.XAddIndexed(ctx, "events", state.IndexedEntry{Value: []byte("f")})
	if err != nil {
		t.Fatal(err)
	}
	if id, _ := state.ParseID(next[0]); !idC.Less(id) {
		t.Errorf("ID after replay %s is not after %s", next[0], idC)
	}
	if _, err := s.XLen(ctx, "events"); err != nil {
		t.Fatal(err)
	}
	if pos := s.progress.applied.Load(); pos <= applied+2 {
		t.Errorf("log position after replay %d; want past %d", pos, applied+2)
	}
}

// TestLogCrash kills a process that is appending, and checks that every
// append it was told is durable is there after Open, timelines and all.
func TestLogCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a process")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestLogCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), "EMBEDDED_LOG_CRASH_DIR="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	type ack struct {
		id, value, ix string
	}
	var acks []ack
	sets := map[string]int{}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 4 && f[0] == "append":
			acks = append(acks, ack{f[1], f[2], f[3]})
		case len(f) == 3 && f[0] == "set":
			n, _ := strconv.Atoi(f[2])
			sets[f[1]] = n
		}
		if len(acks) == 5000 {
			cmd.Process.Kill()
		}
	}
	_ = cmd.Wait()
	if len(acks) < 5000 {
		t.Fatalf("the child acknowledged %d appends before it ended", len(acks))
	}
	if len(segments(t, dir)) == 0 {
		t.Fatal("no log left by the killed process: nothing to replay")
	}

	s := openT(t, dir)
	ctx := context.Background()
	es, err := s.XRead(ctx, "events", "0-0", 1<<20, 0)
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]string{}
	for _, e := range es {
		have[e.ID] = string(e.Data)
	}
	if n, err := s.XLen(ctx, "events"); err != nil || n != int64(len(es)) {
		t.Errorf("XLen = %d, %v; the stream holds %d", n, err, len(es))
	}
	lost := 0
	for _, a := range acks {
		if have[a.id] != a.value {
			lost++
			continue
		}
		id, _ := state.ParseID(a.id)
		if _, err := s.ZScore(ctx, a.ix, state.IDMember(id)); err != nil {
			t.Errorf("%s is not on timeline %s: %v", a.id, a.ix, err)
		}
	}
	if lost > 0 {
		t.Errorf("%d of %d acknowledged appends are missing after the crash", lost, len(acks))
	}
	for k, n := range sets {
		v, err := s.Get(ctx, k)
		if got, _ := strconv.Atoi(string(v)); err != nil || got < n {
			t.Errorf("%s = %q, %v; it was acknowledged at %d", k, v, err, n)
		}
	}
	t.Logf("%d acknowledged appends, %d in the stream after replay", len(acks), len(es))
}

// TestLogCrashChild is TestLogCrash's process: it appends, from several
// goroutines, until it is killed, printing each append it was answered
// for, and sets a key now and then so logged and committed batches mix.
func TestLogCrashChild(t *testing.T) {
	dir := os.Getenv("EMBEDDED_LOG_CRASH_DIR")
	if dir == "" {
		t.Skip("run by TestLogCrash")
	}
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	s.log.segmentSize = 16 << 10
	// Many writers: batches big enough that a kill often finds some
	// logged and not yet applied.
	var mu sync.Mutex
	for g := range 64 {
		go func() {
			ix := fmt.Sprint("tl:", g)
			for i := 0; ; i++ {
				value := fmt.Sprintf("g%d-%d", g, i)
				ids, err := s.XAddIndexed(context.Background(), "events", state.IndexedEntry{
					Value:   []byte(value),
					Indexes: []state.IndexEntry{{Index: ix}, {Index: "list", Member: ix}},
				})
				if err != nil {
					panic(err)
				}
				mu.Lock()
				fmt.Printf("append %s %s %s\n", ids[0], value, ix)
				mu.Unlock()
				if i%10 == 0 {
					key := fmt.Sprint("last:", g)
					if err := s.Set(context.Background(), key, []byte(strconv.Itoa(i)), 0); err != nil {
						panic(err)
					}
					mu.Lock()
					fmt.Printf("set %s %d\n", key, i)
					mu.Unlock()
				}
			}
		}()
	}
	time.Sleep(time.Minute) // killed long before
	t.Fatal("not killed")
}

// TestLogFailureFallsBackToCommit checks that appends the log cannot take
// are committed into the tree instead, in order, and that logging
// resumes after them with IDs that follow theirs.
func TestLogFailureFallsBackToCommit(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir)
	ctx := context.Background()
	add := func(v string) state.ID {
		t.Helper()
		ids, err := s.XAddIndexed(ctx, "events", state.IndexedEntry{Value: []byte(v), Indexes: []state.IndexEntry{{Index: "tl"}}})
		if err != nil {
			t.Fatalf("append %s: %v", v, err)
		}
		id, _ := state.ParseID(ids[0])
		return id
	}
	var ids []state.ID
	ids = append(ids, add("a"))
	// A stopped clock: IDs then differ by sequence alone, so an ID given
	// twice would show.
	stopped := time.Now().Add(time.Second)
	s.now = func() time.Time { return stopped }
	// A segment cannot be created in a directory that is not there. The
	// committer and applier read these only once the next write reaches
	// them.
	s.log.segmentSize = 1 // every record ends its segment
	ids = append(ids, add("b"))
	s.log.dir = filepath.Join(dir, "missing")
	ids = append(ids, add("c"), add("d"))
	s.log.dir = dir
	ids = append(ids, add("e"))
	for i := 1; i < len(ids); i++ {
		if !ids[i-1].Less(ids[i]) {
			t.Errorf("IDs out of order: %v", ids)
		}
	}
	es, err := s.XRead(ctx, "events", ids[0].String(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range es {
		got = append(got, string(e.Data))
	}
	if fmt.Sprint(got) != "[b c d e]" {
		t.Errorf("after the first entry: %v", got)
	}
	if n, err := s.ZCard(ctx, "tl"); err != nil || n != 5 {
		t.Errorf("timeline holds %d, %v; want 5", n, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openT(t, dir)
	if n, err := s.XLen(ctx, "events"); err != nil || n != 5 {
		t.Errorf("XLen after reopen = %d, %v; want 5", n, err)
	}
}

// TestBigAppendsSkipTheLog checks that appends of bigAppend entries or
// more are committed into the tree, not logged, and that the stream, its
// tail and its indexes agree with small appends logged around them.
func TestBigAppendsSkipTheLog(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir)
	ctx := context.Background()
	big := make([]state.IndexedEntry, bigAppend)
	value := []byte(strings.Repeat("b", 1000))
	for i := range big {
		big[i] = state.IndexedEntry{Value: value, Indexes: []state.IndexEntry{{Index: "tl"}}}
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 10 {
				var err error
				if g == 0 {
					_, err = s.XAddIndexed(ctx, "events", big...)
				} else {
					_, err = s.XAddIndexed(ctx, "events", state.IndexedEntry{Value: []byte(fmt.Sprint(g, ".", i)), Indexes: []state.IndexEntry{{Index: "tl"}}})
				}
				if err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	const n = 10*bigAppend + 7*10
	if c, err := s.ZCard(ctx, "tl"); err != nil || c != n {
		t.Errorf("timeline holds %d, %v; want %d", c, err, n)
	}
	var logged int64
	for _, p := range segments(t, dir) {
		if fi, err := os.Stat(p); err == nil {
			logged += fi.Size()
		}
	}
	if logged >= int64(len(value)*bigAppend) { // the small appends take a few KB
		t.Errorf("the log holds %d bytes: the big appends went through it", logged)
	}
	all, err := s.XRead(ctx, "events", "0", 0, 0)
	if err != nil || len(all) != n {
		t.Fatalf("XRead: %d entries, %v; want %d", len(all), err, n)
	}
	for i := 1; i < len(all); i++ {
		a, _ := state.ParseID(all[i-1].ID)
		b, _ := state.ParseID(all[i].ID)
		if !a.Less(b) {
			t.Fatalf("entries out of order at %d: %s, %s", i, a, b)
		}
	}
	// The tail, which both paths feed, answers as the tree does.
	for _, at := range []int{n - 2, n - 100, n - 300} {
		got, err := s.XRead(ctx, "events", all[at].ID, 0, 0)
		if err != nil || fmt.Sprint(got) != fmt.Sprint(all[at+1:]) {
			t.Errorf("XRead after entry %d: %d entries, %v; want %d", at, len(got), err, n-at-1)
		}
	}
}

// TestApplyFailureStopsTheStore makes the tree refuse an apply (a key
// planted where the stream's bucket must go) and checks that the store
// then refuses writes and reads of that stream with the reason, and that
// the append it answered, durable in the log, is there after a reopen.
func TestApplyFailureStopsTheStore(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s := openT(t, dir)
	if err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketStreams).Put([]byte("bad"), []byte("not a bucket"))
	}); err != nil {
		t.Fatal(err)
	}
	ids, err := s.XAddIndexed(ctx, "bad", state.IndexedEntry{Value: []byte("kept"), Indexes: []state.IndexEntry{{Index: "tl"}}})
	if err != nil {
		t.Fatalf("the append was refused before the log: %v", err)
	}
	if _, err := s.ZCard(ctx, "tl"); err == nil || !strings.Contains(err.Error(), "apply the log") {
		t.Errorf("a read of the index after the failed apply: %v", err)
	}
	if err := s.Set(ctx, "k", []byte("v"), 0); err == nil {
		t.Error("a write was taken after the failed apply")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if len(segments(t, dir)) == 0 {
		t.Fatal("the log is gone although it was never applied")
	}

	// Clear the obstacle as an operator would, then reopen.
	db, err := bolt.Open(filepath.Join(dir, FileName), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketStreams).Delete([]byte("bad")) }); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s = openT(t, dir)
	es, err := s.XRead(ctx, "bad", "0", 0, 0)
	if err != nil || len(es) != 1 || es[0].ID != ids[0] || string(es[0].Data) != "kept" {
		t.Errorf("after reopen: %v, %v; want the answered append %s", es, err, ids[0])
	}
	if n, err := s.ZCard(ctx, "tl"); err != nil || n != 1 {
		t.Errorf("timeline after reopen: %d, %v", n, err)
	}
}
