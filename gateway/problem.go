package gateway

import (
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/push"
	"github.com/switchboard/switchboard/state"
	"github.com/switchboard/switchboard/ticket"
	"github.com/switchboard/switchboard/ticket/webhook"
)

// problemError is an error that already knows its problem document.
type problemError struct {
	status     int
	code       string
	detail     string
	retryAfter int
}

func (e *problemError) Error() string { return e.code + ": " + e.detail }

// doc is the problem document of e, for answers that are not an HTTP
// response (WebSocket replies): no request ID, no headers.
func (e *problemError) doc() *api.Problem {
	return &api.Problem{Type: api.ProblemTypeBase + e.code, Title: statusTitle(e.status), Status: e.status,
		Detail: e.detail, Code: e.code, RetryAfter: e.retryAfter}
}

// problem returns an error rendered as an RFC 9457 document.
func problem(status int, code, detail string) error {
	return &problemError{status: status, code: code, detail: detail}
}

// fiberCodes maps the errors Fiber and fasthttp raise themselves (routing,
// body limits, header limits, timeouts) onto our codes.
var fiberCodes = map[int]string{
	http.StatusBadRequest:                  api.CodeBadRequest,
	http.StatusNotFound:                    api.CodeNotFound,
	http.StatusMethodNotAllowed:            api.CodeMethodNotAllowed,
	http.StatusRequestTimeout:              api.CodeTimeout,
	http.StatusRequestEntityTooLarge:       api.CodeTooLarge,
	http.StatusUnsupportedMediaType:        api.CodeUnsupportedMedia,
	http.StatusRequestHeaderFieldsTooLarge: api.CodeHeadersTooLarge,
	http.StatusTooManyRequests:             api.CodeRateLimited,
	http.StatusServiceUnavailable:          api.CodeUnavailable,
}

// toProblem is the one place that turns an error into what the client sees.
// Internal messages never leave it: unknown errors become a bare 500.
func toProblem(err error) (p *problemError, internal bool) {
	if p, ok := mediaProblem(err); ok {
		return p, false
	}
	if p := locationProblem(err); p != nil {
		return p, false
	}
	var pe *problemError
	var fe *fiber.Error
	switch {
	case errors.As(err, &pe):
		return pe, false
	case errors.As(err, &fe):
		code, ok := fiberCodes[fe.Code]
		if !ok {
			break
		}
		detail := ""
		switch fe.Code {
		case http.StatusNotFound:
			detail = "no such route"
		case http.StatusMethodNotAllowed:
			detail = "this route does not accept that method"
		case http.StatusRequestEntityTooLarge:
			detail = "the request body is larger than this route accepts"
		case http.StatusRequestHeaderFieldsTooLarge:
			detail = "the request headers are larger than the server accepts"
		}
		return &problemError{status: fe.Code, code: code, detail: detail}, false
	case errors.Is(err, auth.ErrExpired):
		return &problemError{status: 401, code: api.CodeTokenExpired, detail: "the token has expired"}, false
	case errors.Is(err, auth.ErrTokenReused):
		return &problemError{status: 401, code: api.CodeTokenReused, detail: "this refresh token was already used; its family is revoked, sign in again"}, false
	case errors.Is(err, auth.ErrInvalidToken):
		return &problemError{status: 401, code: api.CodeUnauthorized, detail: "the token is not valid"}, false
	case errors.Is(err, ticket.ErrNotFound):
		return &problemError{status: 404, code: api.CodeNotFound, detail: "no such ticket or customer"}, false
	case errors.Is(err, ticket.ErrInvalid):
		return &problemError{status: 422, code: api.CodeValidation, detail: domainDetail(err)}, false
	case errors.Is(err, ticket.ErrForbidden):
		return &problemError{status: 403, code: api.CodeForbidden, detail: domainDetail(err)}, false
	case errors.Is(err, ticket.ErrConflict):
		return &problemError{status: 409, code: api.CodeConflict, detail: "changed concurrently; retry"}, false
	case errors.Is(err, ticket.ErrBadSignature):
		return &problemError{status: 401, code: api.CodeUnauthorized, detail: domainDetail(err)}, false
	case errors.Is(err, ticket.ErrReplayed):
		return &problemError{status: 409, code: api.CodeConflict, detail: "this signed request was already received"}, false
	case errors.Is(err, webhook.ErrNotFound):
		return &problemError{status: 404, code: api.CodeNotFound, detail: "no such webhook or dead letter"}, false
	case errors.Is(err, webhook.ErrInvalid), errors.Is(err, webhook.ErrForbiddenTarget):
		return &problemError{status: 422, code: api.CodeValidation, detail: domainDetail(err)}, false
	case errors.Is(err, webhook.ErrConflict):
		return &problemError{status: 409, code: api.CodeConflict, detail: domainDetail(err)}, false
	case errors.Is(err, push.ErrNotFound):
		return &problemError{status: 404, code: api.CodeNotFound, detail: "no such device"}, false
	case errors.Is(err, push.ErrInvalid):
		return &problemError{status: 422, code: api.CodeValidation, detail: pushDetail(err)}, false
	case errors.Is(err, push.ErrTooManyDevices), errors.Is(err, push.ErrConflict):
		return &problemError{status: 409, code: api.CodeConflict, detail: pushDetail(err)}, false
	case errors.Is(err, state.ErrNotFound):
		return &problemError{status: 404, code: api.CodeNotFound, detail: "not found"}, false
	}
	if p := deviceProblem(err); p != nil {
		return p, false
	}
	if p := rtcProblem(err); p != nil {
		return p, false
	}
	return &problemError{status: 500, code: api.CodeInternal, detail: "the server failed; the request ID identifies it in the logs"}, true
}

// domainDetail is a domain error's message without its package prefix.
// Domain Err* values are written to be shown: they name the field and the
// rule, never internals.
func domainDetail(err error) string {
	msg := strings.TrimPrefix(strings.TrimPrefix(err.Error(), "ticket: "), "webhook: ")
	if _, rest, ok := strings.Cut(msg, ": "); ok {
		return rest
	}
	return msg
}

// errorHandler renders every error, ours and Fiber's, as problem JSON.
func errorHandler(log *slog.Logger) fiber.ErrorHandler {
	return func(c *fiber.Ctx, err error) error {
		p, internal := toProblem(err)
		rid := requestID(c)
		if rid == "" {
			// fasthttp's own errors (431, 408, 413 while reading) arrive
			// before any middleware ran.
			rid = newRequestID()
			c.Set(headerRequestID, rid)
		}
		if internal {
			log.Error("request failed", "request_id", rid, "method", c.Method(), "path", c.Path(), "err", err)
		}
		doc := api.Problem{
			Type:      api.ProblemTypeBase + p.code,
			Title:     statusTitle(p.status),
			Status:    p.status,
			Detail:    p.detail,
			Code:      p.code,
			RequestID: rid,
		}
		if p.retryAfter > 0 {
			doc.RetryAfter = p.retryAfter
			c.Set(fiber.HeaderRetryAfter, strconv.Itoa(p.retryAfter))
		}
		if p.status == http.StatusUnauthorized {
			c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="switchboard"`)
		}
		c.Status(p.status)
		c.Set(fiber.HeaderContentType, api.ProblemContentType)
		return c.JSON(doc, api.ProblemContentType)
	}
}
