package statetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/switchboard/switchboard/state"
)

// minIdle is the idle time after which the redelivery case claims a dead
// consumer's entries: long enough that "not yet idle" can be checked right
// after a read, short enough to keep the suite fast.
const minIdle = 200 * time.Millisecond

var groupCases = []testCase{
	{"CreateStartIDs", testGroupCreateStartIDs},
	{"ConsumersSplit", testGroupConsumersSplit},
	{"Redelivery", testGroupRedelivery},
	{"BlockWoken", testGroupBlockWoken},
	{"BlockTimeout", testGroupBlockTimeout},
	{"MissingGroup", testGroupMissing},
	{"ConcurrentConsumers", testGroupConcurrentConsumers},
}

func readGroup(t testing.TB, ctx context.Context, s state.Store, stream, group, consumer string, count int) []state.Entry {
	t.Helper()
	got, err := s.XReadGroup(ctx, stream, group, consumer, count, 0)
	must(t, err, fmt.Sprintf("XReadGroup %s/%s as %s", stream, group, consumer))
	return got
}

func testGroupCreateStartIDs(t *testing.T, s state.Store) {
	ctx := testContext(t)
	oldData := payloads("old", 3)
	oldIDs := addEntries(t, ctx, s, "s", oldData)
	must(t, s.XGroupCreate(ctx, "s", "all", "0"), `XGroupCreate "0"`)
	must(t, s.XGroupCreate(ctx, "s", "new", "$"), `XGroupCreate "$"`)
	must(t, s.XGroupCreate(ctx, "s", "mid", oldIDs[0]), "XGroupCreate at an ID")
	newData := payloads("new", 2)
	newIDs := addEntries(t, ctx, s, "s", newData)

	checkEntries(t, readGroup(t, ctx, s, "s", "all", "c", 10),
		append(slices.Clone(oldIDs), newIDs...), append(slices.Clone(oldData), newData...))
	checkEntries(t, readGroup(t, ctx, s, "s", "new", "c", 10), newIDs, newData)
	checkEntries(t, readGroup(t, ctx, s, "s", "mid", "c", 10),
		append(slices.Clone(oldIDs[1:]), newIDs...), append(slices.Clone(oldData[1:]), newData...))

	// Creating an existing group is not an error and does not rewind it.
	must(t, s.XGroupCreate(ctx, "s", "all", "0"), "XGroupCreate existing group")
	if got := readGroup(t, ctx, s, "s", "all", "c", 10); len(got) != 0 {
		t.Fatalf("XReadGroup after re-creating the group: got %v, want empty", entryIDs(got))
	}

	// A group on an absent stream creates the stream, empty.
	must(t, s.XGroupCreate(ctx, "fresh", "g", "$"), "XGroupCreate on absent stream")
	if n, err := s.XLen(ctx, "fresh"); err != nil || n != 0 {
		t.Fatalf("XLen of stream created by XGroupCreate: got %d, %v; want 0", n, err)
	}
	if got := readGroup(t, ctx, s, "fresh", "g", "c", 10); len(got) != 0 {
		t.Fatalf("XReadGroup on empty stream: got %v", entryIDs(got))
	}
	ids := addEntries(t, ctx, s, "fresh", payloads("f", 1))
	checkEntries(t, readGroup(t, ctx, s, "fresh", "g", "c", 10), ids, payloads("f", 1))
}

func testGroupConsumersSplit(t *testing.T, s state.Store) {
	ctx := testContext(t)
	data := payloads("e", 20)
	ids := addEntries(t, ctx, s, "s", data)
	must(t, s.XGroupCreate(ctx, "s", "g", "0"), "XGroupCreate")

	a := readGroup(t, ctx, s, "s", "g", "alice", 10)
	b := readGroup(t, ctx, s, "s", "g", "bob", 10)
	if len(a) != 10 || len(b) != 10 {
		t.Fatalf("two consumers reading 10 each: got %d and %d entries", len(a), len(b))
	}
	// Each entry goes to exactly one consumer, in stream order.
	checkEntries(t, append(slices.Clone(a), b...), ids, data)
	for _, c := range []string{"alice", "bob", "carol"} {
		if got := readGroup(t, ctx, s, "s", "g", c, 10); len(got) != 0 {
			t.Fatalf("XReadGroup as %s after all were delivered: got %v, want empty", c, entryIDs(got))
		}
	}
	// Another group sees the whole stream again.
	must(t, s.XGroupCreate(ctx, "s", "g2", "0"), "XGroupCreate g2")
	checkEntries(t, readGroup(t, ctx, s, "s", "g2", "carol", 100), ids, data)
}

func testGroupRedelivery(t *testing.T, s state.Store) {
	ctx := testContext(t)
	data := payloads("job", 6)
	ids := addEntries(t, ctx, s, "s", data)
	must(t, s.XGroupCreate(ctx, "s", "g", "0"), "XGroupCreate")

	delivered := time.Now()
	checkEntries(t, readGroup(t, ctx, s, "s", "g", "dead", 10), ids, data)
	// The consumer acknowledges two entries, then dies.
	must(t, s.XAck(ctx, "s", "g", ids[0], ids[1]), "XAck")
	must(t, s.XAck(ctx, "s", "g", ids[0]), "XAck twice")

	got, err := s.XAutoClaim(ctx, "s", "g", "rescuer", minIdle, 10)
	must(t, err, "XAutoClaim")
	if time.Since(delivered) < minIdle/2 && len(got) != 0 {
		t.Fatalf("XAutoClaim took entries %v before they were idle for %v", entryIDs(got), minIdle)
	}

	// Once idle long enough, the unacknowledged entries (and only those)
	// go to the rescuer, with their data.
	var claimed []state.Entry
	checkFor(t, waitFor, 20*time.Millisecond, func() error {
		got, err := s.XAutoClaim(ctx, "s", "g", "rescuer", minIdle, 10)
		if err != nil {
			return err
		}
		claimed = append(claimed, got...)
		if len(claimed) < len(ids)-2 {
			return fmt.Errorf("claimed %v so far", entryIDs(claimed))
		}
		return nil
	})
	reclaimed := time.Now()
	checkEntries(t, claimed, ids[2:], data[2:])

	// Their idle time restarted: a second claimer does not take them at once.
	got, err = s.XAutoClaim(ctx, "s", "g", "thief", minIdle, 10)
	must(t, err, "XAutoClaim by a second claimer")
	if time.Since(reclaimed) < minIdle/2 && len(got) != 0 {
		t.Fatalf("second claimer took %v right after they were claimed", entryIDs(got))
	}

	// Pending entries are not new: XReadGroup does not hand them out again.
	if got := readGroup(t, ctx, s, "s", "g", "other", 10); len(got) != 0 {
		t.Fatalf("XReadGroup redelivered pending entries %v", entryIDs(got))
	}

	// Once acknowledged, nothing is pending: even minIdle 0 claims nothing.
	must(t, s.XAck(ctx, "s", "g", ids...), "XAck all")
	got, err = s.XAutoClaim(ctx, "s", "g", "thief", 0, 10)
	if err != nil || len(got) != 0 {
		t.Fatalf("XAutoClaim after all acked: got %v, %v; want empty", entryIDs(got), err)
	}
}

func testGroupBlockWoken(t *testing.T, s state.Store) {
	ctx := testContext(t)
	must(t, s.XGroupCreate(ctx, "s", "g", "$"), "XGroupCreate")
	res := make(chan readResult, 1)
	go func() {
		began := time.Now()
		e, err := s.XReadGroup(ctx, "s", "g", "c", 10, longBlock)
		res <- readResult{e, err, time.Since(began)}
	}()
	time.Sleep(letReaderBlock)
	ids := addEntries(t, ctx, s, "s", [][]byte{[]byte("wake")})
	select {
	case r := <-res:
		must(t, r.err, "blocking XReadGroup")
		checkEntries(t, r.entries, ids, [][]byte{[]byte("wake")})
		if r.took >= longBlock {
			t.Fatalf("blocking XReadGroup returned after %v: not woken by XAdd", r.took)
		}
	case <-ctx.Done():
		t.Fatal("blocking XReadGroup not woken by XAdd")
	}
}

func testGroupBlockTimeout(t *testing.T, s state.Store) {
	ctx := testContext(t)
	must(t, s.XGroupCreate(ctx, "s", "g", "$"), "XGroupCreate")
	const block = 150 * time.Millisecond
	began := time.Now()
	got, err := s.XReadGroup(ctx, "s", "g", "c", 10, block)
	took := time.Since(began)
	if err != nil || len(got) != 0 {
		t.Fatalf("XReadGroup block: got %v, %v; want empty, nil", entryIDs(got), err)
	}
	if took < block-20*time.Millisecond {
		t.Fatalf("XReadGroup returned after %v, before its block of %v", took, block)
	}
}

func testGroupMissing(t *testing.T, s state.Store) {
	ctx := testContext(t)
	_, err := s.XReadGroup(ctx, "s", "nogroup", "c", 10, 0)
	wantErr(t, err, state.ErrNotFound, "XReadGroup on absent stream and group")
	addEntries(t, ctx, s, "s", payloads("e", 1))
	_, err = s.XReadGroup(ctx, "s", "nogroup", "c", 10, 0)
	wantErr(t, err, state.ErrNotFound, "XReadGroup on absent group")
	_, err = s.XAutoClaim(ctx, "s", "nogroup", "c", 0, 10)
	wantErr(t, err, state.ErrNotFound, "XAutoClaim on absent group")
	if err := s.XAck(ctx, "s", "nogroup", "1-0"); err != nil && !errors.Is(err, state.ErrNotFound) {
		t.Fatalf("XAck on absent group: got %v, want nil or ErrNotFound", err)
	}
}

// testGroupConcurrentConsumers runs blocking consumers while a producer
// appends: every entry is delivered to exactly one consumer.
func testGroupConcurrentConsumers(t *testing.T, s state.Store) {
	ctx := testContext(t)
	const consumers, batches, perBatch = 4, 50, 10
	must(t, s.XGroupCreate(ctx, "s", "g", "$"), "XGroupCreate")

	type delivery struct {
		consumer string
		entries  []state.Entry
		err      error
	}
	got := make(chan delivery, consumers*batches*perBatch)
	stop := make(chan struct{})
	finished := make(chan struct{}, consumers)
	for i := range consumers {
		name := fmt.Sprintf("c%d", i)
		go func() {
			defer func() { finished <- struct{}{} }()
			for {
				select {
				case <-stop:
					return
				default:
				}
				e, err := s.XReadGroup(ctx, "s", "g", name, 7, 100*time.Millisecond)
				if err != nil || len(e) > 0 {
					got <- delivery{name, e, err}
				}
				if err != nil {
					return
				}
			}
		}()
	}
	var want []string
	for b := range batches {
		want = append(want, addEntries(t, ctx, s, "s", payloads(fmt.Sprintf("b%02d", b), perBatch))...)
	}

	seen := make(map[string]string, len(want))
	timeout := time.After(waitFor)
	for len(seen) < len(want) {
		select {
		case d := <-got:
			must(t, d.err, "XReadGroup as "+d.consumer)
			checkIncreasing(t, entryIDs(d.entries))
			for _, e := range d.entries {
				if prev, dup := seen[e.ID]; dup {
					t.Fatalf("entry %s delivered to %s and to %s", e.ID, prev, d.consumer)
				}
				seen[e.ID] = d.consumer
			}
		case <-timeout:
			t.Fatalf("only %d of %d entries delivered", len(seen), len(want))
		}
	}
	close(stop)
	for range consumers {
		<-finished
	}
	// Nothing arrived after all were seen, and nothing unknown arrived.
	close(got)
	for d := range got {
		must(t, d.err, "XReadGroup as "+d.consumer)
		if len(d.entries) > 0 {
			t.Fatalf("%s got %v after every entry was delivered", d.consumer, entryIDs(d.entries))
		}
	}
	for _, id := range want {
		if _, ok := seen[id]; !ok {
			t.Fatalf("entry %s never delivered", id)
		}
	}
}
