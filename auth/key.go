package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"

	"github.com/golang-jwt/jwt/v5"
)

// KeyFileName is the signing key's file name inside the data directory.
const KeyFileName = "signing-key.pem"

// maxKeyFile bounds how much of a key file is read: a PEM private key for
// Ed25519 or P-256 is under 300 bytes.
const maxKeyFile = 64 << 10

// Key is our signing key with its kid, the RFC 7638 JWK thumbprint of its
// public half. It is Ed25519 (alg EdDSA) or ECDSA P-256 (alg ES256).
// Printing a Key shows its algorithm and kid, never the private key.
type Key struct {
	id     string
	method jwt.SigningMethod
	signer crypto.Signer    // ed25519.PrivateKey or *ecdsa.PrivateKey, as jwt wants them
	pub    crypto.PublicKey // ed25519.PublicKey or *ecdsa.PublicKey
	jwk    jwk              // public members, for JWKS
}

// NewKey wraps a private key: ed25519.PrivateKey or a P-256
// *ecdsa.PrivateKey. Anything else is ErrUnsupportedKey.
func NewKey(priv crypto.Signer) (*Key, error) {
	k := &Key{signer: priv}
	var thumb string // RFC 7638 §3.2: required members, sorted, no spaces
	switch p := priv.(type) {
	case ed25519.PrivateKey:
		if len(p) != ed25519.PrivateKeySize {
			return nil, fmt.Errorf("%w: Ed25519 key of %d bytes", ErrUnsupportedKey, len(p))
		}
		pub := p.Public().(ed25519.PublicKey)
		k.method, k.pub = jwt.SigningMethodEdDSA, pub
		k.jwk = jwk{Kty: "OKP", Crv: "Ed25519", X: b64(pub)}
		// RFC 8037 §2: an OKP key's required members are crv, kty, x.
		thumb = `{"crv":"Ed25519","kty":"OKP","x":"` + k.jwk.X + `"}`
	case *ecdsa.PrivateKey:
		if p.Curve != elliptic.P256() {
			return nil, fmt.Errorf("%w: ECDSA keys must be P-256", ErrUnsupportedKey)
		}
		pt, err := p.PublicKey.Bytes() // 0x04 || X || Y, 32 bytes each
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrUnsupportedKey, err)
		}
		k.method, k.pub = jwt.SigningMethodES256, &p.PublicKey
		k.jwk = jwk{Kty: "EC", Crv: "P-256", X: b64(pt[1:33]), Y: b64(pt[33:])}
		thumb = `{"crv":"P-256","kty":"EC","x":"` + k.jwk.X + `","y":"` + k.jwk.Y + `"}`
	default:
		return nil, fmt.Errorf("%w: %T", ErrUnsupportedKey, priv)
	}
	sum := sha256.Sum256([]byte(thumb))
	k.id = b64(sum[:])
	k.jwk.Kid, k.jwk.Use, k.jwk.Alg = k.id, "sig", k.method.Alg()
	return k, nil
}

// LoadOrCreateKey returns the key in dir/signing-key.pem, creating dir
// (0700) and a new Ed25519 key file (0600) on first use. Concurrent first
// calls, even from two processes, end with the same key: the file appears
// atomically, complete or not at all (on file systems without hard links,
// exclusive creation still picks one winner, but a racing reader may see
// the file before it is complete and return an error).
//
// The file holds a PKCS #8 ("PRIVATE KEY") or SEC 1 ("EC PRIVATE KEY") PEM
// key, Ed25519 or ECDSA P-256, so an operator can supply their own. A file
// whose mode grants anything to group or others is refused with
// ErrInsecureKeyFile rather than used with a warning: whoever can read it
// can mint admin tokens, and a warning in a log is easy to miss. (Windows
// has no such mode bits; the check is skipped there.)
func LoadOrCreateKey(dir string) (*Key, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("auth: key directory: %w", err)
	}
	path := filepath.Join(dir, KeyFileName)
	k, err := readKeyFile(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return k, err
	}
	if err := createKeyFile(dir, path); err != nil {
		return nil, err
	}
	return readKeyFile(path)
}

func readKeyFile(path string) (*Key, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("auth: signing key: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat() // the opened file, so no swap between check and read
	if err != nil {
		return nil, fmt.Errorf("auth: signing key: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s is not a regular file", ErrInsecureKeyFile, path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
		return nil, fmt.Errorf("%w: %s has mode %04o; run chmod 600 %s", ErrInsecureKeyFile, path, perm, path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, fmt.Errorf("auth: signing key: %w", err)
	}
	if len(data) > maxKeyFile {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrUnsupportedKey, path, maxKeyFile)
	}
	k, err := parseKeyPEM(data)
	if err != nil {
		return nil, fmt.Errorf("%w (%s)", err, path)
	}
	return k, nil
}

func parseKeyPEM(data []byte) (*Key, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%w: no PEM block", ErrUnsupportedKey)
	}
	var (
		priv any
		err  error
	)
	switch block.Type {
	case "PRIVATE KEY":
		priv, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		priv, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("%w: PEM block %q", ErrUnsupportedKey, block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnsupportedKey, err)
	}
	signer, ok := priv.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%w: %T", ErrUnsupportedKey, priv)
	}
	return NewKey(signer)
}

// createKeyFile writes a new Ed25519 key to path unless a file is already
// there. The key is written to a temporary file and hard-linked into place,
// which fails if path exists, so a reader never sees a half-written key
// and of two racing creators one wins. Where hard links are unsupported it
// falls back to an exclusive create.
func createKeyFile(dir, path string) error {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return fmt.Errorf("auth: generating key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return fmt.Errorf("auth: encoding key: %w", err)
	}
	data := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})

	tmp, err := os.CreateTemp(dir, ".signing-key-*.tmp") // mode 0600
	if err != nil {
		return fmt.Errorf("auth: creating key: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("auth: writing key: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("auth: writing key: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("auth: writing key: %w", err)
	}
	err = os.Link(tmp.Name(), path)
	if err != nil && !errors.Is(err, fs.ErrExist) {
		err = writeExclusive(path, data)
	}
	if errors.Is(err, fs.ErrExist) {
		return nil // another caller created it first; use theirs
	}
	if err != nil {
		return fmt.Errorf("auth: creating key: %w", err)
	}
	syncDir(dir)
	return nil
}

func writeExclusive(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	return f.Close()
}

// syncDir makes the new directory entry durable; failure only risks losing
// a key no token was signed with yet, so it is best effort.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

// ID returns the key's kid: its RFC 7638 JWK thumbprint (SHA-256,
// base64url), the same on every node that shares the key file.
func (k *Key) ID() string { return k.id }

// Algorithm returns the JWS algorithm the key signs with: "EdDSA" or "ES256".
func (k *Key) Algorithm() string { return k.method.Alg() }

// JWKS returns the public JWK Set (RFC 7517) holding this key, for
// /.well-known/jwks.json.
func (k *Key) JWKS() ([]byte, error) {
	return json.Marshal(jwkSet{Keys: []jwk{k.jwk}})
}

// String identifies the key without revealing it.
func (k *Key) String() string {
	if k == nil {
		return "auth.Key(nil)"
	}
	return "auth.Key(" + k.method.Alg() + " " + k.id + ")"
}

// GoString keeps %#v from printing the private key.
func (k *Key) GoString() string { return k.String() }

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
