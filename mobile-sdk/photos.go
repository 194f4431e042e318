package sdk

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/switchboard/switchboard/api"
)

// Resumable photo uploads over tus 1.0 (/v1/uploads). A photo interrupted
// at 80 % on a train goes on from 80 %: after a dropped connection the
// client asks the gateway how far it got (HEAD) and sends only the rest.
const (
	// maxUploadStalls bounds the failures in a row without progress
	// before UploadPhoto gives up; any byte that lands resets the count.
	// Eight backoffs from 250ms span about a minute: a tunnel, not an
	// outage.
	maxUploadStalls = 8
	// uploadChunk is the body of one PATCH. The gateway keeps what
	// arrives of a cut PATCH, so big chunks lose nothing on a drop; 4 MiB
	// keeps a request short enough for a mobile radio's idle timers.
	uploadChunk = 4 << 20
	tusVersion  = "1.0.0"
)

// UploadOptions tune UploadPhoto; the zero value is fine.
type UploadOptions struct {
	// Filename is shown to agents; it is never used as a path.
	Filename string
	// OnProgress is called with the bytes sent so far and the total, from
	// the goroutine running UploadPhoto; sent only grows.
	OnProgress func(sent, total int64)
	// UploadURL resumes an upload started earlier (even by an app run
	// that has since been killed), as OnCreated reported it.
	UploadURL string
	// OnCreated reports a new upload's URL: keep it to resume after the
	// app restarts.
	OnCreated func(uploadURL string)
}

// UploadPhoto sends size bytes of photo to ticketID with tus, resuming by
// itself after dropped connections, and returns the stored photo's ID.
// The gateway checks the bytes (JPEG, PNG, WebP or HEIC), strips their
// metadata and adds a photo_added event to the ticket.
func (c *Client) UploadPhoto(ctx context.Context, ticketID string, photo io.ReaderAt, size int64, o UploadOptions) (string, error) {
	if _, err := pathID(ticketID); err != nil {
		return "", err
	}
	loc := o.UploadURL
	if loc == "" {
		var err error
		if loc, err = c.createUpload(ctx, ticketID, size, o.Filename); err != nil {
			return "", err
		}
		if o.OnCreated != nil {
			o.OnCreated(loc)
		}
	}
	// Report only growth: after a drop the gateway may hold less than
	// was sent, and a bar that jumps back looks broken.
	reported := int64(-1)
	progress := func(n int64) {
		if o.OnProgress != nil && n > reported {
			reported = n
			o.OnProgress(n, size)
		}
	}
	offset, stalls := int64(-1), 0
	var lastErr error
	for {
		if stalls > 0 {
			if sleep(ctx, retryWait(min(stalls, 6), lastErr)) != nil {
				return "", lastErr
			}
		}
		if offset < 0 { // where the gateway stands: after a failure, or a resume
			off, photoID, err := c.uploadOffset(ctx, loc)
			if err != nil {
				if !transient(err) || stalls >= maxUploadStalls {
					return "", err
				}
				stalls, lastErr = stalls+1, err
				continue
			}
			if photoID != "" {
				progress(size)
				return photoID, nil
			}
			offset = off
			progress(offset)
		}
		n := min(size-offset, uploadChunk)
		body := &progressReader{r: io.NewSectionReader(photo, offset, n), base: offset, report: progress}
		next, photoID, err := c.patch(ctx, loc, offset, n, body)
		if err != nil {
			if !transient(err) && StatusCode(err) != http.StatusConflict && StatusCode(err) != http.StatusLocked {
				return "", err
			}
			if stalls >= maxUploadStalls {
				return "", err
			}
			stalls, lastErr, offset = stalls+1, err, -1
			continue
		}
		if next > offset {
			stalls = 0
		}
		offset = next
		if photoID != "" {
			progress(size)
			return photoID, nil
		}
	}
}

// tusRequest sends one tus request with the user's access token,
// refreshing once if it expired.
func (c *Client) tusRequest(ctx context.Context, method, target string, hdr map[string]string, body io.Reader, length int64) (*http.Response, error) {
	u, err := c.base.Parse(target)
	if err != nil || u.Host != c.base.Host {
		return nil, fmt.Errorf("switchboard: upload URL %q is not on the gateway", target)
	}
	for attempt := 0; ; attempt++ {
		access, err := c.freshAccess(ctx)
		if err != nil {
			return nil, err
		}
		req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
		if err != nil {
			return nil, fmt.Errorf("switchboard: %w", err)
		}
		req.ContentLength = length
		req.Header.Set("Tus-Resumable", tusVersion)
		req.Header.Set("User-Agent", c.agent)
		if access != "" {
			req.Header.Set("Authorization", "Bearer "+access)
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		res, err := c.http.Do(req)
		if err != nil {
			return nil, &transportError{err}
		}
		if res.StatusCode < 400 {
			return res, nil
		}
		err = decode(res, nil)
		res.Body.Close()
		if attempt == 0 && body == nil && StatusCode(err) == http.StatusUnauthorized && Code(err) == api.CodeTokenExpired {
			if _, err := c.refreshAfter(ctx, access); err != nil {
				return nil, err
			}
			continue
		}
		return nil, err
	}
}

func (c *Client) createUpload(ctx context.Context, ticketID string, size int64, filename string) (string, error) {
	meta := "ticket_id " + base64.StdEncoding.EncodeToString([]byte(ticketID))
	if filename != "" {
		meta += ",filename " + base64.StdEncoding.EncodeToString([]byte(filename))
	}
	hdr := map[string]string{"Upload-Length": strconv.FormatInt(size, 10), "Upload-Metadata": meta, "Idempotency-Key": newIdempotencyKey()}
	var err error
	for attempt := 0; attempt < maxAttempts; attempt++ {
		if attempt > 0 && sleep(ctx, retryWait(attempt, err)) != nil {
			return "", err
		}
		var res *http.Response
		if res, err = c.tusRequest(ctx, http.MethodPost, "/v1/uploads", hdr, nil, 0); err == nil {
			res.Body.Close()
			loc := res.Header.Get("Location")
			if !strings.HasPrefix(loc, "/v1/uploads/") {
				return "", fmt.Errorf("switchboard: upload created without a Location")
			}
			return loc, nil
		}
		if !transient(err) {
			return "", err
		}
	}
	return "", err
}

// uploadOffset asks where an upload stands (tus HEAD).
func (c *Client) uploadOffset(ctx context.Context, loc string) (int64, string, error) {
	res, err := c.tusRequest(ctx, http.MethodHead, loc, nil, nil, 0)
	if err != nil {
		return 0, "", err
	}
	res.Body.Close()
	off, err := strconv.ParseInt(res.Header.Get("Upload-Offset"), 10, 64)
	if err != nil {
		return 0, "", errors.New("switchboard: the gateway's HEAD has no Upload-Offset")
	}
	return off, res.Header.Get(api.HeaderPhotoID), nil
}

func (c *Client) patch(ctx context.Context, loc string, offset, n int64, body io.Reader) (int64, string, error) {
	hdr := map[string]string{"Content-Type": "application/offset+octet-stream", "Upload-Offset": strconv.FormatInt(offset, 10)}
	res, err := c.tusRequest(ctx, http.MethodPatch, loc, hdr, body, n)
	if err != nil {
		return 0, "", err
	}
	res.Body.Close()
	next, err := strconv.ParseInt(res.Header.Get("Upload-Offset"), 10, 64)
	if err != nil {
		return 0, "", errors.New("switchboard: the gateway's PATCH answer has no Upload-Offset")
	}
	return next, res.Header.Get(api.HeaderPhotoID), nil
}

// progressReader reports bytes as the HTTP client reads them.
type progressReader struct {
	r      io.Reader
	base   int64
	sent   int64
	report func(int64)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.sent += int64(n)
	if n > 0 {
		p.report(p.base + p.sent)
	}
	return n, err
}
