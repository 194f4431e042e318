package sdk_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/gateway"
	"github.com/switchboard/switchboard/media"
	"github.com/switchboard/switchboard/media/mediatest"
	sdk "github.com/switchboard/switchboard/mobile-sdk"
	"github.com/switchboard/switchboard/state/embedded"
	"github.com/switchboard/switchboard/ticket"
)

// photoGateway is a real gateway on loopback with photos enabled.
func photoGateway(t *testing.T) (*server, *media.Service) {
	t.Helper()
	store, err := embedded.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	key, err := auth.LoadOrCreateKey(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	disk, err := media.NewDisk(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ac := auth.Config{}
	iss := auth.NewIssuer(ac, key, store)
	tickets := ticket.New(store)
	m := media.New(store, disk, tickets, media.Config{})
	srv := gateway.New(gateway.Config{}, gateway.Deps{Store: store, Issuer: iss, Verifier: auth.NewVerifier(ac, key), Tickets: tickets, Media: m})
	addr, _ := serve(t, srv, "127.0.0.1:0")
	return &server{url: "http://" + addr, addr: addr, ac: ac, key: key, store: store, issuer: iss, tickets: tickets}, m
}

// dropOnce fails the first PATCH after cut bytes of its body went out,
// as a connection lost in a tunnel, and records every PATCH's offset.
type dropOnce struct {
	base    http.RoundTripper
	cut     int64
	mu      sync.Mutex
	dropped bool
	offsets []int64
}

var errTunnel = errors.New("connection lost in a tunnel")

func (d *dropOnce) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodPatch {
		off, _ := strconv.ParseInt(r.Header.Get("Upload-Offset"), 10, 64)
		d.mu.Lock()
		d.offsets = append(d.offsets, off)
		drop := !d.dropped
		d.dropped = true
		d.mu.Unlock()
		if drop {
			r.Body = cutBody{io.LimitReader(r.Body, d.cut), r.Body}
		}
	}
	return d.base.RoundTrip(r)
}

// cutBody ends with an error after its limit, so the transport aborts the
// request midway and the server sees a body cut short.
type cutBody struct {
	r io.Reader
	c io.Closer
}

func (b cutBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err == io.EOF {
		return n, errTunnel
	}
	return n, err
}
func (b cutBody) Close() error { return b.c.Close() }

// TestUploadPhotoResumesAfterDrop: the SDK uploads a photo over tus with
// progress callbacks; the connection drops at 60 %; the SDK asks the
// gateway where it stands and sends only the rest; the photo is on the
// ticket, with its GPS data gone.
func TestUploadPhotoResumesAfterDrop(t *testing.T) {
	s, m := photoGateway(t)
	img := mediatest.WithExif(mediatest.NoisyJPEG(1400, 1200, 3), 1, true)
	rt := &dropOnce{base: http.DefaultTransport.(*http.Transport).Clone(), cut: int64(len(img)) * 6 / 10}
	c := s.client(t, "joe", auth.RoleCustomer, &http.Client{Transport: rt, Timeout: time.Minute})
	ctx := t.Context()
	tk, err := c.OpenTicket(ctx, api.OpenTicketRequest{Subject: "projector"}, "")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var seen []int64
	var created string
	id, err := c.UploadPhoto(ctx, tk.ID, bytes.NewReader(img), int64(len(img)), sdk.UploadOptions{
		Filename:   "IMG_7.jpg",
		OnProgress: func(sent, total int64) { mu.Lock(); seen = append(seen, sent); mu.Unlock() },
		OnCreated:  func(u string) { created = u },
	})
	if err != nil {
		t.Fatal(err)
	}
	rt.mu.Lock()
	offsets := rt.offsets
	rt.mu.Unlock()
	if len(offsets) < 2 || offsets[0] != 0 || offsets[1] < int64(len(img))/2 {
		t.Fatalf("PATCH offsets %v for %d bytes cut at %d: not resumed where it stopped", offsets, len(img), rt.cut)
	}
	for i := 1; i < len(seen); i++ {
		if seen[i] <= seen[i-1] {
			t.Fatalf("progress went back: %v", seen)
		}
	}
	if len(seen) == 0 || seen[len(seen)-1] != int64(len(img)) || created == "" {
		t.Fatalf("progress %v, created %q", seen, created)
	}
	p, err := m.Photo(ctx, ticket.Viewer{ID: "joe", Role: auth.RoleCustomer}, id)
	if err != nil || p.TicketID != tk.ID || p.Filename != "IMG_7.jpg" {
		t.Fatalf("photo %+v, %v", p, err)
	}
	v, err := c.Ticket(ctx, tk.ID, "")
	if err != nil || v.Events[len(v.Events)-1].Type != api.EventPhotoAdded {
		t.Fatalf("timeline %+v, %v", v, err)
	}
	// Resuming a finished upload answers the same photo.
	again, err := c.UploadPhoto(ctx, tk.ID, bytes.NewReader(img), int64(len(img)), sdk.UploadOptions{UploadURL: created})
	if err != nil || again != id {
		t.Fatalf("resume of a finished upload: %q, %v", again, err)
	}
	// Bytes that are not a photo are refused, not retried.
	_, err = c.UploadPhoto(ctx, tk.ID, bytes.NewReader([]byte("<html>not a photo</html>")), 24, sdk.UploadOptions{})
	if sdk.StatusCode(err) != http.StatusUnsupportedMediaType {
		t.Fatalf("html upload: %v", err)
	}
}

// uploads is a mobile.UploadHandler for tests.
type uploads struct {
	mu       sync.Mutex
	progress []int64
	created  string
}

func (u *uploads) OnProgress(sent, total int64) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.progress = append(u.progress, sent)
}

func (u *uploads) OnCreated(url string) { u.mu.Lock(); defer u.mu.Unlock(); u.created = url }

// cutAt is a photo whose bytes past cut cannot be read, as if the app
// were killed there: the first read past cut fails the request in
// flight, and the next (the SDK resuming) calls stop, ending the upload
// with the gateway holding what arrived.
type cutAt struct {
	b     []byte
	cut   int64
	stop  func()
	fails atomic.Int32
}

func (c *cutAt) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) <= c.cut {
		return copy(p, c.b[off:]), nil
	}
	if c.fails.Add(1) > 1 {
		c.stop()
	}
	n := 0
	if off < c.cut {
		n = copy(p, c.b[off:c.cut])
	}
	return n, errTunnel
}

// TestMobileUploadPhoto: the bindable upload sends a photo with progress
// and its upload URL, ResumePhoto finishes an upload a killed app left
// half done (and answers the photo of a finished one), and refusals
// arrive as "code (status): ...".
func TestMobileUploadPhoto(t *testing.T) {
	s, m := photoGateway(t)
	c := signInMobile(t, s.issuer, s.url, "joe", auth.RoleCustomer)
	tk, err := c.OpenTicket("projector", "")
	if err != nil {
		t.Fatal(err)
	}
	img := mediatest.NoisyJPEG(800, 600, 5)
	h := &uploads{}
	id, err := c.UploadPhoto(tk.ID, img, "IMG_8.jpg", h)
	if err != nil {
		t.Fatal(err)
	}
	if len(h.progress) == 0 || h.progress[len(h.progress)-1] != int64(len(img)) || h.created == "" {
		t.Fatalf("progress %v, created %q", h.progress, h.created)
	}
	p, err := m.Photo(t.Context(), ticket.Viewer{ID: "joe", Role: auth.RoleCustomer}, id)
	if err != nil || p.TicketID != tk.ID || p.Filename != "IMG_8.jpg" {
		t.Fatalf("photo %+v, %v", p, err)
	}
	if again, err := c.ResumePhoto(tk.ID, img, "IMG_8.jpg", h.created, nil); err != nil || again != id {
		t.Fatalf("resume of a finished upload: %q, %v", again, err)
	}

	// The app is killed halfway through a second photo; on its next run it
	// resumes with the URL it kept and sends only the rest.
	img2 := mediatest.NoisyJPEG(900, 700, 6)
	ctx, cancel := context.WithCancel(t.Context())
	var kept string
	_, err = c.SDK().UploadPhoto(ctx, tk.ID, &cutAt{b: img2, cut: int64(len(img2)) / 2, stop: cancel}, int64(len(img2)),
		sdk.UploadOptions{Filename: "IMG_9.jpg", OnCreated: func(u string) { kept = u }})
	cancel()
	if err == nil || kept == "" {
		t.Fatalf("killed upload: %v, url %q", err, kept)
	}
	h2 := &uploads{}
	id2, err := c.ResumePhoto(tk.ID, img2, "", kept, h2)
	if err != nil || id2 == "" || id2 == id {
		t.Fatalf("resume: %q, %v", id2, err)
	}
	if h2.created != "" || len(h2.progress) == 0 || h2.progress[len(h2.progress)-1] != int64(len(img2)) ||
		h2.progress[0] <= 0 || h2.progress[0] > int64(len(img2))/2 {
		t.Fatalf("resume made a new upload (%q) or did not go on from the half sent: progress %v of %d", h2.created, h2.progress, len(img2))
	}
	if p, err := m.Photo(t.Context(), ticket.Viewer{ID: "joe", Role: auth.RoleCustomer}, id2); err != nil || p.Filename != "IMG_9.jpg" || p.TicketID != tk.ID {
		t.Fatalf("resumed photo %+v, %v", p, err)
	}

	if _, err := c.UploadPhoto(tk.ID, []byte("<html>not a photo</html>"), "x.jpg", nil); err == nil ||
		!strings.HasPrefix(err.Error(), api.CodeUnsupportedMedia+" (415)") {
		t.Fatalf("html upload: %v", err)
	}
	mallory := signInMobile(t, s.issuer, s.url, "mallory", auth.RoleCustomer)
	if _, err := mallory.UploadPhoto(tk.ID, img, "x.jpg", nil); err == nil || !strings.HasPrefix(err.Error(), api.CodeNotFound+" (404)") {
		t.Fatalf("upload to someone else's ticket: %v", err)
	}
	if _, err := mallory.ResumePhoto(tk.ID, img, "x.jpg", h.created, nil); err == nil || !strings.Contains(err.Error(), " (404)") {
		t.Fatalf("resume of someone else's upload: %v", err)
	}
	v, err := c.SDK().Ticket(t.Context(), tk.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	photos := 0
	for _, ev := range v.Events {
		if ev.Type == api.EventPhotoAdded {
			photos++
		}
	}
	if photos != 2 {
		t.Fatalf("%d photos on the ticket, want 2", photos)
	}
}
