package auth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

func TestLoadOrCreateKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data", "keys")
	k1, err := LoadOrCreateKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	if k1.Algorithm() != "EdDSA" || len(k1.ID()) != 43 {
		t.Fatalf("new key %v", k1)
	}
	if runtime.GOOS != "windows" {
		for path, want := range map[string]os.FileMode{dir: 0o700, filepath.Join(dir, KeyFileName): 0o600} {
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if got := fi.Mode().Perm(); got != want {
				t.Fatalf("%s has mode %04o; want %04o", path, got, want)
			}
		}
	}
	k2, err := LoadOrCreateKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	if k2.ID() != k1.ID() {
		t.Fatal("second call made a new key")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("directory holds %d entries; want only the key", len(entries))
	}
}

func TestLoadOrCreateKeyConcurrent(t *testing.T) {
	dir := t.TempDir()
	ids := make([]string, 16)
	var wg sync.WaitGroup
	for i := range ids {
		wg.Go(func() {
			k, err := LoadOrCreateKey(dir)
			if err != nil {
				t.Error(err)
				return
			}
			ids[i] = k.ID()
		})
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] {
			t.Fatalf("concurrent first calls made different keys: %q", ids)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("%d entries left in the directory", len(entries))
	}
}

func TestLoadOrCreateKeyRefusesLooseFile(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix permissions")
	}
	dir := t.TempDir()
	if _, err := LoadOrCreateKey(dir); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, KeyFileName)
	for _, mode := range []os.FileMode{0o640, 0o604, 0o660, 0o644} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		_, err := LoadOrCreateKey(dir)
		if !errors.Is(err, ErrInsecureKeyFile) || !strings.Contains(err.Error(), "chmod 600") {
			t.Fatalf("mode %04o: %v", mode, err)
		}
	}
	if err := os.Chmod(path, 0o400); err != nil { // stricter is fine
		t.Fatal(err)
	}
	if _, err := LoadOrCreateKey(dir); err != nil {
		t.Fatalf("mode 0400: %v", err)
	}

	// A directory where the key should be is refused too.
	dir2 := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir2, KeyFileName), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateKey(dir2); !errors.Is(err, ErrInsecureKeyFile) {
		t.Fatalf("directory as key: %v", err)
	}
}

func TestLoadOrCreateKeyOperatorKeys(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	pkcs8 := func(k any) []byte {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	}
	sec1, err := x509.MarshalECPrivateKey(ec)
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		file []byte
		alg  string // "" means refused with ErrUnsupportedKey
	}{
		"P-256 PKCS #8": {pkcs8(ec), "ES256"},
		"P-256 SEC 1":   {pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}), "ES256"},
		"P-384":         {pkcs8(p384), ""},
		"RSA":           {pkcs8(rsaKey), ""},
		"not PEM":       {[]byte("hello"), ""},
		"certificate":   {pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1}}), ""},
		"corrupt DER":   {pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1, 2, 3}}), ""},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, KeyFileName), tc.file, 0o600); err != nil {
				t.Fatal(err)
			}
			k, err := LoadOrCreateKey(dir)
			if tc.alg == "" {
				if !errors.Is(err, ErrUnsupportedKey) {
					t.Fatalf("error %v; want ErrUnsupportedKey", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if k.Algorithm() != tc.alg {
				t.Fatalf("algorithm %s", k.Algorithm())
			}
			// Our ES256 JWKS is readable by our own JWKS parser.
			doc, err := k.JWKS()
			if err != nil {
				t.Fatal(err)
			}
			keys, err := parseJWKS(doc)
			if err != nil {
				t.Fatal(err)
			}
			if pub, ok := keys[k.ID()].(*ecdsa.PublicKey); !ok || !pub.Equal(&ec.PublicKey) {
				t.Fatalf("JWKS round trip: %v", keys)
			}
		})
	}
}

// TestKeyIDThumbprint checks the kid against RFC 8037 Appendix A.3.
func TestKeyIDThumbprint(t *testing.T) {
	seed, err := base64.RawURLEncoding.DecodeString("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A")
	if err != nil {
		t.Fatal(err)
	}
	k, err := NewKey(ed25519.NewKeyFromSeed(seed))
	if err != nil {
		t.Fatal(err)
	}
	if k.jwk.X != "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo" {
		t.Fatalf("x = %s", k.jwk.X)
	}
	if want := "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"; k.ID() != want {
		t.Fatalf("kid %s; want %s", k.ID(), want)
	}

	doc, err := k.JWKS()
	if err != nil {
		t.Fatal(err)
	}
	var set struct{ Keys []map[string]string }
	if err := json.Unmarshal(doc, &set); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"kty": "OKP", "crv": "Ed25519", "x": k.jwk.X, "kid": k.ID(), "use": "sig", "alg": "EdDSA"}
	if len(set.Keys) != 1 || fmt.Sprint(set.Keys[0]) != fmt.Sprint(want) {
		t.Fatalf("JWKS %s", doc)
	}

	// Printing a key never shows the private half.
	printed := fmt.Sprintf("%v %+v %#v %s", k, k, k, k)
	for _, secret := range []string{"nWGxne", fmt.Sprint([]byte(k.signer.(ed25519.PrivateKey)))[:20]} {
		if strings.Contains(printed, secret) {
			t.Fatalf("printed key leaks: %s", printed)
		}
	}

	if _, err := NewKey(ed25519.PrivateKey{1, 2}); !errors.Is(err, ErrUnsupportedKey) {
		t.Fatal(err)
	}
}
