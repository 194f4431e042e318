package gateway_test

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/device"
	"github.com/switchboard/switchboard/gateway"
	"github.com/switchboard/switchboard/state/embedded"
	"github.com/switchboard/switchboard/ticket"
)

// applianceEnv is a gateway with the appliance domain on an embedded store.
type applianceEnv struct {
	*env
	devices *device.Service
}

const applianceRules = `{"rules":[{"model":"PJ-100","code":"E42","action":"order_part","sku":"LAMP-100"}],
 "ranges":{"PJ-100":{"lamp_temp_c":[-40,400]}}}`

func newApplianceEnv(t testing.TB, cfg gateway.Config) *applianceEnv {
	t.Helper()
	e, devices := newApplianceDeps(t)
	e.srv = gateway.New(cfg, gateway.Deps{Store: e.store, Issuer: e.issuer, Verifier: auth.NewVerifier(e.authc, e.key), Tickets: e.tickets, Devices: devices})
	return &applianceEnv{env: e, devices: devices}
}

// newApplianceDeps builds what a gateway with appliances needs on an
// embedded store: the env (store, keys, tickets) and the device service.
func newApplianceDeps(t testing.TB) (*env, *device.Service) {
	t.Helper()
	dir := t.TempDir()
	store, err := embedded.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	key, err := auth.LoadOrCreateKey(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	seal, err := device.LoadOrCreateSealKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	rules, err := device.ParseRules([]byte(applianceRules))
	if err != nil {
		t.Fatal(err)
	}
	ac := auth.Config{}
	e := &env{store: store, key: key, authc: ac, issuer: auth.NewIssuer(ac, key, store), tickets: ticket.New(store)}
	devices, err := device.New(store, e.tickets, e.issuer, device.Config{SealKey: seal, Rules: rules})
	if err != nil {
		t.Fatal(err)
	}
	return e, devices
}

type simUnit struct {
	id, serial string
	secret     []byte
	seq        uint64
}

func (u *simUnit) frame(readings map[string]float64, codes ...string) api.SignedFrame {
	u.seq++
	return device.SignFrame(u.secret, api.Frame{Serial: u.serial, Seq: u.seq, At: time.Now().UTC(), Readings: readings, FaultCodes: codes})
}

// importUnits registers n appliances through the admin route.
func (e *applianceEnv) importUnits(t testing.TB, n int) []*simUnit {
	t.Helper()
	var req api.ImportAppliancesRequest
	units := make([]*simUnit, n)
	for i := range units {
		u := &simUnit{serial: fmt.Sprintf("GW-%s", rand.Text()[:12]), secret: make([]byte, 32)}
		_, _ = rand.Read(u.secret)
		units[i] = u
		req.Appliances = append(req.Appliances, api.ApplianceImport{Serial: u.serial, Model: "PJ-100", Secret: base64.StdEncoding.EncodeToString(u.secret)})
	}
	body, _ := json.Marshal(req)
	var res api.ImportAppliancesResult
	decodeJSON(t, e.do(t, "POST", "/v1/appliances", e.token(t, "root", auth.RoleAdmin), body), 201, &res)
	for i, a := range res.Created {
		units[i].id = a.ID
	}
	return units
}

func (e *applianceEnv) pair(t testing.TB, u *simUnit, cust string) string {
	t.Helper()
	body, _ := json.Marshal(api.PairRequest{Serial: u.serial, Code: device.PairingCode(u.secret, time.Now(), false)})
	var res api.PairResult
	decodeJSON(t, e.do(t, "POST", "/v1/appliances/pair", e.token(t, cust, auth.RoleCustomer), body), 200, &res)
	return res.Token
}

func (e *applianceEnv) streamLen(t testing.TB) int64 {
	n, err := e.store.XLen(t.Context(), ticket.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestAppliancePairingOverHTTP(t *testing.T) {
	e := newApplianceEnv(t, gateway.Config{})
	u := e.importUnits(t, 1)[0]
	joe := e.token(t, "joe", auth.RoleCustomer)
	pair := func(tok string, code string) *http.Response {
		body, _ := json.Marshal(api.PairRequest{Serial: u.serial, Code: code})
		return e.do(t, "POST", "/v1/appliances/pair", tok, body)
	}
	right := device.PairingCode(u.secret, time.Now(), false)
	wrong := "00000000"
	if wrong == right {
		wrong = "00000001"
	}
	readProblem(t, pair(joe, wrong), 403, api.CodePairingCodeWrong)
	readProblem(t, pair(joe, device.PairingCode(u.secret, time.Now().Add(-5*time.Minute), false)), 410, api.CodePairingCodeExpired)
	readProblem(t, pair(joe, "12"), 422, api.CodeValidation)
	readProblem(t, pair(e.token(t, "ag", auth.RoleAgent), right), 403, api.CodeForbidden)
	readProblem(t, pair("", right), 401, api.CodeUnauthorized)
	var res api.PairResult
	decodeJSON(t, pair(joe, right), 200, &res)
	if res.Appliance.OwnerID != "joe" || res.Token == "" {
		t.Fatalf("pair %+v", res)
	}
	readProblem(t, pair(joe, right), 409, api.CodePairingCodeUsed)
	// Eve cannot see, release or grant on Joe's appliance: 404.
	eve := e.token(t, "eve", auth.RoleCustomer)
	readProblem(t, e.do(t, "GET", "/v1/appliances/"+u.id, eve, nil), 404, api.CodeNotFound)
	readProblem(t, e.do(t, "DELETE", "/v1/appliances/"+u.id+"/owner", eve, nil), 404, api.CodeNotFound)
	readProblem(t, e.do(t, "POST", "/v1/appliances/"+u.id+"/grants", eve, []byte(`{}`)), 404, api.CodeNotFound)
	var a api.Appliance
	decodeJSON(t, e.do(t, "GET", "/v1/appliances/"+u.id, joe, nil), 200, &a)
	// The relay token refreshes.
	var rt api.RelayToken
	decodeJSON(t, e.do(t, "POST", "/v1/appliances/"+u.id+"/relay-token", res.Token, nil), 200, &rt)
	if rt.Token == "" {
		t.Fatal("no refreshed token")
	}
	if res := e.do(t, "DELETE", "/v1/appliances/"+u.id+"/owner", joe, nil); res.StatusCode != 204 {
		t.Fatalf("release: %d", res.StatusCode)
	}
}

func TestApplianceGuessingIsLockedOutOverHTTP(t *testing.T) {
	e := newApplianceEnv(t, gateway.Config{RateSubject: -1, RateIP: -1})
	u := e.importUnits(t, 1)[0]
	right := device.PairingCode(u.secret, time.Now(), false)
	locked := 0
	for i := range 1000 {
		code := fmt.Sprintf("%08d", i)
		if code == right {
			continue
		}
		body, _ := json.Marshal(api.PairRequest{Serial: u.serial, Code: code})
		res := e.do(t, "POST", "/v1/appliances/pair", e.token(t, fmt.Sprintf("m%d", i%50), auth.RoleCustomer), body)
		switch res.StatusCode {
		case 429:
			if res.Header.Get("Retry-After") == "" {
				t.Fatal("429 without Retry-After")
			}
			locked++
		case 403, 410:
		default:
			t.Fatalf("guess %d: %d", i, res.StatusCode)
		}
		res.Body.Close()
	}
	if locked < 1000-device.MaxFailuresPerSerial-1 {
		t.Fatalf("only %d of 1000 guesses locked out", locked)
	}
	body, _ := json.Marshal(api.PairRequest{Serial: u.serial, Code: right})
	readProblem(t, e.do(t, "POST", "/v1/appliances/pair", e.token(t, "joe", auth.RoleCustomer), body), 429, api.CodeRateLimited)
}

func TestApplianceDiagnosticsOverHTTP(t *testing.T) {
	e := newApplianceEnv(t, gateway.Config{})
	us := e.importUnits(t, 2)
	u, v := us[0], us[1]
	relay := e.pair(t, u, "joe")
	relayV := e.pair(t, v, "eve")
	post := func(tok, id string, fs ...api.SignedFrame) *http.Response {
		body, _ := json.Marshal(api.DiagnosticsBatch{Frames: fs})
		return e.do(t, "POST", "/v1/appliances/"+id+"/diagnostics", tok, body)
	}
	f1, f2 := u.frame(map[string]float64{"lamp_temp_c": 80}), u.frame(nil, "E42")
	var res api.DiagnosticsResult
	decodeJSON(t, post(relay, u.id, f1, f2), 202, &res)
	if res.Accepted != 2 {
		t.Fatalf("result %+v", res)
	}
	before := e.streamLen(t)
	bad := u.frame(nil)
	bad.Sig = base64.StdEncoding.EncodeToString(make([]byte, 32))
	readProblem(t, post(relay, u.id, u.frame(nil), bad), 422, api.CodeBadFrame)
	readProblem(t, post(relay, u.id, u.frame(map[string]float64{"lamp_temp_c": 5000})), 422, api.CodeBadFrame)
	readProblem(t, post(relay, u.id, f1, f2), 409, api.CodeFramesReplayed)
	readProblem(t, post(relayV, u.id, u.frame(nil)), 404, api.CodeNotFound)
	readProblem(t, post(e.token(t, "joe", auth.RoleCustomer), u.id, u.frame(nil)), 403, api.CodeForbidden)
	readProblem(t, e.do(t, "POST", "/v1/appliances/"+u.id+"/diagnostics", relay, []byte(`{"frames":"x"}`)), 400, api.CodeMalformedJSON)
	readProblem(t, post(relay, u.id), 422, api.CodeValidation)
	if after := e.streamLen(t); after != before {
		t.Fatalf("refused requests wrote %d events", after-before)
	}
	// Agents: no live view without a grant; with one, yes; revoked, no.
	ag := e.token(t, "ag1", auth.RoleAgent)
	joe := e.token(t, "joe", auth.RoleCustomer)
	readProblem(t, e.do(t, "GET", "/v1/appliances/"+v.id+"/diagnostics", ag, nil), 403, api.CodeNoConsent)
	var g api.Grant
	decodeJSON(t, e.do(t, "POST", "/v1/appliances/"+u.id+"/grants", joe, []byte(`{"hours":2}`)), 201, &g)
	readProblem(t, e.do(t, "POST", "/v1/appliances/"+u.id+"/grants", joe, []byte(`{"hours":169}`)), 422, api.CodeValidation)
	var live api.LiveDiagnostics
	decodeJSON(t, e.do(t, "GET", "/v1/appliances/"+u.id+"/diagnostics", ag, nil), 200, &live)
	if len(live.Frames) != 2 {
		t.Fatalf("live %+v", live)
	}
	// A self-test goes to the phone, which fetches it once.
	var cmd api.Command
	decodeJSON(t, e.do(t, "POST", "/v1/appliances/"+u.id+"/commands", ag, []byte(`{"kind":"self_test"}`)), 202, &cmd)
	var cl api.CommandList
	decodeJSON(t, e.do(t, "GET", "/v1/appliances/"+u.id+"/commands", relay, nil), 200, &cl)
	if len(cl.Commands) != 1 || cl.Commands[0].ID != cmd.ID {
		t.Fatalf("commands %+v", cl)
	}
	readProblem(t, e.do(t, "GET", "/v1/appliances/"+u.id+"/commands", relayV, nil), 404, api.CodeNotFound)
	if res := e.do(t, "DELETE", "/v1/appliances/"+u.id+"/grants", joe, nil); res.StatusCode != 204 {
		t.Fatalf("revoke %d", res.StatusCode)
	}
	readProblem(t, e.do(t, "GET", "/v1/appliances/"+u.id+"/diagnostics", ag, nil), 403, api.CodeNoConsent)
	// The fault in f2 opened a ticket Joe sees, with the part order on it.
	var list api.TicketList
	decodeJSON(t, e.do(t, "GET", "/v1/tickets", joe, nil), 200, &list)
	if len(list.Tickets) != 1 || list.Tickets[0].ApplianceID != u.id {
		t.Fatalf("tickets %+v", list)
	}
	// The server still serves.
	decodeJSON(t, e.do(t, "GET", "/v1/me", joe, nil), 200, nil)
}

// TestPairingCodeRefusedAsOwnedStaysUsable: the right code for an
// appliance someone else owns is refused (409 appliance_owned) without
// being used up, so once the seller releases it the buyer pairs with the
// code still on the panel instead of being told it was already used.
func TestPairingCodeRefusedAsOwnedStaysUsable(t *testing.T) {
	e := newApplianceEnv(t, gateway.Config{})
	u := e.importUnits(t, 1)[0]
	pair := func(tok, code string) *http.Response {
		return e.do(t, "POST", "/v1/appliances/pair", tok, mustJSON(t, api.PairRequest{Serial: u.serial, Code: code}))
	}
	seller, buyer := e.token(t, "seller", auth.RoleCustomer), e.token(t, "buyer", auth.RoleCustomer)
	// The seller paired with the panel's previous code (still accepted:
	// one step of skew), so the buyer's is a fresh one.
	decodeJSON(t, pair(seller, device.PairingCode(u.secret, time.Now().Add(-device.CodeStep), false)), 200, nil)
	code := device.PairingCode(u.secret, time.Now(), false)
	readProblem(t, pair(buyer, code), 409, api.CodeApplianceOwned)
	if res := e.do(t, "DELETE", "/v1/appliances/"+u.id+"/owner", seller, nil); res.StatusCode != 204 {
		t.Fatalf("release: %d", res.StatusCode)
	}
	var res api.PairResult
	decodeJSON(t, pair(buyer, code), 200, &res)
	if res.Appliance.OwnerID != "buyer" {
		t.Fatalf("paired %+v", res.Appliance)
	}
}

// TestIdempotentRetryAfterTooManyRequests: a command refused with 429
// (the appliance's queue is full) is a "retry later", not an answer: the
// retry with the same Idempotency-Key, once the phone took the queue, is
// carried out instead of replaying the 429.
func TestIdempotentRetryAfterTooManyRequests(t *testing.T) {
	e := newApplianceEnv(t, gateway.Config{})
	u := e.importUnits(t, 1)[0]
	relay := e.pair(t, u, "joe")
	joe, ag := e.token(t, "joe", auth.RoleCustomer), e.token(t, "ag1", auth.RoleAgent)
	decodeJSON(t, e.do(t, "POST", "/v1/appliances/"+u.id+"/grants", joe, []byte(`{"hours":2}`)), 201, nil)
	send := func(hdr ...string) *http.Response {
		return e.do(t, "POST", "/v1/appliances/"+u.id+"/commands", ag, []byte(`{"kind":"self_test"}`), hdr...)
	}
	for full := false; !full; {
		res := send()
		if full = res.StatusCode == 429; full {
			res.Body.Close()
		} else {
			decodeJSON(t, res, 202, nil)
		}
	}
	readProblem(t, send("Idempotency-Key", "k1"), 429, api.CodeRateLimited)
	var cl api.CommandList
	decodeJSON(t, e.do(t, "GET", "/v1/appliances/"+u.id+"/commands", relay, nil), 200, &cl)
	if len(cl.Commands) == 0 {
		t.Fatal("the phone found no commands")
	}
	var cmd api.Command
	res := send("Idempotency-Key", "k1")
	if res.Header.Get("Idempotent-Replayed") != "" {
		t.Fatal("the retry replayed the 429")
	}
	decodeJSON(t, res, 202, &cmd)
	if cmd.ID == "" {
		t.Fatalf("command %+v", cmd)
	}
}
