package push

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"syscall"
	"time"

	webpush "github.com/SherClockHolmes/webpush-go"
)

// WebPushConfig configures Web Push (RFC 8030) with VAPID (RFC 8292).
type WebPushConfig struct {
	// VAPIDPublicKey and VAPIDPrivateKey are the application server's
	// keys, base64url (webpush.GenerateVAPIDKeys makes a pair). Required.
	VAPIDPublicKey, VAPIDPrivateKey string
	// Subject is the VAPID "sub": a mailto: or https: contact for the push
	// service's operators. Required by Mozilla's and Apple's services.
	Subject string
	// AllowPrivate lets endpoints resolve to loopback and private
	// addresses (tests). Off, the sender refuses them: the endpoint comes
	// from a browser, and must not make us POST into our own network.
	AllowPrivate bool
	// Timeout bounds one send. Zero means 15s.
	Timeout time.Duration
	// Concurrency bounds sends in flight. Zero means 64.
	Concurrency int
}

// WebPush sends to browsers' push services.
type WebPush struct {
	cfg    WebPushConfig
	client *http.Client
}

// NewWebPush builds the sender.
func NewWebPush(cfg WebPushConfig) (*WebPush, error) {
	if cfg.VAPIDPublicKey == "" || cfg.VAPIDPrivateKey == "" || cfg.Subject == "" {
		return nil, errors.New("push: Web Push needs VAPID public and private keys and a subject")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 15 * time.Second
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 64
	}
	d := &net.Dialer{Timeout: cfg.Timeout}
	if !cfg.AllowPrivate {
		d.Control = refusePrivate
	}
	tr := &http.Transport{
		Proxy:                 nil, // the guard checks the address dialled, which a proxy would hide
		DialContext:           d.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConnsPerHost:   cfg.Concurrency,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   cfg.Timeout,
		ResponseHeaderTimeout: cfg.Timeout,
	}
	return &WebPush{cfg: cfg, client: &http.Client{Transport: tr, Timeout: cfg.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}, nil
}

// refusePrivate refuses to dial loopback, private, link-local and
// unspecified addresses, after DNS resolution (so a name pointing inside
// is caught too).
func refusePrivate(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	ip := net.ParseIP(host)
	if ip == nil || ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsUnspecified() || ip.IsMulticast() {
		return fmt.Errorf("push: web push endpoint address %s not allowed", host)
	}
	return nil
}

// webPayload is what the service worker receives (decrypted) in its push
// event.
type webPayload struct {
	Title string            `json:"title,omitempty"`
	Body  string            `json:"body,omitempty"`
	Data  map[string]string `json:"data,omitempty"`
}

// Send posts each message, Concurrency at a time.
func (w *WebPush) Send(ctx context.Context, msgs []*Message) []Result {
	out := make([]Result, len(msgs))
	sem := make(chan struct{}, w.cfg.Concurrency)
	var wg sync.WaitGroup
	for i, m := range msgs {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			out[i] = w.send(ctx, m)
		})
	}
	wg.Wait()
	return out
}

func (w *WebPush) send(ctx context.Context, m *Message) Result {
	body, err := json.Marshal(webPayload{Title: m.Title, Body: m.Body, Data: m.Data})
	if err != nil {
		return Result{Outcome: Failed, Reason: "webpush: encode"}
	}
	sub := m.Device.Subscription
	urgency := webpush.UrgencyNormal
	if m.High {
		urgency = webpush.UrgencyHigh
	}
	res, err := webpush.SendNotificationWithContext(ctx, body, &webpush.Subscription{
		Endpoint: sub.Endpoint, Keys: webpush.Keys{Auth: sub.Keys.Auth, P256dh: sub.Keys.P256DH},
	}, &webpush.Options{
		HTTPClient:      w.client,
		Subscriber:      w.cfg.Subject,
		Topic:           topic(m.CollapseKey),
		TTL:             int(m.TTL / time.Second),
		Urgency:         urgency,
		VAPIDPublicKey:  w.cfg.VAPIDPublicKey,
		VAPIDPrivateKey: w.cfg.VAPIDPrivateKey,
	})
	if err != nil {
		// Never the error text: it may carry the endpoint URL.
		return Result{Outcome: Retry, Reason: "webpush: no answer"}
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
	_ = res.Body.Close()
	reason := "webpush " + strconv.Itoa(res.StatusCode)
	switch s := res.StatusCode; {
	case s >= 200 && s < 300:
		return Result{Outcome: Delivered}
	case s == http.StatusNotFound || s == http.StatusGone:
		// RFC 8030 section 7.3: the subscription expired or was removed.
		return Result{Outcome: Gone, Reason: reason}
	case s == http.StatusTooManyRequests || s >= 500:
		return Result{Outcome: Retry, RetryAfter: retryAfter(res.Header, time.Now()), Reason: reason}
	}
	return Result{Outcome: Failed, Reason: reason}
}

// topic makes a collapse key a valid Topic header: RFC 8030 section 5.4
// allows at most 32 characters of the base64url alphabet.
func topic(key string) string {
	b := make([]byte, 0, 32)
	for i := 0; i < len(key) && len(b) < 32; i++ {
		c := key[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' {
			b = append(b, c)
		}
	}
	return string(b)
}
