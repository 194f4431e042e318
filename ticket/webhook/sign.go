package webhook

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Standard Webhooks headers (standardwebhooks.com, the scheme Svix uses).
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// secretPrefix marks a Standard Webhooks secret: "whsec_" + base64 key.
const secretPrefix = "whsec_"

// Secret key sizes. The Standard Webhooks spec asks for 24 to 64 bytes;
// we generate 32, the size of an HMAC-SHA256 block's output.
const (
	minSecretBytes = 24
	maxSecretBytes = 64
	genSecretBytes = 32
)

// VerifyTolerance is how far a delivery's timestamp may be from the
// receiver's clock: the Standard Webhooks libraries' default of 5 minutes.
const VerifyTolerance = 5 * time.Minute

// ErrBadSignature: Verify found no matching signature, or the timestamp is
// missing or outside the tolerance.
var ErrBadSignature = errors.New("webhook: bad signature")

// newSecret returns a fresh secret in Standard Webhooks form.
func newSecret() string {
	b := make([]byte, genSecretBytes)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return secretPrefix + base64.StdEncoding.EncodeToString(b)
}

// secretKey decodes a "whsec_" secret into its HMAC key.
func secretKey(secret string) ([]byte, error) {
	rest, ok := strings.CutPrefix(secret, secretPrefix)
	if !ok {
		return nil, fmt.Errorf("%w: secret: want %q followed by base64", ErrInvalid, secretPrefix)
	}
	key, err := base64.StdEncoding.DecodeString(rest)
	if err != nil {
		return nil, fmt.Errorf("%w: secret: not valid base64 after %q", ErrInvalid, secretPrefix)
	}
	if len(key) < minSecretBytes || len(key) > maxSecretBytes {
		return nil, fmt.Errorf("%w: secret: want %d to %d bytes of key", ErrInvalid, minSecretBytes, maxSecretBytes)
	}
	return key, nil
}

// Sign returns the webhook-signature value for a message: "v1," and the
// base64 HMAC-SHA256 of "id.timestamp.body" under the secret's key.
func Sign(secret, id string, ts time.Time, body []byte) (string, error) {
	key, err := secretKey(secret)
	if err != nil {
		return "", err
	}
	return "v1," + signature(key, id, ts.Unix(), body), nil
}

func signature(key []byte, id string, ts int64, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write([]byte(strconv.FormatInt(ts, 10)))
	m.Write([]byte{'.'})
	m.Write(body)
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// Verify checks a delivery as a receiver would: one of the space-separated
// "v1,<sig>" values in webhook-signature must match, and webhook-timestamp
// must be within VerifyTolerance of now. It is for receivers written in Go
// and for tests; receivers elsewhere use a Standard Webhooks library.
func Verify(secret string, h http.Header, body []byte, now time.Time) error {
	key, err := secretKey(secret)
	if err != nil {
		return err
	}
	id, tsRaw, sigs := h.Get(HeaderID), h.Get(HeaderTimestamp), h.Get(HeaderSignature)
	if id == "" || tsRaw == "" || sigs == "" {
		return fmt.Errorf("%w: missing header", ErrBadSignature)
	}
	ts, err := strconv.ParseInt(tsRaw, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: bad timestamp", ErrBadSignature)
	}
	if d := now.Sub(time.Unix(ts, 0)); d > VerifyTolerance || d < -VerifyTolerance {
		return fmt.Errorf("%w: timestamp outside tolerance", ErrBadSignature)
	}
	want := []byte(signature(key, id, ts, body))
	for _, s := range strings.Fields(sigs) {
		ver, sig, ok := strings.Cut(s, ",")
		if ok && ver == "v1" && hmac.Equal([]byte(sig), want) {
			return nil
		}
	}
	return ErrBadSignature
}
