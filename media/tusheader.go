package media

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"hash"
	"strings"
)

// Bounds on tus headers from the client. tus-js-client sends a handful of
// metadata pairs (filename, filetype, and what the app adds).
const (
	maxMetadataLen   = 4 << 10
	maxMetadataPairs = 32
)

// ParseMetadata parses a tus Upload-Metadata header: comma-separated
// pairs of a key and a base64 value (the value may be absent). Keys must
// be unique, non-empty and free of spaces and commas.
func ParseMetadata(h string) (map[string]string, error) {
	out := map[string]string{}
	if strings.TrimSpace(h) == "" {
		return out, nil
	}
	if len(h) > maxMetadataLen {
		return nil, fmt.Errorf("%w: Upload-Metadata is longer than %d bytes", ErrInvalid, maxMetadataLen)
	}
	pairs := strings.Split(h, ",")
	if len(pairs) > maxMetadataPairs {
		return nil, fmt.Errorf("%w: Upload-Metadata has more than %d pairs", ErrInvalid, maxMetadataPairs)
	}
	for _, p := range pairs {
		k, v, _ := strings.Cut(strings.TrimSpace(p), " ")
		if k == "" || strings.ContainsAny(k, " \t,") {
			return nil, fmt.Errorf("%w: Upload-Metadata has an empty or malformed key", ErrInvalid)
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("%w: Upload-Metadata repeats a key", ErrInvalid)
		}
		val, err := base64.StdEncoding.DecodeString(strings.TrimSpace(v))
		if err != nil {
			return nil, fmt.Errorf("%w: Upload-Metadata value of %q is not base64", ErrInvalid, k)
		}
		out[k] = string(val)
	}
	return out, nil
}

// ChecksumAlgorithms are the tus checksum extension's algorithms served,
// for the Tus-Checksum-Algorithm header. sha1 is what tus requires every
// server to support; md5 and sha256 are what clients commonly send.
const ChecksumAlgorithms = "sha1,sha256,md5"

// Checksum is a parsed Upload-Checksum header.
type Checksum struct {
	sum  []byte
	hash hash.Hash
}

// ParseChecksum parses "ALGORITHM BASE64". An algorithm this server does
// not support is ErrInvalid (the gateway answers 400, as tus requires).
func ParseChecksum(h string) (*Checksum, error) {
	alg, v, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || len(h) > 256 {
		return nil, fmt.Errorf("%w: Upload-Checksum must be an algorithm and a base64 digest", ErrInvalid)
	}
	var hh hash.Hash
	switch alg {
	case "sha1":
		hh = sha1.New()
	case "sha256":
		hh = sha256.New()
	case "md5":
		hh = md5.New()
	default:
		return nil, fmt.Errorf("%w: checksum algorithm %q is not supported (%s)", ErrInvalid, alg, ChecksumAlgorithms)
	}
	sum, err := base64.StdEncoding.DecodeString(strings.TrimSpace(v))
	if err != nil || len(sum) != hh.Size() {
		return nil, fmt.Errorf("%w: Upload-Checksum digest is not base64 of the algorithm's size", ErrInvalid)
	}
	return &Checksum{sum: sum, hash: hh}, nil
}
