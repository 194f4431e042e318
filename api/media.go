package api

import "time"

// Photo is a stored photo attached to a ticket. Its bytes are served at
// /v1/photos/{id} and a small preview at /v1/photos/{id}/thumbnail; both
// carry no metadata (EXIF, GPS, XMP are stripped on upload).
type Photo struct {
	ID       string `json:"id"`
	TicketID string `json:"ticket_id"`
	// ContentType is what is served: image/jpeg, image/png, image/webp or
	// image/heic.
	ContentType string `json:"content_type"`
	Width       int    `json:"width,omitempty"`
	Height      int    `json:"height,omitempty"`
	Bytes       int64  `json:"bytes"`
	// Thumbnail is false where no thumbnail could be made (HEIC).
	Thumbnail bool `json:"thumbnail"`
	// Filename is the name the app sent, cleaned, for display only.
	Filename   string    `json:"filename,omitempty"`
	UploadedBy string    `json:"uploaded_by"`
	CreatedAt  time.Time `json:"created_at"`
	// Duplicate is true when the same bytes were already attached to this
	// ticket: the answer is that earlier photo, and no event was written.
	Duplicate bool `json:"duplicate,omitempty"`
}

// PhotoURL is a short-lived signed URL for a photo, usable without a
// bearer token (an <img> tag in the console).
type PhotoURL struct {
	URL          string    `json:"url"`
	ThumbnailURL string    `json:"thumbnail_url,omitempty"`
	ExpiresAt    time.Time `json:"expires_at"`
}

// Tus upload metadata keys (Upload-Metadata) the gateway reads.
const (
	UploadMetaTicketID = "ticket_id" // required: the ticket the photo goes to
	UploadMetaFilename = "filename"  // optional, for display only: never a path
	UploadMetaFiletype = "filetype"  // optional and ignored: the bytes decide
)

// HeaderPhotoID carries the stored photo's ID on the tus PATCH that
// completes an upload, and on HEAD of a completed upload.
const HeaderPhotoID = "Switchboard-Photo-Id"

// Problem codes of the media routes.
const (
	CodeInsufficientStorage = "insufficient-storage"
	CodeChecksumMismatch    = "checksum-mismatch"
	CodeUploadLocked        = "upload-locked"
	CodeTusVersion          = "tus-version-unsupported"
	CodeRangeNotSatisfiable = "range-not-satisfiable"
)
