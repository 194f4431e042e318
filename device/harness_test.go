package device_test

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/device"
	"github.com/switchboard/switchboard/internal/redistest"
	"github.com/switchboard/switchboard/state"
	"github.com/switchboard/switchboard/state/embedded"
	"github.com/switchboard/switchboard/state/redis"
	"github.com/switchboard/switchboard/ticket"
)

// clock is a settable clock shared by the services under test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// rig is the appliance service on a real store: embedded (newRig), or
// each backend in turn (forEachBackend).
type rig struct {
	st       state.Store
	tickets  *ticket.Service
	issuer   *auth.Issuer
	verifier *auth.Verifier
	svc      *device.Service
	clock    *clock
	dataDir  string
	// node opens another handle on st's data, as a second gateway node
	// has: another Redis client, or the same embedded store.
	node func(testing.TB) state.Store
}

const testRules = `{
  "rules": [
    {"model": "PJ-100", "code": "E42", "action": "order_part", "sku": "LAMP-100", "description": "lamp failure"},
    {"model": "PJ-100", "code": "E50", "action": "dispatch_technician", "skill": "optics", "priority": "urgent"},
    {"model": "*", "code": "E99", "action": "sales_lead", "reason": "main board end of life"},
    {"model": "*", "code": "W01", "action": "notify", "description": "filter needs cleaning"},
    {"model": "*", "code": "E10", "action": "open_ticket", "priority": "normal"}
  ],
  "ranges": {"PJ-100": {"lamp_temp_c": [-40, 400]}}
}`

func newRig(t testing.TB) *rig {
	t.Helper()
	dir := t.TempDir()
	st, err := embedded.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return newRigOn(t, st, dir)
}

// backend is one state implementation the appliance logic runs on.
type backend struct {
	// open returns a new, empty store, a data directory for the seal
	// key, and a function opening another handle on the store's data.
	open func(t testing.TB) (state.Store, string, func(testing.TB) state.Store)
}

// rig is a fresh rig on b.
func (b backend) rig(t testing.TB) *rig {
	t.Helper()
	st, dir, node := b.open(t)
	r := newRigOn(t, st, dir)
	r.node = node
	return r
}

// forEachBackend runs body on the embedded store and on a real
// redis-server (the store_test habit: one body, every backend), so the
// appliance logic is proven in both modes. The MQTT tests stay embedded:
// their subject is the broker, and the store under them is proven here.
func forEachBackend(t *testing.T, body func(t *testing.T, b backend)) {
	t.Helper()
	t.Run("embedded", func(t *testing.T) {
		body(t, backend{open: func(t testing.TB) (state.Store, string, func(testing.TB) state.Store) {
			dir := t.TempDir()
			st, err := embedded.Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			// One process is all the embedded mode has: a second node's
			// handle is the same store.
			return st, dir, func(testing.TB) state.Store { return st }
		}})
	})
	t.Run("redis", func(t *testing.T) {
		srv := redistest.Start(t)
		connect := func(t testing.TB, prefix string) state.Store {
			t.Helper()
			st, err := redis.New(context.Background(), redis.Config{URL: srv.URL(), Prefix: prefix})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return st
		}
		n := 0
		body(t, backend{open: func(t testing.TB) (state.Store, string, func(testing.TB) state.Store) {
			// Each store is its own key space on the one server, so two
			// rigs of a test do not see each other's appliances.
			n++
			prefix := fmt.Sprintf("dev%d:", n)
			return connect(t, prefix), t.TempDir(), func(t testing.TB) state.Store { return connect(t, prefix) }
		}})
	})
}

func newRigOn(t testing.TB, st state.Store, dir string) *rig {
	t.Helper()
	key, err := auth.LoadOrCreateKey(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	seal, err := device.LoadOrCreateSealKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	rules, err := device.ParseRules([]byte(testRules))
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{t: time.Now().UTC()}
	r := &rig{st: st, tickets: ticket.New(st), issuer: auth.NewIssuer(auth.Config{}, key, st), verifier: auth.NewVerifier(auth.Config{}, key), clock: c, dataDir: dir,
		node: func(testing.TB) state.Store { return st }}
	r.svc, err = device.New(st, r.tickets, r.issuer, device.Config{SealKey: seal, Rules: rules, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// unit is a simulated appliance: what the factory provisioned.
type unit struct {
	id, serial, model string
	secret            []byte
	seq               uint64
}

func (u *unit) frame(at time.Time, readings map[string]float64, codes ...string) api.SignedFrame {
	u.seq++
	return device.SignFrame(u.secret, api.Frame{Serial: u.serial, Seq: u.seq, At: at, Readings: readings, FaultCodes: codes})
}

var serialN struct {
	sync.Mutex
	n int
}

// register imports one appliance of model with a fresh secret.
func (r *rig) register(t testing.TB, model string) *unit {
	t.Helper()
	serialN.Lock()
	serialN.n++
	n := serialN.n
	serialN.Unlock()
	u := &unit{serial: fmt.Sprintf("SN-%s-%06d", model, n), model: model, secret: make([]byte, 32)}
	_, _ = rand.Read(u.secret)
	res, err := r.svc.Import(context.Background(), api.ImportAppliancesRequest{Appliances: []api.ApplianceImport{
		{Serial: u.serial, Model: model, Firmware: "1.0.0", Secret: base64.StdEncoding.EncodeToString(u.secret)},
	}})
	if err != nil || len(res.Created) != 1 {
		t.Fatalf("import: %v %+v", err, res)
	}
	u.id = res.Created[0].ID
	return u
}

func customer(id string) device.Caller { return device.Caller{ID: id, Role: auth.RoleCustomer} }
func agent(id string) device.Caller    { return device.Caller{ID: id, Role: auth.RoleAgent} }

// pair pairs u to cust and returns the relay token's caller.
func (r *rig) pair(t testing.TB, u *unit, cust string) device.Caller {
	t.Helper()
	res, err := r.svc.Pair(context.Background(), customer(cust), api.PairRequest{Serial: u.serial, Code: device.PairingCode(u.secret, r.clock.now(), false)})
	if err != nil {
		t.Fatalf("pair: %v", err)
	}
	return r.relayCaller(t, res.Token)
}

func (r *rig) relayCaller(t testing.TB, tok string) device.Caller {
	t.Helper()
	cl, err := r.verifier.Verify(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	return device.CallerFrom(cl)
}

// events returns every event of the stream of type typ.
func (r *rig) events(t testing.TB, typ api.EventType) []api.Event {
	t.Helper()
	es, err := r.st.XRead(context.Background(), ticket.StreamEvents, "0", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []api.Event
	for _, e := range es {
		ev, err := ticket.DecodeEvent(e)
		if err != nil {
			t.Fatal(err)
		}
		if ev.Type == typ {
			out = append(out, *ev)
		}
	}
	return out
}

func diagOf(t testing.TB, ev api.Event) api.DiagnosticPayload {
	t.Helper()
	var p api.DiagnosticPayload
	if err := json.Unmarshal(ev.Payload, &p); err != nil {
		t.Fatal(err)
	}
	return p
}

func (r *rig) streamLen(t testing.TB) int64 {
	t.Helper()
	n, err := r.st.XLen(context.Background(), ticket.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func customerViewer(id string) ticket.Viewer { return ticket.Viewer{ID: id, Role: auth.RoleCustomer} }
func staffViewer() ticket.Viewer             { return ticket.Viewer{ID: "ag1", Role: auth.RoleAgent} }

// signRaw signs exact frame bytes as an appliance does.
func signRaw(secret, raw []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("sbframe1."))
	m.Write(raw)
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// testLogger writes to the test log, so a failure shows what happened.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tlogWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tlogWriter struct{ t testing.TB }

func (w tlogWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}
