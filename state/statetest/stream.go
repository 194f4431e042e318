package statetest

import (
	"context"
	"errors"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/switchboard/switchboard/state"
)

// longBlock is the block of reads a case expects to be woken early: far
// longer than any wake-up, so returning before it proves the wake-up.
const longBlock = 20 * time.Second

// letReaderBlock gives a reader goroutine time to start blocking before
// the write that should wake it. Correctness never depends on it: a
// reader that has not blocked yet finds the entry without waiting. It
// only makes the wake-up path the one usually exercised.
const letReaderBlock = 50 * time.Millisecond

var streamCases = []testCase{
	{"XAddIDs", testXAddIDs},
	{"XRead", testXRead},
	{"XReadBlockWoken", testXReadBlockWoken},
	{"XReadBlockTimeout", testXReadBlockTimeout},
	{"XReadBlockCancel", testXReadBlockCancel},
	{"XRevRangePaging", testXRevRangePaging},
	{"XAddIndexed", testXAddIndexed},
}

// addEntries appends data to stream in one XAdd and checks the IDs.
func addEntries(t testing.TB, ctx context.Context, s state.Store, stream string, data [][]byte) []string {
	t.Helper()
	ids, err := s.XAdd(ctx, stream, data...)
	must(t, err, "XAdd")
	if len(ids) != len(data) {
		t.Fatalf("XAdd of %d values returned %d IDs", len(data), len(ids))
	}
	return ids
}

func checkIncreasing(t testing.TB, ids []string) {
	t.Helper()
	for i, id := range ids {
		if _, err := state.ParseID(id); err != nil {
			t.Fatalf("ID %q does not parse: %v", id, err)
		}
		if i > 0 && state.CompareIDs(ids[i-1], id) >= 0 {
			t.Fatalf("IDs not strictly increasing: %s then %s (all: %v)", ids[i-1], id, ids)
		}
	}
}

func testXAddIDs(t *testing.T, s state.Store) {
	ctx := testContext(t)
	if n, err := s.XLen(ctx, "absent"); err != nil || n != 0 {
		t.Fatalf("XLen absent stream: got %d, %v; want 0", n, err)
	}
	var ids []string
	for i := range 5 {
		// Batches of varying size, all in the same few milliseconds, so
		// sequence numbers within one millisecond are exercised.
		ids = append(ids, addEntries(t, ctx, s, "s", payloads("b", i+1))...)
	}
	checkIncreasing(t, ids)
	if n, err := s.XLen(ctx, "s"); err != nil || n != int64(len(ids)) {
		t.Fatalf("XLen: got %d, %v; want %d", n, err, len(ids))
	}
	// Streams are independent.
	addEntries(t, ctx, s, "other", payloads("o", 2))
	if n, err := s.XLen(ctx, "s"); err != nil || n != int64(len(ids)) {
		t.Fatalf("XLen after writing another stream: got %d, %v; want %d", n, err, len(ids))
	}
}

func testXRead(t *testing.T, s state.Store) {
	ctx := testContext(t)
	data := payloads("e", 10)
	ids := addEntries(t, ctx, s, "s", data)

	for _, start := range []string{"", "0", "0-0"} {
		got, err := s.XRead(ctx, "s", start, 100, 0)
		must(t, err, "XRead from "+start)
		checkEntries(t, got, ids, data)
	}
	got, err := s.XRead(ctx, "s", ids[3], 4, 0)
	must(t, err, "XRead after cursor")
	checkEntries(t, got, ids[4:8], data[4:8])

	got, err = s.XRead(ctx, "s", ids[9], 10, 0)
	must(t, err, "XRead at the end")
	if len(got) != 0 {
		t.Fatalf("XRead after last ID: got %v, want empty", entryIDs(got))
	}
	got, err = s.XRead(ctx, "absent", "", 10, 0)
	if err != nil || len(got) != 0 {
		t.Fatalf("XRead absent stream: got %v, %v; want empty, nil", entryIDs(got), err)
	}

	// Reading page by page from a cursor visits every entry once.
	var paged []state.Entry
	cursor := ""
	for {
		page, err := s.XRead(ctx, "s", cursor, 3, 0)
		must(t, err, "XRead page")
		if len(page) == 0 {
			break
		}
		paged = append(paged, page...)
		cursor = page[len(page)-1].ID
	}
	checkEntries(t, paged, ids, data)
}

// readResult carries a blocking read's outcome back to the test.
type readResult struct {
	entries []state.Entry
	err     error
	took    time.Duration
}

func testXReadBlockWoken(t *testing.T, s state.Store) {
	ctx := testContext(t)
	ids := addEntries(t, ctx, s, "s", payloads("old", 2))
	for _, stream := range []string{"s", "fresh"} { // existing and absent stream
		after := ""
		if stream == "s" {
			after = ids[1]
		}
		res := make(chan readResult, 1)
		go func() {
			began := time.Now()
			e, err := s.XRead(ctx, stream, after, 10, longBlock)
			res <- readResult{e, err, time.Since(began)}
		}()
		time.Sleep(letReaderBlock)
		newIDs := addEntries(t, ctx, s, stream, [][]byte{[]byte("new")})
		select {
		case r := <-res:
			must(t, r.err, "blocking XRead on "+stream)
			checkEntries(t, r.entries, newIDs, [][]byte{[]byte("new")})
			if r.took >= longBlock {
				t.Fatalf("blocking XRead on %s returned after %v: not woken by XAdd", stream, r.took)
			}
		case <-ctx.Done():
			t.Fatalf("blocking XRead on %s not woken by XAdd", stream)
		}
	}
}

func testXReadBlockTimeout(t *testing.T, s state.Store) {
	ctx := testContext(t)
	ids := addEntries(t, ctx, s, "s", payloads("e", 1))
	const block = 150 * time.Millisecond
	for _, stream := range []string{"s", "absent"} {
		began := time.Now()
		got, err := s.XRead(ctx, stream, ids[0], 10, block)
		took := time.Since(began)
		if err != nil || len(got) != 0 {
			t.Fatalf("XRead block on %s: got %v, %v; want empty, nil", stream, entryIDs(got), err)
		}
		// Redis counts block in milliseconds; allow a little rounding.
		if took < block-20*time.Millisecond {
			t.Fatalf("XRead block on %s returned after %v, before its block of %v", stream, took, block)
		}
	}
	// A non-positive block does not wait.
	began := time.Now()
	got, err := s.XRead(ctx, "s", ids[0], 10, 0)
	if err != nil || len(got) != 0 {
		t.Fatalf("XRead without block: got %v, %v; want empty, nil", entryIDs(got), err)
	}
	if took := time.Since(began); took > 5*time.Second {
		t.Fatalf("XRead without block took %v", took)
	}
}

func testXReadBlockCancel(t *testing.T, s state.Store) {
	ctx := testContext(t)
	rctx, cancel := context.WithCancel(ctx)
	res := make(chan readResult, 1)
	go func() {
		began := time.Now()
		e, err := s.XRead(rctx, "s", "", 10, longBlock)
		res <- readResult{e, err, time.Since(began)}
	}()
	time.Sleep(letReaderBlock)
	cancel()
	select {
	case r := <-res:
		// Either the context error or an empty read is honest; waiting
		// out the whole block is not.
		if r.err == nil && len(r.entries) != 0 {
			t.Fatalf("cancelled XRead returned entries %v", entryIDs(r.entries))
		}
		if r.err != nil && !errors.Is(r.err, context.Canceled) {
			t.Fatalf("cancelled XRead: got error %v, want context.Canceled", r.err)
		}
	case <-time.After(waitFor):
		t.Fatal("XRead did not return after its context was cancelled")
	}
}

func testXRevRangePaging(t *testing.T, s state.Store) {
	ctx := testContext(t)
	data := payloads("e", 25)
	var ids []string
	for i := 0; i < len(data); i += 5 {
		ids = append(ids, addEntries(t, ctx, s, "s", data[i:i+5])...)
	}
	if got, err := s.XRevRange(ctx, "absent", "", 10); err != nil || len(got) != 0 {
		t.Fatalf("XRevRange absent stream: got %v, %v; want empty", entryIDs(got), err)
	}

	var pages [][]state.Entry
	before := ""
	for {
		page, err := s.XRevRange(ctx, "s", before, 10)
		must(t, err, "XRevRange")
		if len(page) == 0 {
			break
		}
		pages = append(pages, page)
		before = page[len(page)-1].ID
		if len(pages) > 10 {
			t.Fatal("XRevRange paging does not end")
		}
	}
	if len(pages) != 3 || len(pages[0]) != 10 || len(pages[1]) != 10 || len(pages[2]) != 5 {
		t.Fatalf("XRevRange pages of 10 over 25 entries: got sizes %v, want [10 10 5]", pageSizes(pages))
	}
	var got []state.Entry
	for _, p := range pages {
		got = append(got, p...)
	}
	wantIDs, wantData := slices.Clone(ids), slices.Clone(data)
	slices.Reverse(wantIDs)
	slices.Reverse(wantData)
	checkEntries(t, got, wantIDs, wantData)

	// The cursor itself is excluded.
	page, err := s.XRevRange(ctx, "s", ids[3], 100)
	must(t, err, "XRevRange before ids[3]")
	if !slices.Equal(entryIDs(page), []string{ids[2], ids[1], ids[0]}) {
		t.Fatalf("XRevRange before %s: got %v, want the three before it", ids[3], entryIDs(page))
	}
	page, err = s.XRevRange(ctx, "s", ids[0], 100)
	if err != nil || len(page) != 0 {
		t.Fatalf("XRevRange before the first entry: got %v, %v; want empty", entryIDs(page), err)
	}
}

func pageSizes(pages [][]state.Entry) []int {
	out := make([]int, len(pages))
	for i, p := range pages {
		out[i] = len(p)
	}
	return out
}

// testXAddIndexed: the entry and its index entries are written together;
// ID-form members sort in ID order even within one millisecond; a fixed
// member moves to the newest entry's millisecond; a refused call writes
// nothing.
func testXAddIndexed(t *testing.T, s state.Store) {
	ctx := testContext(t)
	entry := func(i int) state.IndexedEntry {
		return state.IndexedEntry{Value: []byte{byte(i)},
			Indexes: []state.IndexEntry{{Index: "by-id"}, {Index: "latest", Member: "thing"}}}
	}
	var ids []string
	for i := 0; i < 10; i++ { // one at a time
		got, err := s.XAddIndexed(ctx, "log", entry(i))
		must(t, err, "XAddIndexed")
		ids = append(ids, got...)
	}
	batch := make([]state.IndexedEntry, 20) // a batch shares milliseconds: sequences > 9
	for i := range batch {
		batch[i] = entry(10 + i)
	}
	got, err := s.XAddIndexed(ctx, "log", batch...)
	must(t, err, "XAddIndexed batch")
	ids = append(ids, got...)
	if len(ids) != 30 {
		t.Fatalf("got %d IDs, want 30", len(ids))
	}
	checkIncreasing(t, ids)
	es, err := s.XRead(ctx, "log", "", 0, 0)
	must(t, err, "XRead")
	if len(es) != 30 || es[29].ID != ids[29] || es[29].Data[0] != 29 {
		t.Fatalf("stream holds %d entries, last %+v; want 30 ending with %s", len(es), es[len(es)-1], ids[29])
	}
	ms, err := s.ZRange(ctx, "by-id", state.RangeOptions{Min: math.Inf(-1), Max: math.Inf(1)})
	must(t, err, "ZRange")
	if len(ms) != 30 {
		t.Fatalf("index holds %d members, want 30", len(ms))
	}
	for i, m := range ms {
		p, err := state.ParseID(m.Member)
		if err != nil || p.String() != ids[i] || m.Member != state.IDMember(p) || m.Score != float64(p.Ms) {
			t.Fatalf("member %d = %+v, want ID %s scored by its millisecond", i, m, ids[i])
		}
	}
	last, _ := state.ParseID(ids[29])
	if sc, err := s.ZScore(ctx, "latest", "thing"); err != nil || sc != float64(last.Ms) {
		t.Fatalf("fixed member scored %v, %v; want %d", sc, err, last.Ms)
	}
	bad := []state.IndexedEntry{entry(99), {Value: []byte("x"), Indexes: []state.IndexEntry{{Index: ""}}}}
	if _, err := s.XAddIndexed(ctx, "log", bad...); !errors.Is(err, state.ErrInvalidArgument) {
		t.Fatalf("empty index name: %v, want ErrInvalidArgument", err)
	}
	if n, err := s.XLen(ctx, "log"); err != nil || n != 30 {
		t.Fatalf("a refused XAddIndexed wrote to the stream: len %d, %v", n, err)
	}
}
