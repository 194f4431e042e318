package media

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/media/mediatest"
	"github.com/switchboard/switchboard/state/embedded"
	"github.com/switchboard/switchboard/ticket"
)

type fixture struct {
	svc     *Service
	tickets *ticket.Service
	dir     string
	ticket  string
	joe     ticket.Viewer
}

func newFixture(t *testing.T, wrap func(Blobs) Blobs) *fixture {
	t.Helper()
	st, err := embedded.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	dir := t.TempDir()
	disk, err := NewDisk(dir)
	if err != nil {
		t.Fatal(err)
	}
	var blobs Blobs = disk
	if wrap != nil {
		blobs = wrap(disk)
	}
	tickets := ticket.New(st)
	joe := ticket.Viewer{ID: "joe", Role: auth.RoleCustomer}
	tk, err := tickets.Open(t.Context(), joe, api.OpenTicketRequest{Subject: "projector"})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{svc: New(st, blobs, tickets, Config{}), tickets: tickets, dir: dir, ticket: tk.ID, joe: joe}
}

// files lists the regular files under dir.
func files(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	return out
}

func photoEvents(t *testing.T, f *fixture) []api.PhotoAddedPayload {
	t.Helper()
	view, err := f.tickets.Timeline(t.Context(), f.joe, f.ticket, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	var out []api.PhotoAddedPayload
	for _, ev := range view.Events {
		if ev.Type == api.EventPhotoAdded {
			var p api.PhotoAddedPayload
			if err := json.Unmarshal(ev.Payload, &p); err != nil {
				t.Fatal(err)
			}
			out = append(out, p)
		}
	}
	return out
}

// TestIngestDedupesAndWritesOneEvent: the same bytes twice on a ticket are
// one photo and one event; on another ticket, a second photo that shares
// the stored blobs.
func TestIngestDedupesAndWritesOneEvent(t *testing.T) {
	f := newFixture(t, nil)
	ctx := t.Context()
	img := mediatest.JPEG(800, 600, 1, true)
	a, err := f.svc.Ingest(ctx, f.joe, f.ticket, "IMG_1.jpg", strings.NewReader(string(img)))
	if err != nil {
		t.Fatal(err)
	}
	b, err := f.svc.Ingest(ctx, f.joe, f.ticket, "IMG_1 copy.jpg", strings.NewReader(string(img)))
	if err != nil || b.ID != a.ID || !b.Duplicate {
		t.Fatalf("second upload = %+v, %v; want the first (%s) marked duplicate", b, err, a.ID)
	}
	ev := photoEvents(t, f)
	if len(ev) != 1 || ev[0].PhotoID != a.ID || ev[0].ContentType != "image/jpeg" || ev[0].Width != 800 {
		t.Fatalf("events %+v", ev)
	}
	other, err := f.tickets.Open(ctx, f.joe, api.OpenTicketRequest{Subject: "fridge"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := f.svc.Ingest(ctx, f.joe, other.ID, "", strings.NewReader(string(img)))
	if err != nil || c.ID == a.ID || c.Duplicate {
		t.Fatalf("other ticket: %+v, %v", c, err)
	}
	// One photo blob and one thumbnail, however many photos use them; no
	// spool files left.
	got := files(t, f.dir)
	if len(got) != 2 {
		t.Fatalf("blob files %v, want one photo and one thumbnail", got)
	}
	// Another customer sees neither the photo nor that it exists.
	eve := ticket.Viewer{ID: "eve", Role: auth.RoleCustomer}
	if _, err := f.svc.Open(ctx, eve, a.ID, false); !errors.Is(err, ErrNotFound) {
		t.Fatalf("eve opens joe's photo: %v", err)
	}
	if _, err := f.svc.Ingest(ctx, eve, f.ticket, "", strings.NewReader(string(img))); !errors.Is(err, ticket.ErrNotFound) {
		t.Fatalf("eve uploads to joe's ticket: %v", err)
	}
}

// fullDisk is a Blobs whose writes fail with ENOSPC once more than room
// bytes were written through it: a full disk, without needing one.
type fullDisk struct {
	Blobs
	room int64
}

type fullWriter struct {
	Writer
	d *fullDisk
}

func (d *fullDisk) take(n int) error {
	d.room -= int64(n)
	if d.room < 0 {
		return &fs.PathError{Op: "write", Path: "blob", Err: syscall.ENOSPC}
	}
	return nil
}

func (w fullWriter) Write(b []byte) (int, error) {
	if err := w.d.take(len(b)); err != nil {
		n, _ := w.Writer.Write(b[:len(b)/2]) // half made it to disk
		return n, noSpace(err)
	}
	return w.Writer.Write(b)
}

func (d *fullDisk) Create(ctx context.Context, key string) (Writer, error) {
	w, err := d.Blobs.Create(ctx, key)
	if err != nil {
		return nil, err
	}
	return fullWriter{w, d}, nil
}

func (d *fullDisk) Append(ctx context.Context, key string, off int64, r io.Reader) (int64, error) {
	return d.Blobs.Append(ctx, key, off, &fullReader{r: r, d: d})
}

// fullReader fails the disk side of Append through the reader: what Disk
// sees as a write error (a *PathError with ENOSPC).
type fullReader struct {
	r io.Reader
	d *fullDisk
}

func (f *fullReader) Read(b []byte) (int, error) {
	n, err := f.r.Read(b)
	if terr := f.d.take(n); terr != nil {
		return n / 2, terr
	}
	return n, err
}

// TestDiskFullFreesWhatItWrote: ENOSPC while storing the processed photo,
// or while spooling the upload, is ErrNoSpace, leaves no file behind, no
// photo and no event; with room again the same upload succeeds.
func TestDiskFullFreesWhatItWrote(t *testing.T) {
	img := mediatest.JPEG(1200, 900, 1, false)
	for _, room := range []int64{int64(len(img)) + 1000, 1000} {
		var fd *fullDisk
		f := newFixture(t, func(b Blobs) Blobs { fd = &fullDisk{Blobs: b, room: room}; return fd })
		_, err := f.svc.Ingest(t.Context(), f.joe, f.ticket, "", strings.NewReader(string(img)))
		if !errors.Is(err, ErrNoSpace) {
			t.Fatalf("room %d: err = %v, want ErrNoSpace", room, err)
		}
		if left := files(t, f.dir); len(left) != 0 {
			t.Fatalf("room %d: files left after a full disk: %v", room, left)
		}
		if ev := photoEvents(t, f); len(ev) != 0 {
			t.Fatalf("events after a failed store: %+v", ev)
		}
		fd.room = 1 << 30
		if _, err := f.svc.Ingest(t.Context(), f.joe, f.ticket, "", strings.NewReader(string(img))); err != nil {
			t.Fatalf("with room again: %v", err)
		}
	}
}

func TestDiskCreateIsAtomic(t *testing.T) {
	dir := t.TempDir()
	d, err := NewDisk(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	w, err := d.Create(ctx, "photo/ab/abc")
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("half a photo"))
	if _, err := d.Open(ctx, "photo/ab/abc"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("visible before Commit: %v", err)
	}
	w.Abort()
	if left := files(t, dir); len(left) != 0 {
		t.Fatalf("Abort left %v", left)
	}
	for _, bad := range []string{"../x", "/etc/passwd", "a\x00b", `a\..\b`} {
		if _, err := d.Create(ctx, bad); !errors.Is(err, ErrInvalid) {
			t.Fatalf("key %q: %v", bad, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "..", "x")); err == nil {
		t.Fatal("a key escaped the directory")
	}
}
