package embedded

import (
	"bytes"

	bolt "go.etcd.io/bbolt"
)

// Before the shared index trees (index.go), each index was a bucket of
// its own under "index", holding "m" (member -> score), "s" (the score
// keys) and "n" (the count). Open moves such indexes into the shared
// trees.
var (
	bucketLegacyIndex = []byte("index")
	legacyMembers     = []byte("m")
)

// migrateBatch is how many old indexes one transaction moves, so a store
// with millions of tickets does not build one huge transaction in memory.
const migrateBatch = 256

// migrateIndexes moves every index of the old layout into the shared
// trees. Each index is copied and its bucket deleted in one transaction,
// so a crash part-way leaves each index whole in one layout or the other,
// and the next Open goes on where this one stopped.
func migrateIndexes(db *bolt.DB) error {
	for {
		var done bool
		err := db.Update(func(tx *bolt.Tx) error {
			old := tx.Bucket(bucketLegacyIndex)
			if old == nil {
				done = true
				return nil
			}
			var names [][]byte
			c := old.Cursor()
			for k, v := c.First(); k != nil && len(names) < migrateBatch; k, v = c.Next() {
				if v == nil { // a nested bucket: one index
					names = append(names, bytes.Clone(k))
				}
			}
			if len(names) == 0 {
				done = true
				return tx.DeleteBucket(bucketLegacyIndex)
			}
			for _, name := range names {
				if err := moveIndex(tx, old.Bucket(name), name); err != nil {
					return err
				}
				if err := old.DeleteBucket(name); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil || done {
			return err
		}
	}
}

// moveIndex copies the members of one old index bucket into the shared
// trees.
func moveIndex(tx *bolt.Tx, b *bolt.Bucket, name []byte) error {
	mb := b.Bucket(legacyMembers)
	if mb == nil {
		return nil
	}
	x := openIndex(tx, name)
	err := mb.ForEach(func(m, v []byte) error { return x.set(m, f64(v)) })
	if err != nil {
		return err
	}
	return x.save()
}
