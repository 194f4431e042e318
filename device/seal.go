package device

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Appliance secrets cannot be hashed: the server recomputes HMACs over
// every frame and every pairing code with the secret itself. So they are
// sealed with AES-256-GCM under a key kept outside the database, in a file
// in the data directory (mode 0600, like auth's signing key). A dump of
// the state backend (a Redis RDB, a copy of the bbolt file) alone reveals
// no secret; someone holding both the dump and the key file does. The
// appliance ID is the additional data, so a sealed secret moved onto
// another record does not open.

// sealKeyFile is the name of the key file under the directory given to
// LoadOrCreateSealKey.
const sealKeyFile = "appliance-seal.key"

// LoadOrCreateSealKey reads the sealing key from dir, creating it (32
// random bytes, mode 0600) on first use.
func LoadOrCreateSealKey(dir string) ([]byte, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	p := filepath.Join(dir, sealKeyFile)
	b, err := os.ReadFile(p)
	if err == nil {
		if len(b) != 32 {
			return nil, fmt.Errorf("device: %s holds %d bytes, want 32", p, len(b))
		}
		return b, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) { // another process won the race
		return LoadOrCreateSealKey(dir)
	}
	if err != nil {
		return nil, err
	}
	if _, err := f.Write(key); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, err
	}
	return key, f.Close()
}

// sealer seals and opens appliance secrets.
type sealer struct{ aead cipher.AEAD }

func newSealer(key []byte) (*sealer, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("device: seal key must be 32 bytes, got %d", len(key))
	}
	// Derive the AES key so the file's bytes serve one purpose only.
	k, err := hkdf.Key(sha256.New, key, nil, "switchboard appliance secrets v1", 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &sealer{aead: aead}, nil
}

func (s *sealer) seal(id string, secret []byte) []byte {
	nonce := make([]byte, s.aead.NonceSize())
	_, _ = rand.Read(nonce)
	return s.aead.Seal(nonce, nonce, secret, []byte(id))
}

func (s *sealer) open(id string, sealed []byte) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n {
		return nil, errors.New("device: sealed secret too short")
	}
	return s.aead.Open(nil, sealed[:n], sealed[n:], []byte(id))
}
