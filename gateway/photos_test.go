package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/gateway"
	"github.com/switchboard/switchboard/media"
	"github.com/switchboard/switchboard/media/mediatest"
	"github.com/switchboard/switchboard/state/embedded"
	"github.com/switchboard/switchboard/ticket"
)

// mediaEnv is a gateway with photos enabled on a blob directory.
type mediaEnv struct {
	*env
	media   *media.Service
	blobDir string
}

func newMediaEnv(t testing.TB, cfg gateway.Config, mcfg media.Config) *mediaEnv {
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
	dir := t.TempDir()
	if d := os.Getenv("SWITCHBOARD_BENCH_BLOB_DIR"); d != "" {
		// Benchmarks only: put blobs on another file system (tmpfs) to
		// measure the software path apart from the disk.
		if dir, err = os.MkdirTemp(d, "blobs"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
	}
	disk, err := media.NewDisk(dir)
	if err != nil {
		t.Fatal(err)
	}
	ac := auth.Config{}
	e := &env{store: store, key: key, authc: ac, issuer: auth.NewIssuer(ac, key, store), tickets: ticket.New(store)}
	m := media.New(store, disk, e.tickets, mcfg)
	e.srv = gateway.New(cfg, gateway.Deps{Store: store, Issuer: e.issuer, Verifier: auth.NewVerifier(ac, key), Tickets: e.tickets, Media: m})
	return &mediaEnv{env: e, media: m, blobDir: dir}
}

// openTicket opens a ticket for customer sub and returns its ID.
func (e *mediaEnv) openTicket(t testing.TB, sub string) string {
	t.Helper()
	var tk api.Ticket
	decodeJSON(t, e.do(t, "POST", "/v1/tickets", e.token(t, sub, auth.RoleCustomer), []byte(`{"subject":"projector"}`)), 201, &tk)
	return tk.ID
}

// multipartBody wraps data as a "photo" file part named filename.
func multipartBody(t testing.TB, filename string, data []byte) ([]byte, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	h := textproto.MIMEHeader{}
	// Written by hand: CreateFormFile would escape the name.
	h.Set("Content-Disposition", `form-data; name="photo"; filename="`+filename+`"`)
	h.Set("Content-Type", "image/jpeg") // a lie the server must ignore
	w, err := mw.CreatePart(h)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data)
	mw.Close()
	return buf.Bytes(), mw.FormDataContentType()
}

// send runs one request through app.Test with arbitrary headers.
func (e *mediaEnv) send(t testing.TB, method, path, token string, body []byte, hdr ...string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := e.srv.App().Test(req, 30_000)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func (e *mediaEnv) upload(t testing.TB, token, ticketID, filename string, data []byte) *http.Response {
	t.Helper()
	body, ct := multipartBody(t, filename, data)
	return e.send(t, "POST", "/v1/tickets/"+ticketID+"/photos", token, body, "Content-Type", ct)
}

func readAll(t testing.TB, res *http.Response, status int) []byte {
	t.Helper()
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != status {
		t.Fatalf("status %d, want %d: %.300s", res.StatusCode, status, b)
	}
	return b
}

// blobFiles lists the files in the blob directory.
func (e *mediaEnv) blobFiles(t testing.TB) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(e.blobDir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(e.blobDir, p)
			out = append(out, rel)
		}
		return nil
	})
	return out
}

// TestPhotoUploadPrivateAndServed: a JPEG carrying GPS tags and an EXIF
// orientation goes up by multipart; neither the stored file nor the served
// photo or thumbnail holds the GPS data; the photo is the right way up; it
// is served with ETag, ranges and private caching to the ticket's
// customer, its agents and its dispatched technician only, and through a
// signed URL; a photo_added event is on the ticket.
func TestPhotoUploadPrivateAndServed(t *testing.T) {
	e := newMediaEnv(t, gateway.Config{}, media.Config{})
	tid := e.openTicket(t, "joe")
	joe := e.token(t, "joe", auth.RoleCustomer)
	img := mediatest.JPEG(1024, 768, 6, true)

	var p api.Photo
	decodeJSON(t, e.upload(t, joe, tid, "IMG_0001.jpg", img), 201, &p)
	if p.ID == "" || p.TicketID != tid || p.ContentType != "image/jpeg" || p.Width != 768 || p.Height != 1024 || !p.Thumbnail || p.UploadedBy != "joe" {
		t.Fatalf("photo %+v", p)
	}
	// Stored: no file in the blob directory holds the GPS data.
	for _, f := range e.blobFiles(t) {
		b, _ := readFile(filepath.Join(e.blobDir, f))
		if bytes.Contains(b, []byte(mediatest.GPSMarker)) || bytes.Contains(b, []byte("Exif\x00")) {
			t.Fatalf("stored file %s still holds GPS/Exif", f)
		}
	}
	// Served.
	res := e.send(t, "GET", "/v1/photos/"+p.ID, joe, nil)
	served := readAll(t, res, 200)
	if bytes.Contains(served, []byte(mediatest.GPSMarker)) || bytes.Contains(served, []byte("Exif\x00")) {
		t.Fatal("served photo still holds GPS/Exif")
	}
	if res.Header.Get("Content-Type") != "image/jpeg" || !strings.HasPrefix(res.Header.Get("Cache-Control"), "private") ||
		res.Header.Get("ETag") == "" || res.Header.Get("Accept-Ranges") != "bytes" || res.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("headers %v", res.Header)
	}
	etag := res.Header.Get("ETag")
	readAll(t, e.send(t, "GET", "/v1/photos/"+p.ID, joe, nil, "If-None-Match", etag), 304)
	res = e.send(t, "GET", "/v1/photos/"+p.ID, joe, nil, "Range", "bytes=10-19")
	part := readAll(t, res, 206)
	if !bytes.Equal(part, served[10:20]) || res.Header.Get("Content-Range") != fmt.Sprintf("bytes 10-19/%d", len(served)) {
		t.Fatalf("range: %q, Content-Range %q", part, res.Header.Get("Content-Range"))
	}
	readProblem(t, e.send(t, "GET", "/v1/photos/"+p.ID, joe, nil, "Range", fmt.Sprintf("bytes=%d-", len(served))), 416, api.CodeRangeNotSatisfiable)
	thumb := readAll(t, e.send(t, "GET", "/v1/photos/"+p.ID+"/thumbnail", joe, nil), 200)
	if bytes.Contains(thumb, []byte(mediatest.GPSMarker)) || len(thumb) == 0 || len(thumb) >= len(served) {
		t.Fatalf("thumbnail of %d bytes", len(thumb))
	}

	// Who may see it.
	agent := e.token(t, "ann", auth.RoleAgent)
	readAll(t, e.send(t, "GET", "/v1/photos/"+p.ID, agent, nil), 200)
	tech := e.token(t, "tom", auth.RoleTechnician)
	readProblem(t, e.send(t, "GET", "/v1/photos/"+p.ID, tech, nil), 404, api.CodeNotFound)
	tom := "tom"
	if _, err := e.tickets.Update(context.Background(), ticket.System, tid, api.UpdateTicketRequest{Technician: &tom}); err != nil {
		t.Fatal(err)
	}
	readAll(t, e.send(t, "GET", "/v1/photos/"+p.ID+"/thumbnail", tech, nil), 200)
	eve := e.token(t, "eve", auth.RoleCustomer)
	readProblem(t, e.send(t, "GET", "/v1/photos/"+p.ID, eve, nil), 404, api.CodeNotFound)
	readProblem(t, e.send(t, "GET", "/v1/photos/"+p.ID+"/url", eve, nil), 404, api.CodeNotFound)
	readProblem(t, e.send(t, "GET", "/v1/photos/"+p.ID, "", nil), 401, api.CodeUnauthorized)

	// Signed URLs for the console's <img> tags: no token needed, and
	// nothing else is unlocked by them.
	var u api.PhotoURL
	decodeJSON(t, e.send(t, "GET", "/v1/photos/"+p.ID+"/url", agent, nil), 200, &u)
	if !bytes.Equal(readAll(t, e.send(t, "GET", u.URL, "", nil), 200), served) {
		t.Fatal("signed URL serves other bytes")
	}
	readAll(t, e.send(t, "GET", u.ThumbnailURL, "", nil), 200)
	readProblem(t, e.send(t, "GET", strings.Replace(u.URL, "sig=", "sig=A", 1), "", nil), 403, api.CodeForbidden)
	readProblem(t, e.send(t, "GET", strings.Replace(u.URL, "?", "/thumbnail?", 1), "", nil), 403, api.CodeForbidden)

	// The event.
	var view api.TicketView
	decodeJSON(t, e.do(t, "GET", "/v1/tickets/"+tid, joe, nil), 200, &view)
	var found bool
	for _, ev := range view.Events {
		if ev.Type == api.EventPhotoAdded {
			var pl api.PhotoAddedPayload
			json.Unmarshal(ev.Payload, &pl)
			found = pl.PhotoID == p.ID && pl.Bytes == int64(len(served)) && ev.Actor.ID == "joe" && ev.Channel == api.ChannelApp
		}
	}
	if !found {
		t.Fatalf("no photo_added for %s in %+v", p.ID, view.Events)
	}
	// The same photo again: the first one, and no second event.
	var again api.Photo
	decodeJSON(t, e.upload(t, joe, tid, "IMG_0001 (1).jpg", img), 200, &again)
	if again.ID != p.ID || !again.Duplicate {
		t.Fatalf("again %+v", again)
	}
}

func readFile(p string) ([]byte, error) {
	f, err := openFile(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// TestPhotoUploadAbuse: every kind of bad input is refused with the right
// problem, nothing of it is kept, and the server goes on serving good
// uploads in between.
func TestPhotoUploadAbuse(t *testing.T) {
	e := newMediaEnv(t, gateway.Config{}, media.Config{MaxBytes: 1 << 20})
	tid := e.openTicket(t, "joe")
	joe := e.token(t, "joe", auth.RoleCustomer)
	good := mediatest.JPEG(64, 48, 0, false)
	jpg := mediatest.JPEG(640, 480, 0, false)
	for i, tc := range []struct {
		name     string
		filename string
		data     []byte
		status   int
		code     string
	}{
		{"html renamed .jpg", "photo.jpg", []byte("<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>"), 415, api.CodeUnsupportedMedia},
		{"svg renamed .jpg", "photo.jpg", []byte(`<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"></svg>`), 415, api.CodeUnsupportedMedia},
		{"truncated jpeg", "photo.jpg", jpg[:len(jpg)*2/3], 422, api.CodeValidation},
		{"zero bytes", "photo.jpg", nil, 422, api.CodeValidation},
		{"pixel bomb", "bomb.png", mediatest.PNGHeader(60_000, 60_000), 422, api.CodeValidation},
		{"too large", "big.jpg", append(append([]byte{}, jpg...), make([]byte, 1<<20)...), 413, api.CodeTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := e.blobFiles(t)
			readProblem(t, e.upload(t, joe, tid, tc.filename, tc.data), tc.status, tc.code)
			if after := e.blobFiles(t); len(after) != len(before) {
				t.Fatalf("files %v after a refused upload, had %v", after, before)
			}
			// The server keeps serving: a good photo still goes through.
			g := append(append([]byte{}, good...), byte(i)) // distinct bytes: no dedupe
			readAll(t, e.upload(t, joe, tid, "ok.jpg", g), 201)
		})
	}

	t.Run("names are never paths", func(t *testing.T) {
		// A NUL cannot even be in a multipart header: refused as malformed.
		readProblem(t, e.upload(t, joe, tid, "a\x00b.jpg", good), 400, api.CodeBadRequest)
		for i, name := range []string{"../../../../tmp/evil.jpg", "..\\..\\win.jpg"} {
			var p api.Photo
			decodeJSON(t, e.upload(t, joe, tid, name, mediatest.JPEG(32+i, 32, 0, false)), 201, &p)
			if strings.ContainsAny(p.Filename, "/\\\x00") || strings.Contains(p.Filename, "..") {
				t.Fatalf("filename %q kept as %q", name, p.Filename)
			}
			for _, f := range e.blobFiles(t) {
				if strings.Contains(f, "evil") || strings.Contains(f, "win") || strings.Contains(f, "..") {
					t.Fatalf("a name became a path: %s", f)
				}
			}
		}
	})

	t.Run("another customer's ticket", func(t *testing.T) {
		eve := e.token(t, "eve", auth.RoleCustomer)
		readProblem(t, e.upload(t, eve, tid, "x.jpg", good), 404, api.CodeNotFound)
		readProblem(t, e.upload(t, eve, "no-such-ticket", "x.jpg", good), 404, api.CodeNotFound)
	})

	t.Run("not multipart", func(t *testing.T) {
		readProblem(t, e.send(t, "POST", "/v1/tickets/"+tid+"/photos", joe, good, "Content-Type", "image/jpeg"), 415, api.CodeUnsupportedMedia)
	})
}

// TestPhotoUploadOverLimitMidStream: a chunked upload with no declared
// length that runs past the limit is cut off with 413, keeps nothing,
// and the server serves the next request on a real socket.
func TestPhotoUploadOverLimitMidStream(t *testing.T) {
	e := newMediaEnv(t, gateway.Config{}, media.Config{MaxBytes: 256 << 10})
	addr := e.listen(t)
	tid := e.openTicket(t, "joe")
	joe := e.token(t, "joe", auth.RoleCustomer)
	body, ct := multipartBody(t, "big.jpg", append(mediatest.JPEG(64, 64, 0, false), make([]byte, 1<<20)...))
	req, _ := http.NewRequest("POST", "http://"+addr+"/v1/tickets/"+tid+"/photos", io.MultiReader(bytes.NewReader(body))) // unknown length: chunked
	req.Header.Set("Authorization", "Bearer "+joe)
	req.Header.Set("Content-Type", ct)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	readProblem(t, res, 413, api.CodeTooLarge)
	if f := e.blobFiles(t); len(f) != 0 {
		t.Fatalf("kept %v", f)
	}
	// Ordinary routes keep their 1 MiB limit although bodies now stream.
	big := bytes.Repeat([]byte("a"), 2<<20)
	req, _ = http.NewRequest("POST", "http://"+addr+"/v1/tickets", io.MultiReader(bytes.NewReader(big)))
	req.Header.Set("Authorization", "Bearer "+joe)
	req.Header.Set("Content-Type", "application/json")
	if res, err = http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	}
	readProblem(t, res, 413, api.CodeTooLarge)
	// And the next good upload goes through.
	body, ct = multipartBody(t, "ok.jpg", mediatest.JPEG(64, 64, 0, false))
	req, _ = http.NewRequest("POST", "http://"+addr+"/v1/tickets/"+tid+"/photos", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+joe)
	req.Header.Set("Content-Type", ct)
	if res, err = http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	}
	readAll(t, res, 201)
}

func openFile(p string) (io.ReadCloser, error) { return os.Open(p) }
