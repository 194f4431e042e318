package embedded

import (
	"context"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/switchboard/switchboard/state"
)

// TestMigrateIndexes writes indexes in the layout of a bucket per index,
// as stores made before the shared trees hold them, and checks that Open
// moves them (more than one transaction's worth) with scores, order and
// counts intact, and that writes after the move see them.
func TestMigrateIndexes(t *testing.T) {
	dir := t.TempDir()
	db, err := bolt.Open(filepath.Join(dir, FileName), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	const indexes = migrateBatch + 44
	err = db.Update(func(tx *bolt.Tx) error {
		top, err := tx.CreateBucket(bucketLegacyIndex)
		if err != nil {
			return err
		}
		for i := range indexes {
			root, err := top.CreateBucket(fmt.Appendf(nil, "tl:%d", i))
			if err != nil {
				return err
			}
			m, _ := root.CreateBucket(legacyMembers)
			sc, _ := root.CreateBucket([]byte("s"))
			for j := range i%5 + 1 {
				member, score := fmt.Appendf(nil, "m%d", j), float64(i-j)
				if err := m.Put(member, putF64(score)); err != nil {
					return err
				}
				_ = sc.Put(binaryScoreKey(score, member), nil)
			}
			_ = root.Put([]byte("n"), putF64(0)) // the old count: rebuilt, not copied
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()

	s := openT(t, dir)
	ctx := context.Background()
	for _, i := range []int{0, 1, 4, migrateBatch, indexes - 1} {
		name := fmt.Sprintf("tl:%d", i)
		n, err := s.ZCard(ctx, name)
		if err != nil || n != int64(i%5+1) {
			t.Fatalf("ZCard(%s) = %d, %v; want %d", name, n, err, i%5+1)
		}
		got, err := s.ZRange(ctx, name, state.RangeOptions{Min: -1e9, Max: 1e9})
		if err != nil {
			t.Fatal(err)
		}
		for j, sm := range got { // lowest score first: the highest j first
			want := state.ScoredMember{Member: fmt.Sprintf("m%d", i%5-j), Score: float64(i - (i%5 - j))}
			if sm != want {
				t.Fatalf("%s[%d] = %+v, want %+v", name, j, sm, want)
			}
		}
	}
	if err := s.ZAdd(ctx, "tl:3", "m0", -5); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.ZRange(ctx, "tl:3", state.RangeOptions{Min: -10, Max: 10, Limit: 1}); len(got) != 1 || got[0].Member != "m0" {
		t.Fatalf("after a move of m0 to the front, tl:3 starts with %+v", got)
	}
	if n, _ := s.ZCard(ctx, "tl:3"); n != 4 {
		t.Fatalf("ZCard after an update = %d, want 4", n)
	}
	err = s.view(ctx, func(tx *bolt.Tx) error {
		if tx.Bucket(bucketLegacyIndex) != nil {
			t.Error("the old index bucket is still there")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// binaryScoreKey is the old layout's score key: sortable score, member.
func binaryScoreKey(score float64, m []byte) []byte {
	return append(binary.BigEndian.AppendUint64(nil, sortable(score)), m...)
}
