package device

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"time"
)

// Pairing codes are RFC 6238 TOTP with HMAC-SHA256, 8 decimal digits, over
// a 60-second step: the appliance computes one from its secret and its
// clock and shows it; the server recomputes it, so the appliance need not
// be online. Digits because every appliance display can show them and
// every phone keypad types them; 60 s rather than RFC 6238's 30 s because
// a person reads the code off a panel and types it on a phone.
//
// The message is a purpose label and the step, so a pairing code, a
// factory-reset code and an MQTT password never coincide.
const (
	CodeDigits = 8
	CodeStep   = 60 * time.Second
	// codeSkew: steps either side of now that are accepted, for clock
	// drift and typing time (RFC 6238 §5.2 recommends at most one).
	codeSkew = 1
	// codeExpiredSteps: a code that was valid up to this many steps ago is
	// reported expired (410) rather than wrong, so the user knows to read
	// the new one.
	codeExpiredSteps = 10
)

// Purposes of derived codes.
const (
	purposePair  = "sbpair1"
	purposeReset = "sbreset1"
)

// PairingCode returns the code the appliance with secret shows at t. With
// reset it is the code a freshly factory-reset appliance shows, which also
// takes it away from a previous owner.
func PairingCode(secret []byte, t time.Time, reset bool) string {
	p := purposePair
	if reset {
		p = purposeReset
	}
	return codeAt(secret, p, stepOf(t))
}

func stepOf(t time.Time) int64 { return t.Unix() / int64(CodeStep/time.Second) }

func codeAt(secret []byte, purpose string, step int64) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(purpose))
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(step))
	m.Write(b[:])
	sum := m.Sum(nil)
	// Dynamic truncation, RFC 4226 §5.3.
	off := sum[len(sum)-1] & 0x0f
	v := binary.BigEndian.Uint32(sum[off:off+4]) & 0x7fffffff
	return fmt.Sprintf("%0*d", CodeDigits, v%100_000_000)
}

// MQTTPassword is the MQTT password of the appliance with secret (its MQTT
// username is its serial): derived, so the factory provisions one secret.
func MQTTPassword(secret []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("sbmqtt1"))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// validCode reports whether code has the shape of a pairing code, before
// any HMAC is computed for it.
func validCode(code string) bool {
	if len(code) != CodeDigits {
		return false
	}
	for i := 0; i < len(code); i++ {
		if code[i] < '0' || code[i] > '9' {
			return false
		}
	}
	return true
}

// matchCode finds the step code was valid at: ok for a current code,
// expired for one valid in the last codeExpiredSteps steps.
func matchCode(secret []byte, purpose, code string, now time.Time) (step int64, ok, expired bool) {
	cur := stepOf(now)
	for d := int64(-codeSkew); d <= codeSkew; d++ {
		if hmac.Equal([]byte(codeAt(secret, purpose, cur+d)), []byte(code)) {
			return cur + d, true, false
		}
	}
	for d := int64(codeSkew + 1); d <= codeExpiredSteps; d++ {
		if hmac.Equal([]byte(codeAt(secret, purpose, cur-d)), []byte(code)) {
			return cur - d, false, true
		}
	}
	return 0, false, false
}
