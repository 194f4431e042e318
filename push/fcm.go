package push

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	firebase "firebase.google.com/go/v4"
	"firebase.google.com/go/v4/errorutils"
	"firebase.google.com/go/v4/messaging"
	"google.golang.org/api/option"
)

// fcmBatch is the most messages one SendEach call takes (the SDK's
// limit, which matches FCM's old batch API).
const fcmBatch = 500

// FCMConfig configures the FCM sender.
type FCMConfig struct {
	// CredentialsFile is a service-account JSON key file. Required.
	CredentialsFile string
	// ProjectID overrides the key file's project_id. Empty means the file's.
	ProjectID string
	// Endpoint overrides https://fcm.googleapis.com/v1 (tests, private
	// deployments with an FCM-compatible gateway). Empty means Google.
	Endpoint string
	// HTTPClient is not settable: the SDK builds its own authenticated
	// client from the credentials. MaxConns bounds its idle connections
	// per host; zero means 100 (the SDK sends up to 50 at once per batch).
	MaxConns int
}

// FCM sends through the Firebase Admin SDK (FCM HTTP v1). The SDK retries
// 503 and network errors itself (up to 4 times, honouring Retry-After);
// everything else comes back to the outbox.
type FCM struct {
	client *messaging.Client
}

// NewFCM builds the sender. It reads the key file but calls nothing: the
// OAuth2 token exchange happens on the first send.
func NewFCM(ctx context.Context, cfg FCMConfig) (*FCM, error) {
	if cfg.CredentialsFile == "" {
		return nil, errors.New("push: FCM needs a service-account credentials file")
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = 100
	}
	opts := []option.ClientOption{option.WithCredentialsFile(cfg.CredentialsFile)}
	if cfg.Endpoint != "" {
		opts = append(opts, option.WithEndpoint(cfg.Endpoint))
	}
	var fc *firebase.Config
	if cfg.ProjectID != "" {
		fc = &firebase.Config{ProjectID: cfg.ProjectID}
	}
	app, err := firebase.NewApp(ctx, fc, opts...)
	if err != nil {
		return nil, fmt.Errorf("push: firebase app: %w", err)
	}
	mc, err := app.Messaging(ctx)
	if err != nil {
		return nil, fmt.Errorf("push: firebase messaging: %w", err)
	}
	return &FCM{client: mc}, nil
}

// Send sends msgs with SendEach, in batches of up to 500 run side by side.
func (f *FCM) Send(ctx context.Context, msgs []*Message) []Result {
	out := make([]Result, len(msgs))
	var wg sync.WaitGroup
	for lo := 0; lo < len(msgs); lo += fcmBatch {
		hi := min(lo+fcmBatch, len(msgs))
		wg.Go(func() { f.sendBatch(ctx, msgs[lo:hi], out[lo:hi]) })
	}
	wg.Wait()
	return out
}

func (f *FCM) sendBatch(ctx context.Context, msgs []*Message, out []Result) {
	fm := make([]*messaging.Message, len(msgs))
	for i, m := range msgs {
		fm[i] = fcmMessage(m)
	}
	br, err := f.client.SendEach(ctx, fm)
	if err != nil {
		// SendEach fails as a whole only when it refuses a message before
		// sending (validation): that will not get better by retrying.
		for i := range out {
			out[i] = Result{Outcome: Failed, Reason: "fcm: " + clip(err.Error(), 200)}
		}
		return
	}
	now := time.Now()
	for i, r := range br.Responses {
		if r.Success {
			out[i] = Result{Outcome: Delivered}
			continue
		}
		out[i] = classifyFCM(r.Error, now)
	}
}

// classifyFCM maps an SDK error onto what the outbox does next (FCM's
// "Best practices for FCM registration token management" and error code
// table).
func classifyFCM(err error, now time.Time) Result {
	var ra time.Duration
	status := 0
	if res := errorutils.HTTPResponse(err); res != nil {
		status = res.StatusCode
		ra = retryAfter(res.Header, now)
	}
	code := "fcm " + strconv.Itoa(status)
	switch {
	case messaging.IsUnregistered(err):
		return Result{Outcome: Gone, Reason: "UNREGISTERED"}
	case messaging.IsSenderIDMismatch(err):
		return Result{Outcome: Gone, Reason: "SENDER_ID_MISMATCH"}
	case messaging.IsInvalidArgument(err) && mentionsToken(err):
		// INVALID_ARGUMENT also covers a bad payload, which is our bug
		// and must not cost the user their device: only a complaint
		// about the token prunes it.
		return Result{Outcome: Gone, Reason: "INVALID_ARGUMENT (token)"}
	case messaging.IsQuotaExceeded(err):
		return Result{Outcome: Retry, RetryAfter: ra, Reason: "QUOTA_EXCEEDED"}
	case messaging.IsUnavailable(err):
		return Result{Outcome: Retry, RetryAfter: ra, Reason: "UNAVAILABLE"}
	case messaging.IsInternal(err):
		return Result{Outcome: Retry, RetryAfter: ra, Reason: "INTERNAL"}
	case status == http.StatusTooManyRequests || status >= 500:
		return Result{Outcome: Retry, RetryAfter: ra, Reason: code}
	case status == 0:
		return Result{Outcome: Retry, Reason: "fcm: no answer"} // network: the SDK already retried
	case errorutils.IsUnauthenticated(err) || errorutils.IsPermissionDenied(err):
		// Our credentials, not the device: retry (an operator may fix
		// them) and let the attempts run out into the dead letters.
		return Result{Outcome: Retry, RetryAfter: ra, Reason: code + " (credentials)"}
	}
	return Result{Outcome: Failed, Reason: code}
}

func mentionsToken(err error) bool {
	return strings.Contains(strings.ToLower(err.Error()), "registration token")
}

// fcmMessage builds the FCM v1 message: notification block and data for
// the app, Android and APNs options for priority, collapsing and TTL.
func fcmMessage(m *Message) *messaging.Message {
	fm := &messaging.Message{Token: m.Device.Token, Data: m.Data}
	ttl := m.TTL
	android := &messaging.AndroidConfig{CollapseKey: m.CollapseKey, TTL: &ttl, Priority: "normal"}
	apnsHeaders := map[string]string{
		// APNs: seconds since epoch after which it is dropped.
		"apns-expiration": strconv.FormatInt(time.Now().Add(m.TTL).Unix(), 10),
		"apns-priority":   "5",
	}
	if m.CollapseKey != "" {
		apnsHeaders["apns-collapse-id"] = m.CollapseKey
	}
	aps := &messaging.Aps{Category: m.Category, ThreadID: m.Data["ticket_id"]}
	if m.High {
		android.Priority = "high"
		apnsHeaders["apns-priority"] = "10"
	}
	if m.DataOnly {
		// The app shows its own full-screen UI: no notification block.
		// On iOS a background push wakes the app (content-available);
		// Apple requires priority 5 for those. A true ring on a locked
		// iPhone needs a PushKit VoIP push, which FCM does not carry.
		aps.ContentAvailable = true
		apnsHeaders["apns-push-type"] = "background"
		apnsHeaders["apns-priority"] = "5"
	} else {
		fm.Notification = &messaging.Notification{Title: m.Title, Body: m.Body}
		android.Notification = &messaging.AndroidNotification{ClickAction: m.Category, Tag: m.CollapseKey}
		aps.Sound = "default"
		apnsHeaders["apns-push-type"] = "alert"
	}
	fm.Android = android
	fm.APNS = &messaging.APNSConfig{Headers: apnsHeaders, Payload: &messaging.APNSPayload{Aps: aps}}
	return fm
}
