package rtc

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"net/netip"
	"sync"
	"time"

	"github.com/pion/dtls/v3/pkg/crypto/prf"
	"github.com/pion/dtls/v3/pkg/protocol/extension"
	"github.com/pion/dtls/v3/pkg/protocol/handshake"
	"github.com/pion/dtls/v3/pkg/protocol/recordlayer"
	"github.com/pion/srtp/v3"
)

// keyring recovers the SRTP keys of the relay's DTLS sessions, so the
// fast path (fastpath.go) can decrypt and encrypt RTP itself instead of
// handing every packet through pion's goroutines. pion keeps the keys to
// itself; what it does give is the DTLS master secret, through its key
// log (SettingEngine.SetDTLSKeyLogWriter, which writes to keyring.Write),
// and the hellos cross the relay's socket in the clear. From the two the
// keys follow as RFC 5764 section 4.2 derives them, the way pion's own
// dtls.State.ExportKeyingMaterial does.
//
// The secrets stay in memory, are used once and then dropped, and every
// table here is bounded: a flood of forged hellos costs the fast path,
// never memory, and a session the keyring cannot key falls back to pion.
type keyring struct {
	mu      sync.Mutex
	secrets map[[32]byte]secret        // by client random
	hellos  map[netip.AddrPort]*hellos // by the peer's address
}

type secret struct {
	master []byte
	at     time.Time
}

// hellos is what the relay saw of one DTLS handshake with a peer.
type hellos struct {
	client, server [32]byte
	haveClient     bool
	haveServer     bool
	localIsClient  bool
	suite          uint16
	profile        srtp.ProtectionProfile
	at             time.Time
}

const (
	// maxHandshakes bounds the handshakes the keyring follows at once;
	// keyTTL is how long an unused entry is kept. A handshake takes a
	// few round trips: a minute is plenty.
	maxHandshakes = 4096
	keyTTL        = time.Minute
	// dtlsHandshake is the DTLS record content type of handshake
	// messages (RFC 6347), the first byte of such a datagram.
	dtlsHandshake = 22
	labelSRTP     = "EXTRACTOR-dtls_srtp"
)

var errNoKeys = errors.New("rtc: no SRTP keys for this session")

func newKeyring() *keyring {
	return &keyring{secrets: map[[32]byte]secret{}, hellos: map[netip.AddrPort]*hellos{}}
}

// Write takes pion's key log: lines of "CLIENT_RANDOM <random> <secret>"
// (NSS key log format), one per Write.
func (k *keyring) Write(line []byte) (int, error) {
	f := bytes.Fields(line)
	if len(f) != 3 || string(f[0]) != "CLIENT_RANDOM" || hex.DecodedLen(len(f[1])) != 32 {
		return len(line), nil
	}
	var cr [32]byte
	ms := make([]byte, hex.DecodedLen(len(f[2])))
	if _, err := hex.Decode(cr[:], f[1]); err != nil {
		return len(line), nil
	}
	if _, err := hex.Decode(ms, f[2]); err != nil {
		return len(line), nil
	}
	now := time.Now()
	k.mu.Lock()
	defer k.mu.Unlock()
	// A secret nobody took (its session never connected) is not kept
	// past keyTTL.
	for r, s := range k.secrets {
		if now.Sub(s.at) > keyTTL {
			delete(k.secrets, r)
		}
	}
	if len(k.secrets) >= maxHandshakes {
		return len(line), nil
	}
	k.secrets[cr] = secret{master: ms, at: now}
	return len(line), nil
}

// sniff notes the randoms, cipher suite and SRTP profile of a DTLS
// ClientHello or ServerHello in a datagram to (out) or from peer.
func (k *keyring) sniff(b []byte, peer netip.AddrPort, out bool) {
	recs, err := recordlayer.UnpackDatagram(b)
	if err != nil {
		return
	}
	for _, rec := range recs {
		var h recordlayer.Header
		if h.Unmarshal(rec) != nil || h.ContentType != dtlsHandshake || h.Epoch != 0 {
			continue
		}
		var hs handshake.Handshake
		if hs.Unmarshal(rec[h.Size():]) != nil {
			continue
		}
		switch m := hs.Message.(type) {
		case *handshake.MessageClientHello:
			k.note(peer, func(e *hellos) {
				e.client, e.haveClient, e.localIsClient = m.Random.MarshalFixed(), true, out
			})
		case *handshake.MessageServerHello:
			if m.CipherSuiteID == nil {
				continue
			}
			var profile srtp.ProtectionProfile
			for _, ext := range m.Extensions {
				if u, ok := ext.(*extension.UseSRTP); ok && len(u.ProtectionProfiles) == 1 {
					profile = srtp.ProtectionProfile(u.ProtectionProfiles[0])
				}
			}
			k.note(peer, func(e *hellos) {
				e.server, e.haveServer, e.suite, e.profile = m.Random.MarshalFixed(), true, *m.CipherSuiteID, profile
			})
		}
	}
}

func (k *keyring) note(peer netip.AddrPort, set func(*hellos)) {
	now := time.Now()
	k.mu.Lock()
	defer k.mu.Unlock()
	e := k.hellos[peer]
	if e == nil {
		if len(k.hellos) >= maxHandshakes {
			for a, h := range k.hellos {
				if now.Sub(h.at) > keyTTL {
					delete(k.hellos, a)
				}
			}
			if len(k.hellos) >= maxHandshakes {
				return
			}
		}
		e = &hellos{}
		k.hellos[peer] = e
	}
	e.at = now
	set(e)
}

// sessionKeys are the SRTP contexts of one DTLS session: in decrypts what
// the peer sends, out encrypts what the relay sends it. Each is used by
// one goroutine only (the media socket's reader).
type sessionKeys struct {
	in, out *srtp.Context
}

// take derives the SRTP contexts of the DTLS session with peer, and
// forgets what it knew of that session.
func (k *keyring) take(peer netip.AddrPort) (*sessionKeys, error) {
	k.mu.Lock()
	e := k.hellos[peer]
	var s secret
	var ok bool
	if e != nil && e.haveClient {
		s, ok = k.secrets[e.client]
		delete(k.secrets, e.client)
	}
	delete(k.hellos, peer)
	k.mu.Unlock()
	if e == nil || !ok || !e.haveServer || e.profile == 0 {
		return nil, errNoKeys
	}
	hash := sha256.New
	switch e.suite {
	case 0xc02c, 0xc030: // the ECDHE AES-256-GCM suites use SHA-384 (RFC 5289)
		hash = sha512.New384
	}
	seed := append(append([]byte(labelSRTP), e.client[:]...), e.server[:]...)
	cfg := srtp.Config{Profile: e.profile}
	if err := cfg.ExtractSessionKeysFromDTLS(exporter(func(n int) ([]byte, error) {
		return prf.PHash(s.master, seed, n, hash)
	}), e.localIsClient); err != nil {
		return nil, err
	}
	// No replay window on what comes in: a source's retransmission of a
	// packet a receiver asked for again (NACK) repeats a sequence number
	// the relay has seen, and must still go through. Receivers keep their
	// own replay protection, which is where it guards anything.
	in, err := srtp.CreateContext(cfg.Keys.RemoteMasterKey, cfg.Keys.RemoteMasterSalt, e.profile, srtp.SRTPNoReplayProtection())
	if err != nil {
		return nil, err
	}
	out, err := srtp.CreateContext(cfg.Keys.LocalMasterKey, cfg.Keys.LocalMasterSalt, e.profile)
	if err != nil {
		return nil, err
	}
	return &sessionKeys{in: in, out: out}, nil
}

// exporter is the RFC 5705 exporter of one session, for the SRTP label.
type exporter func(n int) ([]byte, error)

func (x exporter) ExportKeyingMaterial(label string, context []byte, n int) ([]byte, error) {
	if label != labelSRTP || len(context) != 0 {
		return nil, errNoKeys
	}
	return x(n)
}
