package push_test

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	webpush "github.com/SherClockHolmes/webpush-go"
	"github.com/golang-jwt/jwt/v5"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/internal/poll"
	"github.com/switchboard/switchboard/push"
)

// browser is a local push service plus the browser behind it: it checks
// the VAPID JWT (RFC 8292) and decrypts the aes128gcm body (RFC 8188,
// RFC 8291) with the subscription's private key and auth secret.
type browser struct {
	priv    *ecdh.PrivateKey
	authKey []byte
	srv     *httptest.Server
	vapid   string // application server public key, base64url
	status  int

	mu  sync.Mutex
	got []map[string]any
	hdr []http.Header
}

func newBrowser(t *testing.T, vapidPub string) *browser {
	b := &browser{vapid: vapidPub, status: 201, authKey: make([]byte, 16)}
	b.priv, _ = ecdh.P256().GenerateKey(rand.Reader)
	_, _ = rand.Read(b.authKey)
	b.srv = httptest.NewServer(http.HandlerFunc(b.receive))
	t.Cleanup(b.srv.Close)
	return b
}

func (b *browser) subscription() *api.WebPushSubscription {
	s := &api.WebPushSubscription{Endpoint: b.srv.URL + "/push/abc123def456"}
	s.Keys.P256DH = base64.RawURLEncoding.EncodeToString(b.priv.PublicKey().Bytes())
	s.Keys.Auth = base64.RawURLEncoding.EncodeToString(b.authKey)
	return s
}

func (b *browser) receive(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if err := b.checkVAPID(r); err != nil {
		http.Error(w, err.Error(), 401)
		return
	}
	if r.Header.Get("Content-Encoding") != "aes128gcm" {
		http.Error(w, "encoding", 415)
		return
	}
	plain, err := b.decrypt(body)
	if err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	var m map[string]any
	if err := json.Unmarshal(plain, &m); err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	b.mu.Lock()
	b.got = append(b.got, m)
	b.hdr = append(b.hdr, r.Header.Clone())
	status := b.status
	b.mu.Unlock()
	w.WriteHeader(status)
}

func (b *browser) checkVAPID(r *http.Request) error {
	h := r.Header.Get("Authorization")
	if !strings.HasPrefix(h, "vapid t=") {
		return fmt.Errorf("no vapid")
	}
	tok, k, _ := strings.Cut(strings.TrimPrefix(h, "vapid t="), ", k=")
	if k != b.vapid {
		return fmt.Errorf("wrong k")
	}
	raw, err := base64.RawURLEncoding.DecodeString(k)
	if err != nil || len(raw) != 65 {
		return fmt.Errorf("bad k")
	}
	pub := &ecdsa.PublicKey{Curve: elliptic.P256(), X: new(big.Int).SetBytes(raw[1:33]), Y: new(big.Int).SetBytes(raw[33:])}
	_, err = jwt.Parse(tok, func(*jwt.Token) (any, error) { return pub, nil }, jwt.WithValidMethods([]string{"ES256"}),
		jwt.WithAudience(b.srv.URL), jwt.WithExpirationRequired())
	return err
}

// decrypt is RFC 8291 section 3.4 and RFC 8188 section 2.
func (b *browser) decrypt(body []byte) ([]byte, error) {
	if len(body) < 21 {
		return nil, fmt.Errorf("short")
	}
	salt, idlen := body[:16], int(body[20])
	_ = binary.BigEndian.Uint32(body[16:20])
	asPub, ct := body[21:21+idlen], body[21+idlen:]
	pk, err := ecdh.P256().NewPublicKey(asPub)
	if err != nil {
		return nil, err
	}
	secret, err := b.priv.ECDH(pk)
	if err != nil {
		return nil, err
	}
	info := append(append([]byte("WebPush: info\x00"), b.priv.PublicKey().Bytes()...), asPub...)
	ikm, err := hkdf.Key(sha256.New, secret, b.authKey, string(info), 32)
	if err != nil {
		return nil, err
	}
	prk, _ := hkdf.Extract(sha256.New, ikm, salt)
	cek, _ := hkdf.Expand(sha256.New, prk, "Content-Encoding: aes128gcm\x00", 16)
	nonce, _ := hkdf.Expand(sha256.New, prk, "Content-Encoding: nonce\x00", 12)
	blk, _ := aes.NewCipher(cek)
	gcm, _ := cipher.NewGCM(blk)
	plain, err := gcm.Open(nil, nonce, ct, nil)
	if err != nil {
		return nil, err
	}
	i := len(plain) - 1
	for i >= 0 && plain[i] == 0 {
		i--
	}
	if i < 0 || plain[i] != 2 {
		return nil, fmt.Errorf("bad padding delimiter")
	}
	return plain[:i], nil
}

func TestWebPushToConsole(t *testing.T) {
	priv, pub, err := webpush.GenerateVAPIDKeys()
	if err != nil {
		t.Fatal(err)
	}
	br := newBrowser(t, pub)
	wp, err := push.NewWebPush(push.WebPushConfig{VAPIDPublicKey: pub, VAPIDPrivateKey: priv, Subject: "mailto:ops@example.com", AllowPrivate: true})
	if err != nil {
		t.Fatal(err)
	}
	r := newRig(t, fastRetries)
	cfg := fastRetries
	cfg.AllowInsecureWebPush = true
	r.cfg = cfg
	r.svc = push.New(r.store, cfg, push.WithWebPush(wp))
	r.start()
	ctx := context.Background()
	if _, err := r.svc.Register(ctx, "agent-1", "console-1", api.DeviceRegistration{Platform: api.PlatformWeb, Subscription: br.subscription(), Locale: "es"}); err != nil {
		t.Fatal(err)
	}
	if err := r.svc.Enqueue(ctx, push.Notification{Kind: push.KindCallMissed, Recipient: "agent-1", TicketID: "tk_9"}); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 20*time.Second, 10*time.Millisecond, func() error {
		br.mu.Lock()
		defer br.mu.Unlock()
		if len(br.got) != 1 {
			return fmt.Errorf("browser got %d", len(br.got))
		}
		return nil
	})
	br.mu.Lock()
	m, h := br.got[0], br.hdr[0]
	br.status = 410 // the browser unsubscribed
	br.mu.Unlock()
	if m["title"] != "Llamada perdida" || m["data"].(map[string]any)["link"] != "switchboard://tickets/tk_9" {
		t.Fatalf("payload %v", m)
	}
	if h.Get("Urgency") != "high" || h.Get("Topic") != "call-tk_9" || h.Get("TTL") != "86400" {
		t.Fatalf("headers %v", h)
	}
	// A 410 prunes the subscription.
	if err := r.svc.Enqueue(ctx, push.Notification{Kind: push.KindCallMissed, Recipient: "agent-1", TicketID: "tk_9"}); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 20*time.Second, 10*time.Millisecond, func() error {
		l, err := r.svc.Devices(ctx, "agent-1")
		if err != nil || len(l.Devices) != 0 {
			return fmt.Errorf("still %v %v", l, err)
		}
		return nil
	})
}
