package media

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Disk is the default Blobs: files under one directory on local disk.
//
// Multi-node caveat: a tus upload's state is on the state seam, so any
// node can answer HEAD for it, but its bytes are on the disk of the node
// that received them. Behind a load balancer, either share the directory
// (NFS, a mounted volume) or pin /v1/uploads/{id} to one node (sticky
// sessions); the same holds for serving photos.
type Disk struct {
	dir string
}

var _ Blobs = (*Disk)(nil)

// tmpPrefix marks files being written; Sweep removes stale ones after a
// crash.
const tmpPrefix = ".tmp-"

// NewDisk opens (creating) a blob directory.
func NewDisk(dir string) (*Disk, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("media: blob directory: %w", err)
	}
	return &Disk{dir: dir}, nil
}

// path maps a key onto a file. Keys come from this package ("photo/<hex>"),
// but the check is kept so no key can ever leave the directory.
func (d *Disk) path(key string) (string, error) {
	if key == "" || strings.Contains(key, "..") || strings.ContainsRune(key, 0) || strings.HasPrefix(key, "/") || strings.Contains(key, "\\") {
		return "", fmt.Errorf("%w: bad blob key", ErrInvalid)
	}
	return filepath.Join(d.dir, filepath.FromSlash(key)), nil
}

// Create writes to a temp file in the key's directory; Commit fsyncs it,
// renames it over the key and fsyncs the directory, the sequence that
// makes a rename durable on POSIX file systems.
func (d *Disk) Create(_ context.Context, key string) (Writer, error) {
	p, err := d.path(key)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return nil, noSpace(err)
	}
	f, err := os.CreateTemp(filepath.Dir(p), tmpPrefix+"*")
	if err != nil {
		return nil, noSpace(err)
	}
	return &diskWriter{f: f, final: p}, nil
}

type diskWriter struct {
	f     *os.File
	final string
	done  bool
}

func (w *diskWriter) Write(b []byte) (int, error) {
	n, err := w.f.Write(b)
	return n, noSpace(err)
}

func (w *diskWriter) Commit() error {
	if w.done {
		return errors.New("media: blob already committed or aborted")
	}
	w.done = true
	err := w.f.Sync()
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(w.f.Name(), w.final)
	}
	if err != nil {
		os.Remove(w.f.Name())
		return noSpace(err)
	}
	return syncDir(filepath.Dir(w.final))
}

func (w *diskWriter) Abort() error {
	if w.done {
		return nil
	}
	w.done = true
	w.f.Close()
	return os.Remove(w.f.Name())
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Append writes at offset in place: a resumable upload grows one file, so
// the bytes that arrived before a dropped connection stay. It fsyncs
// before returning, so the offset the caller records is never ahead of
// the disk.
func (d *Disk) Append(_ context.Context, key string, offset int64, r io.Reader) (int64, error) {
	p, err := d.path(key)
	if err != nil {
		return 0, err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return 0, noSpace(err)
	}
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return 0, noSpace(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	if st.Size() < offset {
		return 0, ErrOffsetMismatch
	}
	if st.Size() > offset {
		// Bytes of a PATCH that failed its checksum, or that ran past
		// the declared length: never part of the upload.
		if err := f.Truncate(offset); err != nil {
			return 0, err
		}
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return 0, err
	}
	n, werr := io.Copy(f, r)
	if serr := f.Sync(); serr != nil {
		// Nothing of this call is known to be on disk.
		_ = f.Truncate(offset)
		return 0, noSpace(serr)
	}
	if werr != nil && isWriteErr(werr) {
		// Disk full midway: free what this call wrote.
		_ = f.Truncate(offset)
		_ = f.Sync()
		return 0, noSpace(werr)
	}
	return n, werr
}

// isWriteErr tells a failing disk from a failing reader (a dropped
// connection), whose bytes so far are kept.
func isWriteErr(err error) bool {
	var pe *fs.PathError
	return errors.As(err, &pe) || errors.Is(noSpace(err), ErrNoSpace)
}

// Open opens key for reading.
func (d *Disk) Open(_ context.Context, key string) (Blob, error) {
	p, err := d.path(key)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &diskBlob{File: f, size: st.Size()}, nil
}

type diskBlob struct {
	*os.File
	size int64
}

func (b *diskBlob) Size() int64 { return b.size }

// Delete removes key.
func (d *Disk) Delete(_ context.Context, key string) error {
	p, err := d.path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// Sweep removes temp files, and files under the given key prefixes
// ("upload/", "spool/"), not modified for olderThan: what a crash or an
// abandoned upload left. It returns how many it removed.
func (d *Disk) Sweep(olderThan time.Duration, prefixes ...string) (int, error) {
	cutoff := time.Now().Add(-olderThan)
	removed := 0
	err := filepath.WalkDir(d.dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(d.dir, p)
		rel = filepath.ToSlash(rel)
		stale := strings.HasPrefix(e.Name(), tmpPrefix)
		for _, pre := range prefixes {
			stale = stale || strings.HasPrefix(rel, pre)
		}
		if !stale {
			return nil
		}
		if info, err := e.Info(); err == nil && info.ModTime().Before(cutoff) {
			if os.Remove(p) == nil {
				removed++
			}
		}
		return nil
	})
	return removed, err
}

// randomID is an opaque, unguessable ID (photos, uploads): 128 bits of
// crypto/rand in lower-case base32.
func randomID() string { return strings.ToLower(rand.Text()) }
