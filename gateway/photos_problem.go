package gateway

import (
	"errors"
	"net/http"
	"strings"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/media"
)

// mediaProblem maps the media domain's errors; toProblem calls it.
func mediaProblem(err error) (*problemError, bool) {
	p := func(status int, code, detail string) (*problemError, bool) {
		return &problemError{status: status, code: code, detail: detail}, true
	}
	switch {
	case errors.Is(err, media.ErrNotFound):
		return p(404, api.CodeNotFound, "no such photo or upload")
	case errors.Is(err, media.ErrNoSpace):
		return p(507, api.CodeInsufficientStorage, "the server has no room for this photo now; nothing was kept, retry later")
	case errors.Is(err, media.ErrInvalid):
		return p(400, api.CodeBadRequest, mediaDetail(err))
	case errors.Is(err, media.ErrEmpty):
		return p(422, api.CodeValidation, "the file is empty")
	case errors.Is(err, media.ErrUnsupported):
		return p(415, api.CodeUnsupportedMedia, "the file is not a JPEG, PNG, WebP or HEIC image")
	case errors.Is(err, media.ErrTooLarge):
		return p(413, api.CodeTooLarge, mediaDetail(err))
	case errors.Is(err, media.ErrTooManyPixels), errors.Is(err, media.ErrCorrupt):
		return p(422, api.CodeValidation, mediaDetail(err))
	case errors.Is(err, media.ErrOffsetMismatch):
		return p(409, api.CodeConflict, mediaDetail(err))
	case errors.Is(err, media.ErrChecksumMismatch):
		// 460 is the tus checksum extension's own status.
		return p(460, api.CodeChecksumMismatch, "the body does not match Upload-Checksum; it was not kept")
	case errors.Is(err, media.ErrLocked):
		return p(423, api.CodeUploadLocked, "another PATCH on this upload is in progress")
	case errors.Is(err, media.ErrBadSignature):
		return p(403, api.CodeForbidden, "the signed URL is not valid or has expired")
	}
	return nil, false
}

// statusTitle is the problem title of status: the standard reason
// phrase, or the tus checksum extension's for its own 460.
func statusTitle(status int) string {
	if status == 460 {
		return "Checksum Mismatch"
	}
	return http.StatusText(status)
}

// mediaDetail is a media error's message without its package prefix and
// sentinel: "media: too large: X" shows as "X".
func mediaDetail(err error) string {
	msg, _ := strings.CutPrefix(err.Error(), "media: ")
	if _, rest, ok := strings.Cut(msg, ": "); ok {
		return rest
	}
	return msg
}
