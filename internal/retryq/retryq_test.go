package retryq_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/retryq"
	"github.com/switchboard/switchboard/state/embedded"
)

// TestParkAndMoveOnce: a parked entry is not moved before it is due, and
// once due it goes back to the stream exactly once, however many nodes
// run the mover at the same time.
func TestParkAndMoveOnce(t *testing.T) {
	st, err := embedded.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	nodes := make([]*retryq.Queue, 4)
	for i := range nodes {
		nodes[i] = retryq.New(st, retryq.Config{Prefix: "q:", Stream: "jobs", Node: fmt.Sprint("n", i), Lease: time.Minute, Now: clock})
	}
	for i := 0; i < 20; i++ {
		if err := nodes[0].Park(ctx, fmt.Sprint("job", i), []byte{byte(i)}, time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := nodes[1].MoveDue(ctx); err != nil || n != 0 {
		t.Fatalf("moved %d before due (%v)", n, err)
	}
	now = now.Add(time.Second)
	var wg sync.WaitGroup
	for _, q := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := q.MoveDue(ctx); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	es, err := st.XRead(ctx, "jobs", "", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[byte]int{}
	for _, e := range es {
		seen[e.Data[0]]++
	}
	if len(es) != 20 || len(seen) != 20 {
		t.Fatalf("%d entries back on the stream, %d distinct; want 20 and 20", len(es), len(seen))
	}
	if n, err := nodes[2].MoveDue(ctx); err != nil || n != 0 {
		t.Fatalf("%d still due after the move (%v)", n, err)
	}
}
