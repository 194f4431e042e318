package gateway_test

import (
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/gateway"
	"github.com/switchboard/switchboard/media"
	"github.com/switchboard/switchboard/media/mediatest"
	"github.com/switchboard/switchboard/ticket"
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// tusCreate starts an upload of length bytes on ticket tid.
func (e *mediaEnv) tusCreate(t testing.TB, token, tid string, length int) string {
	t.Helper()
	res := e.send(t, "POST", "/v1/uploads", token, nil, "Tus-Resumable", "1.0.0",
		"Upload-Length", strconv.Itoa(length), "Upload-Metadata", "ticket_id "+b64(tid)+",filename "+b64("a/../b\x00.jpg"))
	readAll(t, res, 201)
	loc := res.Header.Get("Location")
	if !strings.HasPrefix(loc, "/v1/uploads/") || res.Header.Get("Tus-Resumable") != "1.0.0" {
		t.Fatalf("Location %q, headers %v", loc, res.Header)
	}
	return loc
}

func (e *mediaEnv) tusPatch(t testing.TB, token, loc string, offset int, body []byte, hdr ...string) *http.Response {
	t.Helper()
	h := append([]string{"Tus-Resumable", "1.0.0", "Content-Type", "application/offset+octet-stream", "Upload-Offset", strconv.Itoa(offset)}, hdr...)
	return e.send(t, "PATCH", loc, token, body, h...)
}

func sha1Header(b []byte) string {
	s := sha1.Sum(b)
	return "sha1 " + base64.StdEncoding.EncodeToString(s[:])
}

// TestTusProtocol walks tus 1.0 core, creation, termination and checksum
// with their refusals: wrong offset (409), bad checksum (460), a body past
// Upload-Length (413, the upload dropped), a declared length over the
// limit (413 before any byte), another customer's upload (404), a missing
// Tus-Resumable (412).
func TestTusProtocol(t *testing.T) {
	e := newMediaEnv(t, gateway.Config{}, media.Config{MaxBytes: 4 << 20})
	tid := e.openTicket(t, "joe")
	joe := e.token(t, "joe", auth.RoleCustomer)
	img := mediatest.JPEG(900, 600, 3, true)

	res := e.send(t, "OPTIONS", "/v1/uploads", joe, nil)
	readAll(t, res, 204)
	if res.Header.Get("Tus-Version") != "1.0.0" || res.Header.Get("Tus-Extension") != "creation,termination,checksum" ||
		res.Header.Get("Tus-Max-Size") != strconv.Itoa(4<<20) || !strings.Contains(res.Header.Get("Tus-Checksum-Algorithm"), "sha1") {
		t.Fatalf("OPTIONS headers %v", res.Header)
	}
	readProblem(t, e.send(t, "POST", "/v1/uploads", joe, nil, "Upload-Length", "10"), 412, api.CodeTusVersion)
	readProblem(t, e.send(t, "POST", "/v1/uploads", joe, nil, "Tus-Resumable", "1.0.0", "Upload-Length", strconv.Itoa(5<<20),
		"Upload-Metadata", "ticket_id "+b64(tid)), 413, api.CodeTooLarge)
	readProblem(t, e.send(t, "POST", "/v1/uploads", joe, nil, "Tus-Resumable", "1.0.0", "Upload-Length", "10"), 400, api.CodeBadRequest)
	readProblem(t, e.send(t, "POST", "/v1/uploads", joe, nil, "Tus-Resumable", "1.0.0", "Upload-Length", "10",
		"Upload-Metadata", "ticket_id !!notbase64"), 400, api.CodeBadRequest)
	eve := e.token(t, "eve", auth.RoleCustomer)
	readProblem(t, e.send(t, "POST", "/v1/uploads", eve, nil, "Tus-Resumable", "1.0.0", "Upload-Length", "10",
		"Upload-Metadata", "ticket_id "+b64(tid)), 404, api.CodeNotFound)

	loc := e.tusCreate(t, joe, tid, len(img))
	half := len(img) / 2
	readProblem(t, e.tusPatch(t, joe, loc, 5, img[5:half]), 409, api.CodeConflict)
	readProblem(t, e.tusPatch(t, joe, loc, 0, img[:half], "Upload-Checksum", sha1Header(img[:10])), 460, api.CodeChecksumMismatch)
	readProblem(t, e.tusPatch(t, joe, loc, 0, img[:half], "Upload-Checksum", "crc32 AAAA"), 400, api.CodeBadRequest)
	readProblem(t, e.send(t, "PATCH", loc, joe, img[:half], "Tus-Resumable", "1.0.0", "Upload-Offset", "0"), 415, api.CodeUnsupportedMedia)
	res = e.tusPatch(t, joe, loc, 0, img[:half], "Upload-Checksum", sha1Header(img[:half]))
	readAll(t, res, 204)
	if res.Header.Get("Upload-Offset") != strconv.Itoa(half) {
		t.Fatalf("offset %q after the first half", res.Header.Get("Upload-Offset"))
	}
	// Where to resume, for the owner only.
	res = e.send(t, "HEAD", loc, joe, nil, "Tus-Resumable", "1.0.0")
	readAll(t, res, 200)
	if res.Header.Get("Upload-Offset") != strconv.Itoa(half) || res.Header.Get("Upload-Length") != strconv.Itoa(len(img)) || res.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("HEAD %v", res.Header)
	}
	res = e.send(t, "HEAD", loc, eve, nil, "Tus-Resumable", "1.0.0")
	readAll(t, res, 404)
	readProblem(t, e.tusPatch(t, eve, loc, half, img[half:]), 404, api.CodeNotFound)

	res = e.tusPatch(t, joe, loc, half, img[half:], "Upload-Checksum", sha1Header(img[half:]))
	readAll(t, res, 204)
	pid := res.Header.Get(api.HeaderPhotoID)
	if res.Header.Get("Upload-Offset") != strconv.Itoa(len(img)) || pid == "" {
		t.Fatalf("completing PATCH headers %v", res.Header)
	}
	served := readAll(t, e.send(t, "GET", "/v1/photos/"+pid, joe, nil), 200)
	if bytes.Contains(served, []byte(mediatest.GPSMarker)) {
		t.Fatal("GPS survived a tus upload")
	}
	// A retry of the completing PATCH is answered, not redone.
	res = e.tusPatch(t, joe, loc, len(img), nil)
	readAll(t, res, 204)
	if res.Header.Get(api.HeaderPhotoID) != pid {
		t.Fatalf("retry answered photo %q, want %q", res.Header.Get(api.HeaderPhotoID), pid)
	}

	t.Run("body past Upload-Length", func(t *testing.T) {
		loc := e.tusCreate(t, joe, tid, 100)
		readProblem(t, e.tusPatch(t, joe, loc, 0, mediatest.JPEG(64, 64, 0, false)), 413, api.CodeTooLarge)
	})
	t.Run("html is refused at the first bytes", func(t *testing.T) {
		html := []byte("<html><body>" + strings.Repeat("x", 4000) + "</body></html>")
		loc := e.tusCreate(t, joe, tid, len(html)*2)
		readProblem(t, e.tusPatch(t, joe, loc, 0, html), 415, api.CodeUnsupportedMedia)
		readAll(t, e.send(t, "HEAD", loc, joe, nil, "Tus-Resumable", "1.0.0"), 404) // dropped
	})
	t.Run("termination", func(t *testing.T) {
		loc := e.tusCreate(t, joe, tid, len(img))
		readAll(t, e.tusPatch(t, joe, loc, 0, img[:100]), 204)
		readProblem(t, e.send(t, "DELETE", loc, eve, nil, "Tus-Resumable", "1.0.0"), 404, api.CodeNotFound)
		readAll(t, e.send(t, "DELETE", loc, joe, nil, "Tus-Resumable", "1.0.0"), 204)
		readAll(t, e.send(t, "HEAD", loc, joe, nil, "Tus-Resumable", "1.0.0"), 404)
	})
	// Nothing of the refused or terminated uploads is left on disk.
	for _, f := range e.blobFiles(t) {
		if strings.HasPrefix(f, "upload") || strings.HasPrefix(f, "spool") {
			t.Fatalf("left behind: %s", f)
		}
	}
}

// cutProxy forwards TCP to target and cuts the first connection that
// carries a PATCH once cutAfter bytes of it went upstream: a train going
// into a tunnel. It records the Upload-Offset of every PATCH it forwards.
type cutProxy struct {
	mu      sync.Mutex
	cut     bool
	offsets []int
	bytesUp int
}

var offsetRe = regexp.MustCompile(`(?i)\r\nupload-offset: *(\d+)`)

func (p *cutProxy) serve(t *testing.T, target string, cutAfter int) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.pipe(c, target, cutAfter)
		}
	}()
	return ln.Addr().String()
}

func (p *cutProxy) pipe(c net.Conn, target string, cutAfter int) {
	defer c.Close()
	up, err := net.Dial("tcp", target)
	if err != nil {
		return
	}
	defer up.Close()
	go func() { io.Copy(c, up); c.Close() }()
	buf := make([]byte, 32<<10)
	sent, patch := 0, false
	for {
		n, err := c.Read(buf)
		if n > 0 {
			chunk := buf[:n]
			p.mu.Lock()
			if bytes.HasPrefix(chunk, []byte("PATCH ")) {
				patch = true
				if m := offsetRe.FindSubmatch(chunk); m != nil {
					off, _ := strconv.Atoi(string(m[1]))
					p.offsets = append(p.offsets, off)
				}
			}
			cutNow := patch && !p.cut && sent+n > cutAfter
			if cutNow {
				p.cut = true
				chunk = chunk[:max(cutAfter-sent, 0)]
			}
			p.bytesUp += len(chunk)
			p.mu.Unlock()
			if _, werr := up.Write(chunk); werr != nil || cutNow {
				return // both ends close: the connection dropped mid-body
			}
			sent += n
		}
		if err != nil {
			up.(*net.TCPConn).CloseWrite()
			return
		}
	}
}

// requireTool finds a program the test needs; under the project's test
// command (SWITCHBOARD_REQUIRE_SERVICES=1) a missing one fails the test.
func requireTool(t *testing.T, name, why string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("SWITCHBOARD_REQUIRE_SERVICES") == "1" {
			t.Fatalf("%s is missing: %s", name, why)
		}
		t.Skipf("SKIPPED LOUDLY: %s is missing (%s); scripts/test installs it", name, why)
	}
	return p
}

// TestTusJSClientResumes uploads a photo with tus-js-client, the reference
// tus client, under Node, through a proxy that drops the connection
// partway through the body. The client resumes from where the server
// stood (its last PATCH starts past half the file, though the cut came at
// 70 %), and the photo lands on the ticket without its GPS data.
func TestTusJSClientResumes(t *testing.T) {
	node := requireTool(t, "node", "the tus-js-client interoperability test runs under Node")
	client, _ := filepath.Abs("../media/testdata/tusclient")
	if _, err := os.Stat(filepath.Join(client, "node_modules", "tus-js-client")); err != nil {
		if os.Getenv("SWITCHBOARD_REQUIRE_SERVICES") == "1" {
			t.Fatalf("tus-js-client is not installed: run npm ci in %s (scripts/test does)", client)
		}
		t.Skipf("SKIPPED LOUDLY: run npm ci in %s", client)
	}
	e := newMediaEnv(t, gateway.Config{}, media.Config{})
	addr := e.listen(t)
	tid := e.openTicket(t, "joe")
	joe := e.token(t, "joe", auth.RoleCustomer)

	img := mediatest.WithExif(mediatest.NoisyJPEG(1600, 1400, 7), 1, true)
	if len(img) < 2<<20 {
		t.Fatalf("fixture of %d bytes; want over 2 MiB so the body streams past the 1 MiB buffered limit", len(img))
	}
	file := filepath.Join(t.TempDir(), "IMG_0042.jpg")
	if err := os.WriteFile(file, img, 0o600); err != nil {
		t.Fatal(err)
	}
	var px cutProxy
	cutAt := len(img) * 7 / 10
	paddr := px.serve(t, addr, cutAt)

	cmd := exec.CommandContext(t.Context(), node, filepath.Join(client, "upload.js"), "http://"+paddr+"/v1/uploads", joe, tid, file)
	cmd.Dir = client
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tus-js-client: %v\n%s", err, stderr.String())
	}
	var got struct {
		URL      string `json:"url"`
		PhotoID  string `json:"photo_id"`
		Progress int    `json:"progress"`
		Events   int    `json:"progress_events"`
		Retries  int    `json:"retries"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("client said %q: %v", out, err)
	}
	px.mu.Lock()
	offsets, up := px.offsets, px.bytesUp
	px.mu.Unlock()
	if !px.cut || len(offsets) < 2 || offsets[0] != 0 || offsets[len(offsets)-1] == 0 {
		t.Fatalf("cut=%v, PATCH offsets %v: the client did not resume mid-file", px.cut, offsets)
	}
	if resumedAt := offsets[len(offsets)-1]; resumedAt < len(img)/2 {
		t.Fatalf("resumed at %d of %d; the cut was at %d", resumedAt, len(img), cutAt)
	}
	t.Logf("PATCH offsets %v, %d bytes up for %d, client %s", offsets, up, len(img), out)
	if got.PhotoID == "" || got.Progress != len(img) || got.Retries < 1 {
		t.Fatalf("client result %+v", got)
	}
	served := readAll(t, e.send(t, "GET", "/v1/photos/"+got.PhotoID, joe, nil), 200)
	if bytes.Contains(served, []byte(mediatest.GPSMarker)) {
		t.Fatal("GPS survived")
	}
	// The filename in metadata held ../ and a NUL: cleaned, for display.
	p, err := e.media.Photo(t.Context(), viewerOf("joe", auth.RoleCustomer), got.PhotoID)
	if err != nil || p.Filename != "IMG_0042.jpg" {
		t.Fatalf("photo %+v, %v", p, err)
	}
	var view api.TicketView
	decodeJSON(t, e.do(t, "GET", "/v1/tickets/"+tid, joe, nil), 200, &view)
	if n := countType(view.Events, api.EventPhotoAdded); n != 1 {
		t.Fatalf("%d photo_added events, want 1", n)
	}
}

func viewerOf(sub string, role auth.Role) ticket.Viewer { return ticket.Viewer{ID: sub, Role: role} }
