// Package fcmtest is a local stand-in for Firebase Cloud Messaging that
// the real Firebase Admin SDK talks to in tests: it speaks the FCM HTTP v1
// wire protocol (POST /v1/projects/{project}/messages:send) and the OAuth2
// JWT-bearer token exchange (RFC 7523) the SDK performs against the
// service account's token_uri, so nothing in a test ever calls Google.
//
// Tests script failures per request (a storm of 500s, 429 with
// Retry-After, UNREGISTERED tokens) and read back what arrived, with the
// server's own receive times, so timing assertions never depend on how
// fast the test machine is.
package fcmtest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// FCM error codes (google.firebase.fcm.v1.FcmError.ErrorCode) with the
// HTTP status and google.rpc status FCM answers them with.
const (
	Unregistered      = "UNREGISTERED"
	InvalidArgument   = "INVALID_ARGUMENT"
	QuotaExceeded     = "QUOTA_EXCEEDED"
	Unavailable       = "UNAVAILABLE"
	Internal          = "INTERNAL"
	SenderIDMismatch  = "SENDER_ID_MISMATCH"
	ThirdPartyAuthErr = "THIRD_PARTY_AUTH_ERROR"
)

var codeStatus = map[string]struct {
	http int
	rpc  string
}{
	Unregistered:      {404, "NOT_FOUND"},
	InvalidArgument:   {400, "INVALID_ARGUMENT"},
	QuotaExceeded:     {429, "RESOURCE_EXHAUSTED"},
	Unavailable:       {503, "UNAVAILABLE"},
	Internal:          {500, "INTERNAL"},
	SenderIDMismatch:  {403, "PERMISSION_DENIED"},
	ThirdPartyAuthErr: {401, "UNAUTHENTICATED"},
}

// Fault is a scripted failure for one request.
type Fault struct {
	// Code is an FCM error code (Unregistered, QuotaExceeded...); its
	// HTTP status follows unless Status is set.
	Code string
	// Status overrides the HTTP status.
	Status int
	// RetryAfter, when positive, is sent as a Retry-After header in seconds.
	RetryAfter int
}

// Message is one message as the SDK sent it (the "message" member of the
// request), with what the tests look at parsed out.
type Message struct {
	Token        string            `json:"token"`
	Data         map[string]string `json:"data"`
	Notification *struct {
		Title string `json:"title"`
		Body  string `json:"body"`
	} `json:"notification"`
	Android *struct {
		CollapseKey string `json:"collapse_key"`
		Priority    string `json:"priority"`
		TTL         string `json:"ttl"`
	} `json:"android"`
	APNS *struct {
		Headers map[string]string `json:"headers"`
		Payload json.RawMessage   `json:"payload"`
	} `json:"apns"`
}

// Request is one send the server received.
type Request struct {
	At      time.Time
	Message Message
	Status  int    // what the server answered
	Name    string // message name, for accepted ones
}

// Server is the fake FCM endpoint.
type Server struct {
	URL     string // base URL; the SDK's endpoint is URL + "/v1"
	Project string
	key     *rsa.PrivateKey
	srv     *httptest.Server

	mu       sync.Mutex
	fault    func(Message) *Fault
	requests []Request
	tokens   map[string]bool // access tokens issued
	seq      atomic.Uint64
	exchange atomic.Int64
	keep     bool
}

// Start runs a fake FCM endpoint for project until the test ends.
func Start(t testing.TB, project string) *Server {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Project: project, key: key, tokens: map[string]bool{}, keep: true}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", s.token)
	mux.HandleFunc("POST /v1/projects/{project}/messages:send", s.send)
	s.srv = httptest.NewServer(mux)
	s.URL = s.srv.URL
	t.Cleanup(s.srv.Close)
	return s
}

// Endpoint is what option.WithEndpoint takes.
func (s *Server) Endpoint() string { return s.URL + "/v1" }

// KeepRequests turns recording of every request on (the default) or off;
// benchmarks turn it off so memory does not grow with b.N.
func (s *Server) KeepRequests(on bool) {
	s.mu.Lock()
	s.keep = on
	s.mu.Unlock()
}

// CredentialsJSON is a service-account key file for the project whose
// token_uri is this server: the SDK signs its JWT assertion with a key
// generated for the test and exchanges it here.
func (s *Server) CredentialsJSON() []byte {
	der := x509.MarshalPKCS1PrivateKey(s.key)
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: der})
	b, _ := json.Marshal(map[string]string{
		"type":           "service_account",
		"project_id":     s.Project,
		"private_key_id": "fcmtest-key",
		"private_key":    string(pemKey),
		"client_email":   "fcm@" + s.Project + ".iam.gserviceaccount.com",
		"client_id":      "1",
		"token_uri":      s.URL + "/token",
	})
	return b
}

// WriteCredentials writes CredentialsJSON into dir and returns its path.
func (s *Server) WriteCredentials(t testing.TB, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "service-account.json")
	if err := os.WriteFile(p, s.CredentialsJSON(), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// SetFault scripts failures: f is called for every send and its Fault,
// when not nil, is answered instead of success. nil clears it.
func (s *Server) SetFault(f func(Message) *Fault) {
	s.mu.Lock()
	s.fault = f
	s.mu.Unlock()
}

// Requests returns every send received so far, in arrival order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Delivered returns how many sends were accepted per registration token.
func (s *Server) Delivered() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := map[string]int{}
	for _, r := range s.requests {
		if r.Status == http.StatusOK {
			m[r.Message.Token]++
		}
	}
	return m
}

// Accepted counts accepted sends (also while KeepRequests is off).
func (s *Server) Accepted() uint64 { return s.seq.Load() }

// TokenExchanges counts OAuth2 token exchanges.
func (s *Server) TokenExchanges() int64 { return s.exchange.Load() }

// token implements the JWT-bearer grant: the assertion must be signed by
// the service account's key, for our token_uri.
func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", 400)
		return
	}
	if r.PostForm.Get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
		writeJSON(w, 400, map[string]string{"error": "unsupported_grant_type"})
		return
	}
	_, err := jwt.Parse(r.PostForm.Get("assertion"), func(*jwt.Token) (any, error) { return &s.key.PublicKey, nil },
		jwt.WithValidMethods([]string{"RS256"}), jwt.WithAudience(s.URL+"/token"))
	if err != nil {
		writeJSON(w, 400, map[string]string{"error": "invalid_grant", "error_description": err.Error()})
		return
	}
	s.exchange.Add(1)
	at := "fcmtest-" + rand.Text()
	s.mu.Lock()
	s.tokens[at] = true
	s.mu.Unlock()
	writeJSON(w, 200, map[string]any{"access_token": at, "token_type": "Bearer", "expires_in": 3600})
}

func (s *Server) send(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	at, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	s.mu.Lock()
	authed := ok && s.tokens[at]
	fault := s.fault
	s.mu.Unlock()
	if !authed {
		writeError(w, &Fault{Code: ThirdPartyAuthErr, Status: 401}, "request had invalid authentication credentials")
		return
	}
	if r.PathValue("project") != s.Project {
		writeError(w, &Fault{Code: SenderIDMismatch}, "wrong project")
		return
	}
	var body struct {
		Message Message `json:"message"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&body); err != nil || body.Message.Token == "" {
		writeError(w, &Fault{Code: InvalidArgument}, "request contains an invalid argument")
		return
	}
	req := Request{At: now, Message: body.Message, Status: 200}
	var f *Fault
	if fault != nil {
		f = fault(body.Message)
	}
	if f != nil {
		req.Status = statusOf(f)
	} else {
		req.Name = fmt.Sprintf("projects/%s/messages/%d", s.Project, s.seq.Add(1))
	}
	s.mu.Lock()
	if s.keep {
		s.requests = append(s.requests, req)
	}
	s.mu.Unlock()
	if f != nil {
		msg := "failed"
		if f.Code == Unregistered {
			msg = "Requested entity was not found."
		} else if f.Code == InvalidArgument {
			msg = "The registration token is not a valid FCM registration token"
		}
		writeError(w, f, msg)
		return
	}
	writeJSON(w, 200, map[string]string{"name": req.Name})
}

func statusOf(f *Fault) int {
	if f.Status != 0 {
		return f.Status
	}
	if c, ok := codeStatus[f.Code]; ok {
		return c.http
	}
	return 500
}

// writeError answers in FCM's error shape: a google.rpc.Status with an
// FcmError detail, which the SDK reads into its IsUnregistered etc.
func writeError(w http.ResponseWriter, f *Fault, msg string) {
	status := statusOf(f)
	rpc := "INTERNAL"
	if c, ok := codeStatus[f.Code]; ok {
		rpc = c.rpc
	}
	if f.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(f.RetryAfter))
	}
	e := map[string]any{"code": status, "message": msg, "status": rpc}
	if f.Code != "" {
		e["details"] = []map[string]string{{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": f.Code}}
	}
	writeJSON(w, status, map[string]any{"error": e})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
