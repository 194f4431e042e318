// Package mobile is the gomobile-bindable face of the Switchboard SDK:
// only types gomobile can bind (strings, numbers, bool, []byte, error, and
// pointers to this package's structs and interfaces) cross its surface, so
// `gomobile bind` produces a Kotlin/Java and a Swift/Objective-C library.
// The logic lives in the idiomatic Go package sdk; this is a thin wrapper.
package mobile

import (
	"context"
	"fmt"
	"time"

	sdk "github.com/switchboard/switchboard/mobile-sdk"
)

// defaultTimeout bounds a call from the app: bound languages have no
// context.Context, so every call gets its own deadline.
const defaultTimeout = 30 * time.Second

// TokenStore is implemented by the app on top of Keychain or the Android
// Keystore. SaveTokens is called after every rotation.
type TokenStore interface {
	AccessToken() string
	RefreshToken() string
	SaveTokens(access, refresh string) error
}

// tokenAdapter lets the sdk use an app-supplied TokenStore.
type tokenAdapter struct{ s TokenStore }

func (t tokenAdapter) Load() (string, string)            { return t.s.AccessToken(), t.s.RefreshToken() }
func (t tokenAdapter) Save(access, refresh string) error { return t.s.SaveTokens(access, refresh) }

// Client is the app's connection to the gateway.
type Client struct {
	c *sdk.Client
}

// NewClient returns a client for baseURL that keeps tokens in store.
func NewClient(baseURL string, store TokenStore) (*Client, error) {
	c, err := sdk.New(sdk.Config{BaseURL: baseURL, Tokens: tokenAdapter{store}})
	if err != nil {
		return nil, err
	}
	return &Client{c: c}, nil
}

// Me is the signed-in user.
type Me struct {
	Subject string
	Role    string
	// ExpiresAtUnix is the access token's expiry in Unix seconds.
	ExpiresAtUnix int64
}

// Me returns the signed-in user.
func (c *Client) Me() (*Me, error) {
	ctx, cancel := context.WithTimeout(context.Background(), defaultTimeout)
	defer cancel()
	me, err := c.c.Me(ctx)
	if err != nil {
		return nil, wrap(err)
	}
	return &Me{Subject: me.Subject, Role: me.Role, ExpiresAtUnix: me.ExpiresAt.Unix()}, nil
}

// wrap renders a gateway refusal as "code (status): detail", so Kotlin
// and Swift code, which sees errors only as messages, can branch on the
// code prefix.
func wrap(err error) error {
	if code := sdk.Code(err); code != "" {
		return fmt.Errorf("%s (%d): %w", code, sdk.StatusCode(err), err)
	}
	return err
}
