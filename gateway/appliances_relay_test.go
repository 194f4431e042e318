package gateway_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	fws "github.com/fasthttp/websocket"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/gateway"
	"github.com/switchboard/switchboard/ticket"
)

// dialRelay opens the relay WebSocket of appliance id with tok in the
// query, as a browser would send it.
func dialRelay(addr, id, tok string, hdr http.Header) (*fws.Conn, *http.Response, error) {
	return fws.DefaultDialer.Dial("ws://"+addr+"/v1/appliances/"+id+"/relay?access_token="+tok, hdr)
}

func mustDialRelay(t testing.TB, addr, id, tok string) *fws.Conn {
	t.Helper()
	c, res, err := dialRelay(addr, id, tok, nil)
	if err != nil {
		status := 0
		if res != nil {
			status = res.StatusCode
		}
		t.Fatalf("dial relay: %v (status %d)", err, status)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// nextRelay reads the gateway's next message.
func nextRelay(t testing.TB, c *fws.Conn) api.RelayMessage {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var m api.RelayMessage
	if err := c.ReadJSON(&m); err != nil {
		t.Fatalf("read relay message: %v", err)
	}
	return m
}

// sendBatch sends one batch and returns the reply to it.
func sendBatch(t testing.TB, c *fws.Conn, id string, fs ...api.SignedFrame) api.RelayMessage {
	t.Helper()
	raw, _ := json.Marshal(api.RelayBatch{ID: id, Frames: fs})
	return sendRaw(t, c, raw)
}

func sendRaw(t testing.TB, c *fws.Conn, raw []byte) api.RelayMessage {
	t.Helper()
	_ = c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if err := c.WriteMessage(fws.TextMessage, raw); err != nil {
		t.Fatal(err)
	}
	m := nextRelay(t, c)
	if m.Type != api.RelayReply {
		t.Fatalf("got %+v, want a reply", m)
	}
	return m
}

func wantProblem(t testing.TB, m api.RelayMessage, id string, status int, code string) {
	t.Helper()
	if m.ID != id || m.Result != nil || m.Problem == nil || m.Problem.Status != status || m.Problem.Code != code ||
		m.Problem.Type != api.ProblemTypeBase+code || m.Problem.Title == "" {
		t.Fatalf("reply %+v (problem %+v), want %d %s for %q", m, m.Problem, status, code, id)
	}
}

func wantResult(t testing.TB, m api.RelayMessage, id string, accepted, dups int) {
	t.Helper()
	if m.ID != id || m.Problem != nil || m.Result == nil || m.Result.Accepted != accepted || m.Result.Duplicates != dups {
		t.Fatalf("reply %+v (problem %+v), want %d accepted, %d duplicates for %q", m, m.Problem, accepted, dups, id)
	}
}

// diagnosticSeqs lists the frame sequence numbers of the appliance's
// diagnostic events in the ticket stream, in stream order.
func (e *applianceEnv) diagnosticSeqs(t testing.TB, applianceID string) []uint64 {
	t.Helper()
	es, err := e.store.XRead(t.Context(), ticket.StreamEvents, "0", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []uint64
	for _, entry := range es {
		ev, err := ticket.DecodeEvent(entry)
		if err != nil {
			t.Fatal(err)
		}
		var p api.DiagnosticPayload
		if ev.Type == api.EventDiagnostic && json.Unmarshal(ev.Payload, &p) == nil && p.ApplianceID == applianceID {
			out = append(out, p.Seq)
		}
	}
	return out
}

// TestApplianceRelaySocket: batches over the relay socket become
// diagnostic events as POST's do, duplicates are reported, a bad batch is
// answered with its problem and leaves the connection usable, commands
// reach the phone on the socket, and a release ends the socket.
func TestApplianceRelaySocket(t *testing.T) {
	e := newApplianceEnv(t, gateway.Config{})
	addr := e.listen(t)
	u := e.importUnits(t, 1)[0]
	relay := e.pair(t, u, "joe")
	joe := e.token(t, "joe", auth.RoleCustomer)
	ag := e.token(t, "ag1", auth.RoleAgent)
	decodeJSON(t, e.do(t, "POST", "/v1/appliances/"+u.id+"/grants", joe, []byte(`{"hours":2}`)), 201, nil)
	command := func() api.Command {
		var cmd api.Command
		decodeJSON(t, e.do(t, "POST", "/v1/appliances/"+u.id+"/commands", ag, []byte(`{"kind":"self_test"}`)), 202, &cmd)
		return cmd
	}
	// Sent while the phone was away: handed over as the socket opens.
	early := command()
	c := mustDialRelay(t, addr, u.id, relay)
	if m := nextRelay(t, c); m.Type != api.RelayCommand || m.Command == nil || m.Command.ID != early.ID {
		t.Fatalf("first message %+v, want command %s", m, early.ID)
	}

	f1, f2, f3 := u.frame(map[string]float64{"lamp_temp_c": 80}), u.frame(nil), u.frame(nil)
	wantResult(t, sendBatch(t, c, "b1", f2, f1), "b1", 2, 0)
	wantResult(t, sendBatch(t, c, "b2", f1, f3), "b2", 1, 1)
	if got := e.diagnosticSeqs(t, u.id); len(got) != 3 || got[0] != 1 || got[1] != 2 || got[2] != 3 {
		t.Fatalf("diagnostic events of seqs %v, want [1 2 3]", got)
	}

	// Refused batches write nothing and the socket stays open.
	before := e.streamLen(t)
	f4 := u.frame(nil)
	forged := u.frame(nil)
	forged.Sig = base64.StdEncoding.EncodeToString(make([]byte, 32))
	wantProblem(t, sendBatch(t, c, "b3", f4, forged), "b3", 422, api.CodeBadFrame)
	wantProblem(t, sendBatch(t, c, "b4", f1, f2), "b4", 409, api.CodeFramesReplayed)
	wantProblem(t, sendBatch(t, c, "b5"), "b5", 422, api.CodeValidation)
	wantProblem(t, sendRaw(t, c, []byte(`{"frames":`)), "", 400, api.CodeMalformedJSON)
	wantProblem(t, sendRaw(t, c, []byte(`{"id":"b6","frames":[],"extra":1}`)), "", 400, api.CodeMalformedJSON)
	wantProblem(t, sendBatch(t, c, strings.Repeat("x", 65), f4), "", 422, api.CodeValidation)
	if after := e.streamLen(t); after != before {
		t.Fatalf("refused batches wrote %d events", after-before)
	}
	// f4 came in a refused batch, so it was never marked seen.
	wantResult(t, sendBatch(t, c, "b7", f4), "b7", 1, 0)

	// A command sent now is pushed at once, and only once.
	cmd := command()
	if m := nextRelay(t, c); m.Type != api.RelayCommand || m.Command == nil || m.Command.ID != cmd.ID || m.Command.Sig == "" {
		t.Fatalf("pushed %+v, want command %s", m, cmd.ID)
	}
	var pending api.CommandList
	decodeJSON(t, e.do(t, "GET", "/v1/appliances/"+u.id+"/commands", relay, nil), 200, &pending)
	if len(pending.Commands) != 0 {
		t.Fatalf("pushed commands still pending: %+v", pending)
	}

	// Once Joe releases the appliance, the next batch is POST's 404 and
	// the socket ends.
	if res := e.do(t, "DELETE", "/v1/appliances/"+u.id+"/owner", joe, nil); res.StatusCode != 204 {
		t.Fatalf("release: %d", res.StatusCode)
	}
	wantProblem(t, sendBatch(t, c, "b8", u.frame(nil)), "b8", 404, api.CodeNotFound)
	if code, _ := closeCode(t, c); code != gateway.CloseRelayRevoked {
		t.Fatalf("close %d after release, want %d", code, gateway.CloseRelayRevoked)
	}
}

func TestApplianceRelayRefusals(t *testing.T) {
	e := newApplianceEnv(t, gateway.Config{CORSOrigins: []string{"https://app.example.com"}})
	addr := e.listen(t)
	us := e.importUnits(t, 2)
	u, v := us[0], us[1]
	relay := e.pair(t, u, "joe")
	relayV := e.pair(t, v, "eve")

	refused := func(t *testing.T, id, tok string, hdr http.Header, status int, code string) {
		t.Helper()
		before := e.streamLen(t)
		c, res, err := dialRelay(addr, id, tok, hdr)
		if err == nil {
			c.Close()
			t.Fatal("the upgrade succeeded")
		}
		readProblem(t, res, status, code)
		if after := e.streamLen(t); after != before {
			t.Fatalf("a refused upgrade wrote %d events", after-before)
		}
	}
	t.Run("relay token of another appliance", func(t *testing.T) {
		refused(t, u.id, relayV, nil, 404, api.CodeNotFound)
	})
	t.Run("the owner's own token", func(t *testing.T) {
		// POST diagnostics takes relay tokens only; so does the socket.
		refused(t, u.id, e.token(t, "joe", auth.RoleCustomer), nil, 403, api.CodeForbidden)
	})
	t.Run("no token", func(t *testing.T) {
		refused(t, u.id, "", nil, 401, api.CodeUnauthorized)
	})
	t.Run("foreign origin", func(t *testing.T) {
		refused(t, u.id, relay, http.Header{"Origin": {"https://evil.example"}}, 403, api.CodeForbidden)
	})
	t.Run("allowed origin", func(t *testing.T) {
		c, _, err := dialRelay(addr, u.id, relay, http.Header{"Origin": {"https://app.example.com"}})
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	})
	t.Run("no upgrade", func(t *testing.T) {
		readProblem(t, e.do(t, "GET", "/v1/appliances/"+u.id+"/relay", relay, nil), 400, api.CodeBadRequest)
	})
	t.Run("oversized message closes with 1009", func(t *testing.T) {
		before := e.streamLen(t)
		c := mustDialRelay(t, addr, u.id, relay)
		// Valid JSON of one frame too many bytes: the body limit is 1 MiB.
		big := []byte(`{"id":"big","frames":[{"frame":"` + strings.Repeat("A", 1<<20) + `","sig":""}]}`)
		done := make(chan struct{})
		go func() { defer close(done); _ = c.WriteMessage(fws.TextMessage, big) }()
		if code, _ := closeCode(t, c); code != fws.CloseMessageTooBig {
			t.Fatalf("close code %d, want 1009", code)
		}
		c.Close()
		<-done
		if after := e.streamLen(t); after != before {
			t.Fatalf("an oversized message wrote %d events", after-before)
		}
	})
	t.Run("flood closes with 1008", func(t *testing.T) {
		c := mustDialRelay(t, addr, u.id, relay)
		// Far beyond the burst of 20; the refill of one a second cannot
		// keep up unless 400 messages take minutes.
		const n = 400
		done := make(chan struct{})
		go func() {
			defer close(done)
			for range n {
				if c.WriteMessage(fws.TextMessage, []byte(`{"id":"flood","frames":[]}`)) != nil {
					return
				}
			}
		}()
		replies := 0
		_ = c.SetReadDeadline(time.Now().Add(60 * time.Second))
		for {
			_, raw, err := c.ReadMessage()
			if err == nil {
				var m api.RelayMessage
				if json.Unmarshal(raw, &m) != nil || m.Type != api.RelayReply || m.Problem == nil || m.Problem.Code != api.CodeValidation {
					t.Fatalf("reply %s", raw)
				}
				replies++
				continue
			}
			var ce *fws.CloseError
			if !errors.As(err, &ce) || ce.Code != gateway.ClosePolicyViolation {
				t.Fatalf("ended with %v after %d replies, want close 1008", err, replies)
			}
			break
		}
		c.Close()
		<-done
		if replies < 20 || replies >= n {
			t.Fatalf("%d replies before the close, want the burst of 20 and not all %d", replies, n)
		}
	})
	// The refusals above left the appliance relayable.
	c := mustDialRelay(t, addr, u.id, relay)
	wantResult(t, sendBatch(t, c, "after", u.frame(nil)), "after", 1, 0)
}

// TestApplianceRelayShutdown: a node going down closes an idle relay
// socket with 1012, so the phone reconnects to another node.
func TestApplianceRelayShutdown(t *testing.T) {
	e := newApplianceEnv(t, gateway.Config{})
	addr := e.listen(t)
	u := e.importUnits(t, 1)[0]
	c := mustDialRelay(t, addr, u.id, e.pair(t, u, "joe"))
	wantResult(t, sendBatch(t, c, "b1", u.frame(nil)), "b1", 1, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.srv.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if code, _ := closeCode(t, c); code != gateway.CloseServiceRestart {
		t.Fatalf("close %d, want 1012", code)
	}
}
