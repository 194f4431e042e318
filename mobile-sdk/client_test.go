package sdk_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/gateway"
	"github.com/switchboard/switchboard/location"
	sdk "github.com/switchboard/switchboard/mobile-sdk"
	"github.com/switchboard/switchboard/mobile-sdk/mobile"
	"github.com/switchboard/switchboard/state"
	"github.com/switchboard/switchboard/state/embedded"
	"github.com/switchboard/switchboard/ticket"
)

// server is a real gateway on loopback, as the apps meet it, with its
// ticket stream and live feed.
type server struct {
	url     string
	addr    string
	ac      auth.Config
	key     *auth.Key
	store   state.Store
	issuer  *auth.Issuer
	tickets *ticket.Service
	loc     *location.Service
	stop    func() // shuts this gateway (not its store) down; idempotent
	with    []func(*gateway.Deps)
}

// startGateway runs a gateway on a new store; with adds the domains a
// test needs beyond tickets and location (calls, push).
func startGateway(t *testing.T, ac auth.Config, with ...func(*gateway.Deps)) *server {
	t.Helper()
	store, err := embedded.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	key, err := auth.LoadOrCreateKey(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return serveOn(t, ac, store, key, "127.0.0.1:0", with...)
}

// restart shuts the gateway down and starts a new one on the same store,
// key and address: a node restart, as a client sees it.
func (s *server) restart(t *testing.T) *server {
	t.Helper()
	s.stop()
	return serveOn(t, s.ac, s.store, s.key, s.addr, s.with...)
}

// serveOn runs a gateway node on store at addr, with the ticket service
// and the live feed hub the tickets and stream routes need, and location
// for the technician reporter; each of with then adds to the
// dependencies before the node starts.
func serveOn(t *testing.T, ac auth.Config, store state.Store, key *auth.Key, addr string, with ...func(*gateway.Deps)) *server {
	t.Helper()
	iss := auth.NewIssuer(ac, key, store)
	tickets := ticket.New(store)
	loc := location.New(store, tickets, location.Config{})
	hub := ticket.NewHub(tickets, ticket.HubConfig{})
	hubCtx, stopHub := context.WithCancel(context.Background())
	hubDone := make(chan struct{})
	go func() { defer close(hubDone); _ = hub.Run(hubCtx) }()
	deps := gateway.Deps{Store: store, Issuer: iss, Verifier: auth.NewVerifier(ac, key), Tickets: tickets, Hub: hub, Location: loc}
	for _, w := range with {
		w(&deps)
	}
	srv := gateway.New(gateway.Config{}, deps)
	t.Cleanup(func() { stopHub(); <-hubDone }) // after the server's own cleanup
	bound, stopSrv := serve(t, srv, addr)
	stop := sync.OnceFunc(func() {
		stopSrv()
		stopHub()
		<-hubDone
	})
	t.Cleanup(stop)
	return &server{url: "http://" + bound, addr: bound, ac: ac, key: key,
		store: store, issuer: iss, tickets: tickets, loc: loc, stop: stop, with: with}
}

// serve runs srv on addr until the test ends and returns the address it
// bound; stop shuts it down early (once). A restarted node reuses its
// address, and the old socket may linger a moment, so binding retries.
func serve(t *testing.T, srv *gateway.Server, addr string) (bound string, stop func()) {
	t.Helper()
	var ln net.Listener
	var err error
	for deadline := time.Now().Add(10 * time.Second); ; {
		if ln, err = net.Listen("tcp", addr); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	stop = sync.OnceFunc(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	})
	t.Cleanup(stop)
	return ln.Addr().String(), stop
}

func (s *server) pair(t *testing.T, sub string) api.TokenPair {
	t.Helper()
	p, err := s.issuer.Pair(context.Background(), sub, auth.RoleCustomer, nil)
	if err != nil {
		t.Fatal(err)
	}
	return api.TokenPair{AccessToken: p.AccessToken, RefreshToken: p.RefreshToken}
}

func TestMeAndTypedErrors(t *testing.T) {
	s := startGateway(t, auth.Config{})
	c, err := sdk.New(sdk.Config{BaseURL: s.url})
	if err != nil {
		t.Fatal(err)
	}
	// Not signed in: a typed 401.
	_, err = c.Me(t.Context())
	var e *sdk.Error
	if !errors.As(err, &e) || e.Status != 401 || sdk.Code(err) != api.CodeUnauthorized || e.RequestID == "" {
		t.Fatalf("want a typed 401, got %v", err)
	}
	if err := c.SignIn(s.pair(t, "ann")); err != nil {
		t.Fatal(err)
	}
	me, err := c.Me(t.Context())
	if err != nil || me.Subject != "ann" || me.Role != "customer" {
		t.Fatalf("me = %+v, %v", me, err)
	}
	err = c.Do(t.Context(), "GET", "/v1/nowhere", nil, nil)
	if sdk.StatusCode(err) != 404 || sdk.Code(err) != api.CodeNotFound {
		t.Fatalf("want 404, got %v", err)
	}
	if _, err := sdk.New(sdk.Config{BaseURL: "ftp://x"}); err == nil {
		t.Fatal("ftp base URL accepted")
	}
}

// TestRefreshesExpiredToken: the gateway says token-expired, the client
// rotates once, retries, and stores the new pair.
func TestRefreshesExpiredToken(t *testing.T) {
	ac := auth.Config{AccessTTL: time.Second, Leeway: time.Nanosecond}
	s := startGateway(t, ac)
	tokens := &sdk.MemoryTokens{}
	c, _ := sdk.New(sdk.Config{BaseURL: s.url, Tokens: tokens, RefreshBefore: time.Nanosecond})
	first := s.pair(t, "ben")
	c.SignIn(first)
	// Wait until the gateway itself refuses the access token as expired.
	deadline := time.Now().Add(10 * time.Second)
	for {
		req, _ := http.NewRequest("GET", s.url+"/v1/me", nil)
		req.Header.Set("Authorization", "Bearer "+first.AccessToken)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode == 401 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("access token never expired")
		}
		time.Sleep(50 * time.Millisecond)
	}
	me, err := c.Me(t.Context())
	if err != nil || me.Subject != "ben" {
		t.Fatalf("me = %+v, %v", me, err)
	}
	access, refresh := tokens.Load()
	if access == first.AccessToken || refresh == first.RefreshToken || refresh == "" {
		t.Fatal("tokens were not rotated and saved")
	}
}

// TestConcurrentRequestsShareOneRefresh: 20 goroutines find the token
// about to expire at once; one refresh serves them all, so the server
// never sees a reused refresh token (which would sign the user out).
func TestConcurrentRequestsShareOneRefresh(t *testing.T) {
	s := startGateway(t, auth.Config{AccessTTL: 10 * time.Second})
	tokens := &sdk.MemoryTokens{}
	// RefreshBefore longer than the token's life: every request wants a refresh.
	c, _ := sdk.New(sdk.Config{BaseURL: s.url, Tokens: tokens, RefreshBefore: time.Minute})
	c.SignIn(s.pair(t, "cat"))
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.Me(t.Context()); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent request failed: %v", err)
	}
	if _, refresh := tokens.Load(); refresh == "" {
		t.Fatal("signed out by a refresh race")
	}
}

// TestReusedRefreshSignsOut: if a stolen copy of the refresh token was
// used first, the client learns it is signed out.
func TestReusedRefreshSignsOut(t *testing.T) {
	s := startGateway(t, auth.Config{AccessTTL: 10 * time.Second})
	p := s.pair(t, "dan")
	if _, err := s.issuer.Refresh(context.Background(), p.RefreshToken); err != nil {
		t.Fatal(err) // the thief rotates first
	}
	tokens := &sdk.MemoryTokens{}
	c, _ := sdk.New(sdk.Config{BaseURL: s.url, Tokens: tokens, RefreshBefore: time.Minute})
	c.SignIn(p)
	_, err := c.Me(t.Context())
	if !errors.Is(err, sdk.ErrSignedOut) || sdk.Code(err) != api.CodeTokenReused {
		t.Fatalf("want signed out (token reused), got %v", err)
	}
	if a, r := tokens.Load(); a != "" || r != "" {
		t.Fatal("tokens kept after sign-out")
	}
}

// TestMobileMe: the bindable Me passes the user and the token's expiry
// through, and a refusal arrives as "code (status): ...".
func TestMobileMe(t *testing.T) {
	s := startGateway(t, auth.Config{AccessTTL: 10 * time.Minute})
	before := time.Now()
	c := signInMobile(t, s.issuer, s.url, "ann", auth.RoleAgent)
	me, err := c.Me()
	if err != nil {
		t.Fatal(err)
	}
	if me.Subject != "ann" || me.Role != "agent" ||
		me.ExpiresAtUnix < before.Add(10*time.Minute).Unix()-1 || me.ExpiresAtUnix > time.Now().Add(10*time.Minute).Unix() {
		t.Fatalf("me = %+v, want ann, agent, expiring in 10 minutes", me)
	}
	out, err := mobile.NewClient(s.url, &tokens{})
	if err != nil {
		t.Fatal(err)
	}
	if me, err := out.Me(); me != nil || err == nil || !strings.HasPrefix(err.Error(), api.CodeUnauthorized+" (401)") {
		t.Fatalf("signed out: %+v, %v", me, err)
	}
}
