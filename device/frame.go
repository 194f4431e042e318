package device

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"hash"
	"math"
	"regexp"
	"time"

	"github.com/switchboard/switchboard/api"
)

// Bounds of one frame. An appliance reports tens of readings; the event
// payload that carries them is capped at 16 KiB by the ticket stream.
const (
	// MaxFrameBytes bounds a frame's JSON: 64 readings of ~40 bytes and 16
	// codes fit in 4 KiB with room to spare.
	MaxFrameBytes = 4 << 10
	// MaxReadings and MaxFaultCodes bound the lists of one frame.
	MaxReadings   = 64
	MaxFaultCodes = 16
	// MaxReading bounds any reading's magnitude when the model has no
	// range of its own: no sensor of an appliance reports beyond a
	// million of its unit, and the bound keeps NaN and 1e308 out.
	MaxReading = 1e6
	// maxFrameAge: the phone keeps frames while offline; a month covers a
	// holiday without coverage.
	maxFrameAge = 30 * 24 * time.Hour
	// maxFrameAhead tolerates an appliance clock running fast.
	maxFrameAhead = 5 * time.Minute
)

var (
	readingRe = regexp.MustCompile(`^[a-z][a-z0-9_.]{0,47}$`)
	faultRe   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$`)
	sigPrefix = []byte("sbframe1.")
	frameEnc  = base64.StdEncoding
)

// SignFrame encodes f and signs it with the appliance's secret, as the
// appliance does. The gateway only ever verifies; tests and simulators
// sign.
func SignFrame(secret []byte, f api.Frame) api.SignedFrame {
	raw, _ := json.Marshal(f)
	return api.SignedFrame{Frame: frameEnc.EncodeToString(raw), Sig: frameEnc.EncodeToString(frameMAC(secret, raw))}
}

func frameMAC(secret, raw []byte) []byte { return newMACer(secret).sum(raw) }

// macer computes one appliance's frame MACs. A batch shares one: HMAC's
// keyed pads are computed once, not once per frame (at tens of thousands
// of frames a second, that was two SHA-256 blocks and an allocation each).
type macer struct{ h hash.Hash }

func newMACer(secret []byte) *macer { return &macer{h: hmac.New(sha256.New, secret)} }

func (m *macer) sum(raw []byte) []byte {
	m.h.Reset()
	m.h.Write(sigPrefix)
	m.h.Write(raw)
	return m.h.Sum(nil)
}

// frameError is ErrBadFrame naming the frame and the rule.
func frameError(i int, format string, args ...any) error {
	return fmt.Errorf("%w: frames[%d]: %s", ErrBadFrame, i, fmt.Sprintf(format, args...))
}

// ParseFrame checks a signed frame's encoding and signature with secret,
// then its content (serial, time, readings within ranges), and returns it.
// The signature is checked before the JSON is parsed, so an unsigned
// frame costs one HMAC and never reaches the parser.
func ParseFrame(secret []byte, serial string, sf api.SignedFrame, ranges map[string][2]float64, now time.Time) (api.Frame, error) {
	return parseFrame(0, newMACer(secret), serial, sf, ranges, now)
}

func parseFrame(i int, mac *macer, serial string, sf api.SignedFrame, ranges map[string][2]float64, now time.Time) (api.Frame, error) {
	var f api.Frame
	if len(sf.Frame) > frameEnc.EncodedLen(MaxFrameBytes) {
		return f, frameError(i, "larger than %d bytes", MaxFrameBytes)
	}
	raw, err := frameEnc.DecodeString(sf.Frame)
	if err != nil {
		return f, frameError(i, "frame is not base64")
	}
	sig, err := frameEnc.DecodeString(sf.Sig)
	if err != nil || len(sig) != sha256.Size {
		return f, frameError(i, "sig is not a base64 HMAC-SHA256")
	}
	if !hmac.Equal(sig, mac.sum(raw)) {
		return f, frameError(i, "signature does not verify")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil || dec.More() {
		return f, frameError(i, "frame is not one JSON object of the frame format")
	}
	if f.Serial != serial {
		return f, frameError(i, "frame is for another appliance")
	}
	if f.Seq == 0 {
		return f, frameError(i, "seq must be positive")
	}
	if f.At.IsZero() || f.At.Before(now.Add(-maxFrameAge)) || f.At.After(now.Add(maxFrameAhead)) {
		return f, frameError(i, "at must be within the last 30 days")
	}
	f.At = f.At.UTC()
	if len(f.Readings) > MaxReadings {
		return f, frameError(i, "more than %d readings", MaxReadings)
	}
	for k, v := range f.Readings {
		if !readingRe.MatchString(k) {
			return f, frameError(i, "reading name %q is malformed", truncate(k, 48))
		}
		lo, hi := -MaxReading, MaxReading
		if r, ok := ranges[k]; ok {
			lo, hi = r[0], r[1]
		}
		if math.IsNaN(v) || v < lo || v > hi {
			return f, frameError(i, "reading %s is out of range [%g, %g]", k, lo, hi)
		}
	}
	if len(f.FaultCodes) > MaxFaultCodes {
		return f, frameError(i, "more than %d fault codes", MaxFaultCodes)
	}
	for _, c := range f.FaultCodes {
		if !faultRe.MatchString(c) {
			return f, frameError(i, "fault code %q is malformed", truncate(c, 32))
		}
	}
	return f, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
