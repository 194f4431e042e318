package embedded

import (
	"context"
	"fmt"
	"testing"

	"github.com/switchboard/switchboard/state"
)

func tailAppend(ids ...state.ID) *indexedAppend {
	a := &indexedAppend{stream: "s", ids: ids}
	for _, id := range ids {
		a.entries = append(a.entries, state.IndexedEntry{Value: []byte(id.String())})
	}
	return a
}

func tailIDs(t *testing.T, ts *tails, from state.ID, count int) (string, bool) {
	t.Helper()
	es, ok := ts.read("s", from, count)
	var ids []string
	for _, e := range es {
		if string(e.Data) != e.ID {
			t.Errorf("entry %s holds %q", e.ID, e.Data)
		}
		ids = append(ids, e.ID)
	}
	return fmt.Sprint(ids), ok
}

// TestTail checks what a stream's tail answers, and when it must send a
// reader to the tree instead.
func TestTail(t *testing.T) {
	var ts tails
	id := func(ms uint64) state.ID { return state.ID{Ms: ms} }
	if _, ok := ts.read("s", id(0), 0); ok {
		t.Error("a stream with no tail answered")
	}
	ts.add("s", id(5), tailAppend(id(6), id(7)))
	ts.add("s", id(7), tailAppend(id(8)))
	for _, c := range []struct {
		from  uint64
		count int
		want  string
		ok    bool
	}{
		{4, 0, "[]", false}, // before the floor: the tree's
		{5, 0, "[6-0 7-0 8-0]", true},
		{6, 1, "[7-0]", true},
		{7, 0, "[8-0]", true},
		{8, 0, "[]", true}, // nothing newer
		{9, 0, "[]", true},
	} {
		if got, ok := tailIDs(t, &ts, id(c.from), c.count); got != c.want || ok != c.ok {
			t.Errorf("read after %d (count %d) = %s, %v; want %s, %v", c.from, c.count, got, ok, c.want, c.ok)
		}
	}
	es, _ := ts.read("s", id(5), 1)
	es[0].Data[0] = 'x'
	if got, _ := tailIDs(t, &ts, id(5), 1); got != "[6-0]" {
		t.Errorf("a reader's change reached the tail: %s", got)
	}

	// An append that does not follow the tail's end restarts it.
	ts.add("s", id(10), tailAppend(id(11)))
	if _, ok := ts.read("s", id(8), 0); ok {
		t.Error("the tail answered across a gap")
	}
	if got, ok := tailIDs(t, &ts, id(10), 0); got != "[11-0]" || !ok {
		t.Errorf("after a restart: %s, %v", got, ok)
	}

	ts.add("s", id(20), tailAppend(id(21)))
	// Past its bound it keeps the newer half, and moves its floor.
	for ms := uint64(22); ms < 22+tailEntries; ms++ {
		ts.add("s", id(ms-1), tailAppend(id(ms)))
	}
	tl := ts.m["s"]
	if len(tl.ids) > tailEntries || len(tl.ids) < tailEntries/2 || len(tl.ids) != len(tl.entries) {
		t.Fatalf("tail holds %d ids, %d entries", len(tl.ids), len(tl.entries))
	}
	floor := tl.floor
	if _, ok := ts.read("s", state.ID{Ms: floor.Ms - 1}, 0); ok {
		t.Error("answered from before the moved floor")
	}
	if es, ok := ts.read("s", floor, 1); !ok || len(es) != 1 || es[0].ID != (state.ID{Ms: floor.Ms + 1}).String() {
		t.Errorf("read at the floor %s: %v, %v", floor, es, ok)
	}
}

// TestTailAgreesWithTree checks that XRead answers the same from the
// tail as from the tree, across the tail's trims.
func TestTailAgreesWithTree(t *testing.T) {
	s := openT(t, t.TempDir())
	ctx := context.Background()
	const n = (tailEntries + tailEntries/2) / 100 * 100
	for i := 0; i < n; i += 100 {
		vals := make([][]byte, 100)
		for j := range vals {
			vals[j] = []byte(fmt.Sprint(i + j))
		}
		if _, err := s.XAdd(ctx, "s", vals...); err != nil {
			t.Fatal(err)
		}
	}
	all, err := s.XRead(ctx, "s", "0", 0, 0) // before the floor: from the tree
	if err != nil || len(all) != n {
		t.Fatalf("XRead from the start: %d entries, %v; want %d", len(all), err, n)
	}
	for i, e := range all {
		if string(e.Data) != fmt.Sprint(i) {
			t.Fatalf("entry %d holds %q", i, e.Data)
		}
	}
	floor := s.tails.m["s"].floor.String()
	for _, at := range []int{n - 1, n - 2, n - 1000, n - tailEntries/2} {
		got, err := s.XRead(ctx, "s", all[at].ID, 10, 0)
		if err != nil {
			t.Fatal(err)
		}
		want := all[at+1 : min(at+11, n)]
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("XRead after entry %d (tail floor %s) = %v; want %v", at, floor, got, want)
		}
	}
}
