// Package auth issues and verifies Switchboard's JSON Web Tokens (RFC 7519)
// with github.com/golang-jwt/jwt/v5: roles and scopes, signing keys, short
// access tokens, and rotating refresh tokens with reuse detection.
//
// # Tokens we sign
//
// Our own tokens are signed with one key from LoadOrCreateKey: Ed25519
// (alg EdDSA) by default, or ECDSA P-256 (ES256) when an operator supplies
// one. Their header carries kid, the key's RFC 7638 thumbprint, and their
// claims carry iss, sub, aud, exp, iat, jti, role and typ ("access" or
// "refresh"). An access token lives Config.AccessTTL (15 minutes) and is
// checked without touching storage; a refresh token lives Config.RefreshTTL
// (30 days) and is only good for Issuer.Refresh.
//
// # Verification
//
// Verifier refuses, before anything else, a token longer than MaxTokenLen,
// so junk costs a length comparison. Then it allows only the algorithms
// listed per key (EdDSA or ES256 for ours, RS256 or ES256 for an outside
// identity provider; never none, never HMAC, so a public key can't be
// replayed as an HMAC secret), finds the key by kid in a map (kid is never
// a path, a URL or a query), requires exp, iss and aud, and allows
// Config.Leeway of clock skew on exp, nbf and iat. An outside provider's
// tokens are checked against that provider's own issuer and audience (see
// Provider). Every refusal matches ErrInvalidToken.
//
// # Refresh rotation and reuse detection
//
// Pair starts a refresh-token family and records its current token's jti
// in state.KV under "auth:fam:<family>". Refresh swaps that record to the
// new token's jti with CompareAndSwap and returns a new pair. A refresh
// token whose jti is no longer current has been used before, by the client
// or by someone who copied it; Refresh then revokes the whole family
// (ErrTokenReused), so the thief's and the owner's tokens die together and
// the owner signs in again. Two concurrent refreshes with the same token
// are the same case: the swap lets exactly one win, and the other is reuse,
// which revokes the family including the winner's new token. There is no
// grace period, so a client must never run two refreshes at once (the
// mobile SDK serialises them). A revoked, expired or unknown family
// answers ErrRevoked.
//
// Revocation reaches refresh tokens only: an access token already issued
// stays valid until it expires, at most AccessTTL later.
//
// This package is plain Go: it must never import gateway, Fiber or a state
// backend; it sees storage only through state.KV.
package auth
