package mobile

import (
	"bytes"
	"context"
	"time"

	sdk "github.com/switchboard/switchboard/mobile-sdk"
)

// uploadTimeout bounds one UploadPhoto call: 20 MB over a weak 3G link
// with a few drops.
const uploadTimeout = 15 * time.Minute

// UploadHandler follows a photo upload.
type UploadHandler interface {
	// OnProgress reports bytes sent of total; it only grows.
	OnProgress(sent, total int64)
	// OnCreated hands over the upload's URL: store it, and pass it to
	// ResumePhoto if the app is killed before the upload ends.
	OnCreated(uploadURL string)
}

// UploadPhoto sends a photo (JPEG, PNG, WebP or HEIC bytes) to a ticket,
// resuming by itself after dropped connections, and returns the photo's
// ID. h may be nil.
func (c *Client) UploadPhoto(ticketID string, photo []byte, filename string, h UploadHandler) (string, error) {
	return c.ResumePhoto(ticketID, photo, filename, "", h)
}

// ResumePhoto is UploadPhoto continuing an upload an earlier run started
// (uploadURL from OnCreated; empty starts a new one).
func (c *Client) ResumePhoto(ticketID string, photo []byte, filename, uploadURL string, h UploadHandler) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), uploadTimeout)
	defer cancel()
	o := sdk.UploadOptions{Filename: filename, UploadURL: uploadURL}
	if h != nil {
		o.OnProgress, o.OnCreated = h.OnProgress, h.OnCreated
	}
	id, err := c.c.UploadPhoto(ctx, ticketID, bytes.NewReader(photo), int64(len(photo)), o)
	if err != nil {
		return "", wrap(err)
	}
	return id, nil
}
