package media

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/switchboard/switchboard/ticket"
)

// stURLKey holds the HMAC key of signed photo URLs on the state seam, so
// every node signs and verifies with the same one. It is made once, by
// whichever node first needs it (SetNX), and never logged.
const stURLKey = "media:url-key"

// urlKey caches the signing key after its first load.
type urlKey struct {
	mu  sync.Mutex
	key []byte
}

func (s *Service) signingKey(ctx context.Context) ([]byte, error) {
	s.key.mu.Lock()
	defer s.key.mu.Unlock()
	if s.key.key != nil {
		return s.key.key, nil
	}
	fresh := make([]byte, 32)
	_, _ = rand.Read(fresh)
	if _, err := s.st.SetNX(ctx, stURLKey, fresh, 0); err != nil {
		return nil, err
	}
	k, err := s.st.Get(ctx, stURLKey)
	if err != nil {
		return nil, err
	}
	s.key.key = k
	return k, nil
}

func mac(key []byte, id string, thumb bool, exp string) []byte {
	m := hmac.New(sha256.New, key)
	variant := "f"
	if thumb {
		variant = "t"
	}
	m.Write([]byte("photo\x00" + id + "\x00" + variant + "\x00" + exp))
	return m.Sum(nil)
}

// Signed is a signed URL's query: exp (Unix seconds) and sig.
type Signed struct {
	Exp       time.Time
	ExpParam  string
	Sig       string
	ThumbSig  string
	Thumbnail bool
}

// Sign returns signatures for photo id and its thumbnail, valid for
// URLTTL, if v may see the photo.
func (s *Service) Sign(ctx context.Context, v ticket.Viewer, id string) (Signed, error) {
	rec, err := s.visible(ctx, v, id)
	if err != nil {
		return Signed{}, err
	}
	key, err := s.signingKey(ctx)
	if err != nil {
		return Signed{}, err
	}
	exp := s.now().Add(s.cfg.URLTTL).Truncate(time.Second)
	e := strconv.FormatInt(exp.Unix(), 10)
	out := Signed{Exp: exp.UTC(), ExpParam: e, Sig: base64.RawURLEncoding.EncodeToString(mac(key, id, false, e)), Thumbnail: rec.Thumbnail}
	if rec.Thumbnail {
		out.ThumbSig = base64.RawURLEncoding.EncodeToString(mac(key, id, true, e))
	}
	return out, nil
}

// verify checks a signed URL: the MAC in constant time, then the expiry,
// which must also lie within URLTTL from now (a signature minted with a
// longer lifetime by a misconfigured node is not honoured).
func (s *Service) verify(ctx context.Context, id string, thumb bool, exp, sig string) error {
	if len(exp) > 20 || len(sig) > 64 || len(id) > maxPhotoID {
		return ErrBadSignature
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil {
		return ErrBadSignature
	}
	key, err := s.signingKey(ctx)
	if err != nil {
		return err
	}
	if !hmac.Equal(got, mac(key, id, thumb, exp)) {
		return ErrBadSignature
	}
	sec, err := strconv.ParseInt(exp, 10, 64)
	if err != nil {
		return ErrBadSignature
	}
	now := s.now()
	if at := time.Unix(sec, 0); !at.After(now) || at.After(now.Add(s.cfg.URLTTL+time.Minute)) {
		return errors.Join(ErrBadSignature, errors.New("expired"))
	}
	return nil
}
