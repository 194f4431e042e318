package api

import "fmt"

// ProblemContentType is the media type of RFC 9457 problem documents.
const ProblemContentType = "application/problem+json"

// ProblemTypeBase prefixes every problem type URI; the suffix is the Code.
const ProblemTypeBase = "https://switchboard.dev/problems/"

// Problem is an RFC 9457 problem document, the one shape of every error
// the gateway returns.
type Problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail,omitempty"`
	Instance string `json:"instance,omitempty"`
	// Code is the machine-readable reason, the last segment of Type.
	Code string `json:"code,omitempty"`
	// RequestID ties the answer to the gateway's log line.
	RequestID string `json:"request_id,omitempty"`
	// RetryAfter is set with 429 and 503: seconds to wait before retrying.
	RetryAfter int `json:"retry_after,omitempty"`
}

// Error makes a Problem usable as a Go error on the client side.
func (p *Problem) Error() string {
	if p.Detail != "" {
		return fmt.Sprintf("%d %s: %s", p.Status, p.Title, p.Detail)
	}
	return fmt.Sprintf("%d %s", p.Status, p.Title)
}

// Problem codes. Clients switch on these, never on Title or Detail.
const (
	CodeBadRequest          = "bad-request"
	CodeMalformedJSON       = "malformed-json"
	CodeValidation          = "validation"
	CodeUnauthorized        = "unauthorized"
	CodeTokenExpired        = "token-expired"
	CodeTokenReused         = "token-reused"
	CodeForbidden           = "forbidden"
	CodeNotFound            = "not-found"
	CodeMethodNotAllowed    = "method-not-allowed"
	CodeConflict            = "conflict"
	CodeIdempotencyMismatch = "idempotency-key-reused"
	CodeIdempotencyPending  = "idempotency-key-in-progress"
	CodeTooLarge            = "payload-too-large"
	CodeHeadersTooLarge     = "headers-too-large"
	CodeUnsupportedMedia    = "unsupported-media-type"
	CodeRateLimited         = "rate-limited"
	CodeTimeout             = "request-timeout"
	CodeUnavailable         = "unavailable"
	CodeInternal            = "internal"
)
