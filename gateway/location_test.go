package gateway_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	fws "github.com/fasthttp/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/gateway"
	"github.com/switchboard/switchboard/location"
	"github.com/switchboard/switchboard/state"
	"github.com/switchboard/switchboard/state/embedded"
	"github.com/switchboard/switchboard/ticket"
)

// locEnv is a gateway with the location service.
type locEnv struct {
	*env
	loc *location.Service
}

func newLocEnv(t testing.TB, cfg gateway.Config, lcfg location.Config, store state.Store) *locEnv {
	t.Helper()
	if store == nil {
		var err error
		if store, err = embedded.Open(t.TempDir()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { store.Close() })
	}
	key, err := auth.LoadOrCreateKey(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ac := auth.Config{}
	e := &env{store: store, key: key, reg: prometheus.NewRegistry(), authc: ac, issuer: auth.NewIssuer(ac, key, store), tickets: ticket.New(store)}
	loc := location.New(store, e.tickets, lcfg)
	e.srv = gateway.New(cfg, gateway.Deps{Store: store, Issuer: e.issuer, Verifier: auth.NewVerifier(ac, key),
		Tickets: e.tickets, Location: loc, Registry: e.reg})
	return &locEnv{env: e, loc: loc}
}

func batchJSON(fixes ...string) []byte {
	return []byte(`{"fixes":[` + strings.Join(fixes, ",") + `]}`)
}

func fixJSON(lat, lon string, at time.Time) string {
	return fmt.Sprintf(`{"lat":%s,"lon":%s,"accuracy_m":8,"time":%q}`, lat, lon, at.UTC().Format(time.RFC3339Nano))
}

// TestLocationAbuse: every kind of bad input gets problem JSON with the
// right status, never a 500, and the server keeps serving.
func TestLocationAbuse(t *testing.T) {
	e := newLocEnv(t, gateway.Config{}, location.Config{}, nil)
	tech := e.token(t, "tech-1", auth.RoleTechnician)
	agentTok := e.token(t, "agent-1", auth.RoleAgent)
	cust := e.token(t, "cust-1", auth.RoleCustomer)
	now := time.Now()
	post := func(tok, path string, body []byte) *http.Response {
		return e.do(t, "POST", path, tok, body)
	}
	cases := []struct {
		name, tok, method, path string
		body                    []byte
		status                  int
		code                    string
	}{
		{"latitude 91", tech, "POST", "/v1/technicians/me/positions", batchJSON(fixJSON("91", "13", now)), 422, api.CodeValidation},
		{"longitude NaN", tech, "POST", "/v1/technicians/me/positions", batchJSON(fixJSON("52", "NaN", now)), 400, api.CodeMalformedJSON},
		{"longitude as string NaN", tech, "POST", "/v1/technicians/me/positions", []byte(`{"fixes":[{"lat":52,"lon":"NaN","time":"2026-01-01T00:00:00Z"}]}`), 400, api.CodeMalformedJSON},
		{"beyond redis GEO", tech, "POST", "/v1/technicians/me/positions", batchJSON(fixJSON("85.1", "13", now)), 422, api.CodeValidation},
		{"from the future", tech, "POST", "/v1/technicians/me/positions", batchJSON(fixJSON("52", "13", now.Add(time.Hour))), 422, api.CodeValidation},
		{"a day old", tech, "POST", "/v1/technicians/me/positions", batchJSON(fixJSON("52", "13", now.Add(-24*time.Hour))), 422, api.CodeValidation},
		{"empty batch", tech, "POST", "/v1/technicians/me/positions", batchJSON(), 422, api.CodeValidation},
		{"for someone else", tech, "POST", "/v1/technicians/tech-2/positions", batchJSON(fixJSON("52", "13", now)), 403, api.CodeForbidden},
		{"customer posting positions", cust, "POST", "/v1/technicians/me/positions", batchJSON(fixJSON("52", "13", now)), 403, api.CodeForbidden},
		{"customer asking for technicians", cust, "GET", "/v1/technicians/nearby?lat=52&lon=13", nil, 403, api.CodeForbidden},
		{"radius of a million km", agentTok, "GET", "/v1/technicians/nearby?lat=52&lon=13&radius_m=1000000000", nil, 422, api.CodeValidation},
		{"k of a million", agentTok, "GET", "/v1/technicians/nearby?lat=52&lon=13&k=1000000", nil, 422, api.CodeValidation},
		{"k overflowing int", agentTok, "GET", "/v1/technicians/nearby?lat=52&lon=13&k=99999999999999999999999", nil, 422, api.CodeValidation},
		{"centre beyond GEO", agentTok, "GET", "/v1/technicians/nearby?lat=89&lon=13", nil, 422, api.CodeValidation},
		{"centre NaN", agentTok, "GET", "/v1/stores/nearby?lat=NaN&lon=13", nil, 422, api.CodeValidation},
		{"no lat", agentTok, "GET", "/v1/stores/nearby?lon=13", nil, 400, api.CodeBadRequest},
		{"customer importing stores", cust, "POST", "/v1/stores/import", []byte("id\n"), 403, api.CodeForbidden},
		{"customer dispatching", cust, "POST", "/v1/tickets/x/dispatch", []byte(`{"lat":52,"lon":13}`), 403, api.CodeForbidden},
		{"dispatch of an unknown ticket", agentTok, "POST", "/v1/tickets/nope/dispatch", []byte(`{"lat":52,"lon":13}`), 404, api.CodeNotFound},
		{"agent peeking at the technician", agentTok, "GET", "/v1/tickets/nope/technician", nil, 403, api.CodeForbidden},
		{"accepting an unknown offer", tech, "POST", "/v1/technicians/me/offers/of_nope/accept", nil, 404, api.CodeNotFound},
		{"no token", "", "GET", "/v1/stores/nearby?lat=52&lon=13", nil, 401, api.CodeUnauthorized},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			readProblem(t, e.do(t, c.method, c.path, c.tok, c.body), c.status, c.code)
		})
	}
	// Still serving, and nothing was half-written.
	res := post(tech, "/v1/technicians/me/positions", batchJSON(fixJSON("52.52", "13.405", now)))
	var pr api.PositionResult
	decodeJSON(t, res, 200, &pr)
	if pr.Accepted != 1 || pr.Latest == nil {
		t.Fatalf("result %+v", pr)
	}
	var hist struct{ Fixes []api.Fix }
	decodeJSON(t, e.do(t, "GET", "/v1/technicians/me/positions", tech, nil), 200, &hist)
	if len(hist.Fixes) != 1 {
		t.Fatalf("history holds %d fixes, want only the good one", len(hist.Fixes))
	}
}

// TestPositionsRateLimited: a technician over the limit gets a 429 that
// says to come back when the minute's count starts afresh, not a whole
// minute later; what it sent is not stored.
func TestPositionsRateLimited(t *testing.T) {
	e := newLocEnv(t, gateway.Config{RateIP: -1, RateSubject: -1}, location.Config{FixesPerMinute: 3}, nil)
	tech := e.token(t, "tech-1", auth.RoleTechnician)
	// The count's windows are minutes of the Unix clock. Keep clear of a
	// window's end, so both posts fall in one window.
	if left := location.RateWindow - time.Duration(time.Now().UnixNano()%int64(location.RateWindow)); left < 5*time.Second {
		time.Sleep(left)
	}
	now := time.Now()
	decodeJSON(t, e.do(t, "POST", "/v1/technicians/me/positions", tech,
		batchJSON(fixJSON("52.52", "13.405", now.Add(-3*time.Second)), fixJSON("52.52", "13.405", now.Add(-2*time.Second)), fixJSON("52.52", "13.405", now.Add(-time.Second)))), 200, nil)
	before := time.Now()
	res := e.do(t, "POST", "/v1/technicians/me/positions", tech, batchJSON(fixJSON("52.53", "13.405", now)))
	after := time.Now()
	header := res.Header.Get("Retry-After")
	p := readProblem(t, res, 429, api.CodeRateLimited)
	w := int64(location.RateWindow)
	end := time.Unix(0, (after.UnixNano()/w+1)*w)
	lo, hi := int(end.Sub(after).Seconds()), int(math.Ceil(end.Sub(before).Seconds()))
	if p.RetryAfter < lo || p.RetryAfter > hi || header != strconv.Itoa(p.RetryAfter) {
		t.Fatalf("Retry-After %q, retry_after %d; the window ends in %d to %d s", header, p.RetryAfter, lo, hi)
	}
	var hist struct{ Fixes []api.Fix }
	decodeJSON(t, e.do(t, "GET", "/v1/technicians/me/positions", tech, nil), 200, &hist)
	if len(hist.Fixes) != 3 {
		t.Fatalf("history holds %d fixes, want the 3 of the accepted batch", len(hist.Fixes))
	}
}

// TestStoreImportHTTP: a CSV with broken rows keeps the good ones and
// reports the bad by line.
func TestStoreImportHTTP(t *testing.T) {
	e := newLocEnv(t, gateway.Config{}, location.Config{}, nil)
	admin := e.token(t, "admin-1", auth.RoleAdmin)
	cust := e.token(t, "cust-1", auth.RoleCustomer)
	csv := "id,name,lat,lon,time_zone,hours,capabilities,stock\n" +
		"s1,One,52.52,13.40,Europe/Berlin,daily 00:00-24:00,pickup,LAMP:2\n" +
		"s2,Two,abc,13.40,Europe/Berlin,daily 00:00-24:00,pickup,LAMP:2\n" +
		"s3,Three,52.53,13.41,Europe/Berlin,always,pickup,LAMP:2\n" +
		"s4,Four,52.54,13.42,Europe/Berlin,daily 00:00-24:00,repair,\n"
	var res api.ImportResult
	decodeJSON(t, e.do(t, "POST", "/v1/stores/import", admin, []byte(csv), "Content-Type", "text/csv"), 200, &res)
	if res.Imported != 2 || len(res.Errors) != 2 || res.Errors[0].Line != 3 || res.Errors[1].Line != 4 {
		t.Fatalf("import %+v", res)
	}
	var near api.NearbyStores
	decodeJSON(t, e.do(t, "GET", "/v1/stores/nearby?lat=52.52&lon=13.40&sku=LAMP&open_now=true", cust, nil), 200, &near)
	if len(near.Stores) != 1 || near.Stores[0].ID != "s1" || !near.Stores[0].OpenNow {
		t.Fatalf("nearby %+v", near)
	}
	readProblem(t, e.do(t, "POST", "/v1/stores/import", admin, []byte("x"), "Content-Type", "application/xml"), 415, api.CodeUnsupportedMedia)

	// Removing a store: admins only; it leaves lookups and nearby queries.
	readProblem(t, e.do(t, "DELETE", "/v1/stores/s1", cust, nil), 403, api.CodeForbidden)
	if r := e.do(t, "DELETE", "/v1/stores/s1", admin, nil); r.StatusCode != 204 {
		t.Fatalf("delete: %d", r.StatusCode)
	}
	readProblem(t, e.do(t, "GET", "/v1/stores/s1", cust, nil), 404, api.CodeNotFound)
	readProblem(t, e.do(t, "DELETE", "/v1/stores/s1", admin, nil), 404, api.CodeNotFound)
	decodeJSON(t, e.do(t, "GET", "/v1/stores/nearby?lat=52.52&lon=13.40&sku=LAMP", cust, nil), 200, &near)
	if len(near.Stores) != 0 {
		t.Fatalf("deleted store still nearby: %+v", near)
	}
}

// TestDispatchHTTP: dispatch, accept over HTTP, the customer follows the
// technician until arrival.
func TestDispatchHTTP(t *testing.T) {
	e := newLocEnv(t, gateway.Config{}, location.Config{}, nil)
	admin := e.token(t, "admin-1", auth.RoleAdmin)
	agentTok := e.token(t, "agent-1", auth.RoleAgent)
	tech := e.token(t, "tech-1", auth.RoleTechnician)
	cust := e.token(t, "cust-1", auth.RoleCustomer)
	other := e.token(t, "cust-2", auth.RoleCustomer)
	decodeJSON(t, e.do(t, "PUT", "/v1/technicians/tech-1/profile", admin, []byte(`{"skills":["projector"],"on_duty":true}`)), 200, nil)
	now := time.Now()
	decodeJSON(t, e.do(t, "POST", "/v1/technicians/me/positions", tech, batchJSON(fixJSON("52.5280", "13.4050", now))), 200, nil)
	var near api.NearbyTechnicians
	decodeJSON(t, e.do(t, "GET", "/v1/technicians/nearby?lat=52.52&lon=13.405&skill=projector&k=5", agentTok, nil), 200, &near)
	if len(near.Technicians) != 1 || near.Technicians[0].ETASeconds <= 0 {
		t.Fatalf("nearby %+v", near)
	}
	var tk api.Ticket
	decodeJSON(t, e.do(t, "POST", "/v1/tickets", cust, []byte(`{"subject":"projector dead"}`)), 201, &tk)
	var d api.Dispatch
	decodeJSON(t, e.do(t, "POST", "/v1/tickets/"+tk.ID+"/dispatch", agentTok, []byte(`{"lat":52.52,"lon":13.405,"skills":["projector"]}`)), 201, &d)
	if d.TechnicianID != "tech-1" || d.OfferID == "" {
		t.Fatalf("dispatch %+v", d)
	}
	readProblem(t, e.do(t, "GET", "/v1/tickets/"+tk.ID+"/technician", cust, nil), 404, api.CodeNotFound)
	var offer api.Offer
	decodeJSON(t, e.do(t, "GET", "/v1/technicians/me/offer", tech, nil), 200, &offer)
	decodeJSON(t, e.do(t, "POST", "/v1/technicians/me/offers/"+offer.ID+"/accept", tech, nil), 200, nil)
	// Accepting again (a retry after a lost answer) answers the same;
	// declining what was accepted is a conflict.
	var again api.Offer
	decodeJSON(t, e.do(t, "POST", "/v1/technicians/me/offers/"+offer.ID+"/accept", tech, nil), 200, &again)
	if again.ID != offer.ID || again.State != api.OfferAccepted {
		t.Fatalf("second accept %+v", again)
	}
	readProblem(t, e.do(t, "POST", "/v1/technicians/me/offers/"+offer.ID+"/decline", tech, nil), 409, api.CodeConflict)
	var pos api.TechnicianPosition
	decodeJSON(t, e.do(t, "GET", "/v1/tickets/"+tk.ID+"/technician", cust, nil), 200, &pos)
	if pos.TechnicianID != "tech-1" || pos.DistanceM < 800 {
		t.Fatalf("position %+v", pos)
	}
	readProblem(t, e.do(t, "GET", "/v1/tickets/"+tk.ID+"/technician", other, nil), 404, api.CodeNotFound)
	decodeJSON(t, e.do(t, "POST", "/v1/technicians/me/positions", tech, batchJSON(fixJSON("52.5201", "13.4050", now.Add(time.Second)))), 200, nil)
	readProblem(t, e.do(t, "GET", "/v1/tickets/"+tk.ID+"/technician", cust, nil), 404, api.CodeNotFound)
	var view api.TicketView
	decodeJSON(t, e.do(t, "GET", "/v1/tickets/"+tk.ID, cust, nil), 200, &view)
	seen := map[api.EventType]int{}
	for _, ev := range view.Events {
		seen[ev.Type]++
	}
	if seen[api.EventTechnicianArriving] != 1 || seen[api.EventTechnicianArrived] != 1 || seen[api.EventTechnicianDispatched] != 2 {
		t.Fatalf("events %v", seen)
	}
}

// dialPositions serves e and opens tech-ws's positions WebSocket.
func dialPositions(t *testing.T, e *locEnv) (*fws.Conn, string) {
	t.Helper()
	addr := e.listen(t)
	c, _, err := fws.DefaultDialer.Dial("ws://"+addr+"/v1/technicians/me/positions/ws?access_token="+e.token(t, "tech-ws", auth.RoleTechnician), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, addr
}

// TestPositionsWebSocket: batches over the WebSocket follow POST's rules,
// a refused batch answers a problem and the connection stays open, and a
// technician cannot stream for someone else.
func TestPositionsWebSocket(t *testing.T) {
	e := newLocEnv(t, gateway.Config{}, location.Config{}, nil)
	c, addr := dialPositions(t, e)
	now := time.Now()
	exchange := func(msg []byte) api.PositionReply {
		t.Helper()
		_ = c.SetWriteDeadline(time.Now().Add(10 * time.Second))
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if err := c.WriteMessage(fws.TextMessage, msg); err != nil {
			t.Fatal(err)
		}
		var r api.PositionReply
		if err := c.ReadJSON(&r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	if r := exchange(batchJSON(fixJSON("52.5", "13.4", now))); r.Result == nil || r.Result.Accepted != 1 {
		t.Fatalf("reply %+v", r)
	}
	if r := exchange(batchJSON(fixJSON("91", "13.4", now))); r.Problem == nil || r.Problem.Status != 422 {
		t.Fatalf("reply %+v", r)
	}
	if r := exchange([]byte(`{"fixes":`)); r.Problem == nil || r.Problem.Status != 400 {
		t.Fatalf("reply %+v", r)
	}
	if r := exchange(batchJSON(fixJSON("52.5001", "13.4", now.Add(time.Second)))); r.Result == nil || r.Result.Latest.Lat != 52.5001 {
		t.Fatalf("reply %+v", r)
	}
	_, res, err := fws.DefaultDialer.Dial("ws://"+addr+"/v1/technicians/someone-else/positions/ws?access_token="+e.token(t, "tech-ws", auth.RoleTechnician), nil)
	if err == nil || res == nil || res.StatusCode != 403 {
		t.Fatalf("streaming for someone else: %v %v", res, err)
	}
}

// TestPositionsWebSocketShutdown: a node going down closes an idle
// positions socket with 1012, as it does the other sockets, and its
// handler ends. The drain used to be looked at only when a batch came, so
// an idle technician's socket, kept open by its pongs, and the handler's
// two goroutines outlived Shutdown for good.
func TestPositionsWebSocketShutdown(t *testing.T) {
	checkNoLeaks(t)
	e := newLocEnv(t, gateway.Config{}, location.Config{}, nil)
	c, _ := dialPositions(t, e)
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if err := c.WriteMessage(fws.TextMessage, batchJSON(fixJSON("52.5", "13.4", time.Now()))); err != nil {
		t.Fatal(err)
	}
	var r api.PositionReply
	if err := c.ReadJSON(&r); err != nil || r.Result == nil {
		t.Fatalf("reply %+v, %v", r, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.srv.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	// Well within pongWait: only the drain can end the socket this soon.
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _, err := c.ReadMessage()
	var ce *fws.CloseError
	if !errors.As(err, &ce) || ce.Code != gateway.CloseServiceRestart {
		t.Fatalf("idle socket after shutdown: %v, want close 1012", err)
	}
}
