package gateway

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/media"
)

// Bounds of the photo routes.
const (
	// multipartSlack is what a multipart envelope may add to a photo's
	// bytes (boundaries, part headers, a few small fields).
	multipartSlack = 64 << 10
	// drainLimit is how much of a refused upload's body is read to keep
	// the connection; beyond it the connection is closed.
	drainLimit = 64 << 10
	// maxParts bounds the parts read before the photo: an app sends one.
	maxParts = 8
	// uploadReadTimeout replaces the ordinary ReadTimeout on upload
	// routes: 20 MB at 300 kbit/s (a weak 3G link) takes about 9 minutes.
	// The connection is authenticated before the deadline is extended.
	uploadReadTimeout = 10 * time.Minute
	// uploadRate is how many uploads (multipart or tus creations) one
	// subject may start per rate window (1m by default): a customer sends
	// a few photos per ticket; this stops a loop filling the disk.
	uploadRate = 30
	// cachePhoto: photos never change under their ID, but access can be
	// withdrawn (a technician reassigned), so browsers keep them privately
	// and briefly.
	cachePhoto = "private, max-age=300"
)

// photoRoutes wires photo uploads (multipart and tus 1.0), serving and
// signed URLs. Fiber is configured with StreamRequestBody so these routes
// read their bodies as streams; limitBody keeps every other route to
// BodyLimit as before.
func (s *Server) photoRoutes(v1 fiber.Router) {
	m := []fiber.Handler{s.authenticate, s.mediaConfigured}
	v1.Post("/tickets/:id/photos", append(m, s.uploadLimit, s.uploadPhoto)...)
	v1.Get("/photos/:id", s.mediaConfigured, s.photoAuth, s.getPhoto(false))
	v1.Get("/photos/:id/thumbnail", s.mediaConfigured, s.photoAuth, s.getPhoto(true))
	v1.Get("/photos/:id/url", append(m, s.photoURL)...)
	s.tusRoutes(v1, m)
}

// streamsBody reports whether a request's body is read as a stream by its
// handler; every other body is held to BodyLimit by limitBody.
func streamsBody(method, path string) bool {
	switch method {
	case fiber.MethodPost:
		return strings.HasPrefix(path, "/v1/tickets/") && strings.HasSuffix(path, "/photos")
	case fiber.MethodPatch:
		return strings.HasPrefix(path, "/v1/uploads/")
	}
	return false
}

// limitBody restores the ordinary body limit where Fiber streams bodies:
// with StreamRequestBody, fasthttp reads a body up to BodyLimit as before
// but hands a larger (or chunked) one over as a stream instead of
// refusing it, and c.Body() would read that stream whole into memory.
func (s *Server) limitBody(c *fiber.Ctx) error {
	req := c.Request()
	if !req.IsBodyStream() {
		return c.Next()
	}
	if streamsBody(c.Method(), c.Path()) {
		err := c.Next()
		// fasthttp does not skip what a handler left unread: the rest
		// would be parsed as the next request on this connection. Drain
		// a little; past that, close the connection instead.
		n, derr := io.Copy(io.Discard, io.LimitReader(req.BodyStream(), drainLimit+1))
		if derr != nil || n > drainLimit {
			c.Response().SetConnectionClose()
		}
		return err
	}
	cl := req.Header.ContentLength()
	if cl > s.cfg.BodyLimit {
		c.Response().SetConnectionClose()
		return fiber.ErrRequestEntityTooLarge
	}
	if cl == -1 { // chunked: read at most one byte past the limit
		b, err := io.ReadAll(io.LimitReader(req.BodyStream(), int64(s.cfg.BodyLimit)+1))
		if err != nil {
			return fiber.ErrBadRequest
		}
		if len(b) > s.cfg.BodyLimit {
			c.Response().SetConnectionClose()
			return fiber.ErrRequestEntityTooLarge
		}
		req.SetBodyRaw(b)
	}
	return c.Next()
}

// mediaConfigured answers 503 when the server runs without photos.
func (s *Server) mediaConfigured(c *fiber.Ctx) error {
	if s.deps.Media == nil {
		return problem(503, api.CodeUnavailable, "photo uploads are not enabled on this server")
	}
	return c.Next()
}

// uploadLimit counts one upload against the caller's upload rate, and
// gives the connection the longer upload read deadline.
func (s *Server) uploadLimit(c *fiber.Ctx) error {
	if err := s.limit(c, "upload:"+claimsOf(c).Subject, uploadRate); err != nil {
		return err
	}
	if conn := c.Context().Conn(); conn != nil {
		_ = conn.SetReadDeadline(time.Now().Add(uploadReadTimeout))
	}
	return c.Next()
}

// requestBody is the request body as a stream, bounded by the caller.
func requestBody(c *fiber.Ctx) io.Reader {
	if r := c.Request().BodyStream(); r != nil {
		return r
	}
	return bytes.NewReader(c.Body())
}

// uploadPhoto takes one photo as multipart/form-data (field "photo", or
// the first file part). Sending the same bytes to the same ticket again
// answers the first photo with 200 and writes no second event: the
// content hash is the idempotency key of this route.
func (s *Server) uploadPhoto(c *fiber.Ctx) error {
	mt, params, err := mime.ParseMediaType(c.Get(fiber.HeaderContentType))
	if err != nil || mt != fiber.MIMEMultipartForm || params["boundary"] == "" {
		return problem(415, api.CodeUnsupportedMedia, "send multipart/form-data with the photo in a file part named \"photo\"")
	}
	lim := s.deps.Media.Limits()
	if cl := c.Request().Header.ContentLength(); int64(cl) > lim.MaxBytes+multipartSlack {
		c.Response().SetConnectionClose()
		return problem(413, api.CodeTooLarge, "the photo is larger than "+strconv.FormatInt(lim.MaxBytes, 10)+" bytes")
	}
	mr := multipart.NewReader(requestBody(c), params["boundary"])
	for range maxParts {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return problem(400, api.CodeBadRequest, "malformed multipart body")
		}
		if part.FormName() != "photo" && part.FileName() == "" {
			_, _ = io.Copy(io.Discard, io.LimitReader(part, multipartSlack))
			continue
		}
		// The raw name: FileName() would already drop directories.
		_, dp, _ := mime.ParseMediaType(part.Header.Get(fiber.HeaderContentDisposition))
		p, err := s.deps.Media.Ingest(c.UserContext(), viewer(c), c.Params("id"), dp["filename"], part)
		if err != nil {
			c.Response().SetConnectionClose() // don't drain what's left
			return err
		}
		c.Location("/v1/photos/" + p.ID)
		if p.Duplicate {
			return c.JSON(p)
		}
		return c.Status(fiber.StatusCreated).JSON(p)
	}
	return problem(400, api.CodeBadRequest, "no file part named \"photo\" in the body")
}

// photoAuth lets a request through with either a bearer token or a valid
// signed URL (exp and sig query parameters, for <img> tags).
func (s *Server) photoAuth(c *fiber.Ctx) error {
	if c.Query("sig") != "" {
		return c.Next()
	}
	return s.authenticate(c)
}

func (s *Server) getPhoto(thumb bool) fiber.Handler {
	return func(c *fiber.Ctx) error {
		var ct *media.Content
		var err error
		if sig := c.Query("sig"); sig != "" && claimsOf(c) == nil {
			ct, err = s.deps.Media.OpenSigned(c.UserContext(), c.Params("id"), thumb, c.Query("exp"), sig)
		} else {
			ct, err = s.deps.Media.Open(c.UserContext(), viewer(c), c.Params("id"), thumb)
		}
		if err != nil {
			return err
		}
		return serveContent(c, ct)
	}
}

// photoURL mints short-lived signed URLs for a photo and its thumbnail.
func (s *Server) photoURL(c *fiber.Ctx) error {
	id := c.Params("id")
	sg, err := s.deps.Media.Sign(c.UserContext(), viewer(c), id)
	if err != nil {
		return err
	}
	q := func(sig string) string { return "?" + url.Values{"exp": {sg.ExpParam}, "sig": {sig}}.Encode() }
	out := api.PhotoURL{URL: "/v1/photos/" + url.PathEscape(id) + q(sg.Sig), ExpiresAt: sg.Exp}
	if sg.Thumbnail {
		out.ThumbnailURL = "/v1/photos/" + url.PathEscape(id) + "/thumbnail" + q(sg.ThumbSig)
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(out)
}

// serveContent answers with a blob: ETag and If-None-Match, one byte
// range (RFC 9110 §14; several ranges get the whole photo, which the RFC
// allows), private caching, and headers that stop a browser from
// treating the bytes as anything but an image.
func serveContent(c *fiber.Ctx, ct *media.Content) error {
	size := ct.Size()
	c.Set(fiber.HeaderETag, ct.ETag)
	c.Set(fiber.HeaderCacheControl, cachePhoto)
	c.Set(fiber.HeaderAcceptRanges, "bytes")
	c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	c.Set(fiber.HeaderContentSecurityPolicy, "default-src 'none'; sandbox")
	c.Set(fiber.HeaderContentType, ct.ContentType)
	if inm := c.Get(fiber.HeaderIfNoneMatch); inm != "" && etagMatch(inm, ct.ETag) {
		ct.Close()
		return c.SendStatus(fiber.StatusNotModified)
	}
	start, n := int64(0), size
	if h := c.Get(fiber.HeaderRange); h != "" && (c.Get(fiber.HeaderIfRange) == "" || c.Get(fiber.HeaderIfRange) == ct.ETag) {
		rs, re, err := parseRange(h, size)
		switch {
		case errors.Is(err, errRangeUnsatisfiable):
			ct.Close()
			c.Set(fiber.HeaderContentRange, "bytes */"+strconv.FormatInt(size, 10))
			return problem(416, api.CodeRangeNotSatisfiable, "the range lies outside the photo")
		case err == nil:
			start, n = rs, re-rs+1
			c.Set(fiber.HeaderContentRange, "bytes "+strconv.FormatInt(rs, 10)+"-"+strconv.FormatInt(re, 10)+"/"+strconv.FormatInt(size, 10))
			c.Status(fiber.StatusPartialContent)
		}
	}
	c.Response().SetBodyStream(sectionCloser{io.NewSectionReader(ct, start, n), ct}, int(n))
	return nil
}

type sectionCloser struct {
	*io.SectionReader
	io.Closer
}

func etagMatch(header, tag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == tag || t == "*" {
			return true
		}
	}
	return false
}
