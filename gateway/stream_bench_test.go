package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/gateway"
	"github.com/switchboard/switchboard/internal/poll"
	"github.com/switchboard/switchboard/internal/redistest"
	"github.com/switchboard/switchboard/state"
	"github.com/switchboard/switchboard/state/backend"
	"github.com/switchboard/switchboard/ticket"
)

// BenchmarkFeed appends events while 1,000 WebSocket subscribers are
// connected over loopback and reports events/s appended and the p50/p99
// delay from the start of Append to the frame being read by its client.
// Each subscriber is a customer watching their own ticket, so each event
// has one recipient (the goal: >= 50,000 events/s embedded, p99 <
// 50 ms). "broadcast" is the other extreme: 1,000 agents, every event to
// every one of them. "fanout" appends as fast as 128 appenders can, so
// its delay includes the queue in front of the store at saturation;
// "paced" is the same fan-out at pacedRate events/s, below saturation:
// the delay a client sees under a steady heavy load.
//
//	go test -run x -bench 'Feed/.*/fanout' -benchtime 20000x ./gateway/
//	go test -run x -bench 'Feed/.*/paced' -benchtime 20000x ./gateway/
//	go test -run x -bench 'Feed/.*/broadcast' -benchtime 500x ./gateway/
func BenchmarkFeed(b *testing.B) {
	for _, mode := range []string{"embedded", "redis"} {
		b.Run(mode+"/fanout=1", func(b *testing.B) { benchFeed(b, mode, false, 0) })
		b.Run(mode+"/paced", func(b *testing.B) { benchFeed(b, mode, false, pacedRate) })
		b.Run(mode+"/broadcast", func(b *testing.B) { benchFeed(b, mode, true, broadcastRate) })
	}
}

// broadcastRate is the paced append rate of the broadcast case, events/s:
// every event costs 1,000 frames, and the fan-out sustains about 300,000
// frames/s on 2 cores, so the delay measured is delivery, not a growing
// backlog. pacedRate is the fan-out case's paced rate, a third of what
// it sustains unpaced on 2 cores.
const (
	broadcastRate = 100
	pacedRate     = 2000
)

// benchFeed runs one case; rate > 0 paces the appends at rate events/s.
func benchFeed(b *testing.B, mode string, broadcast bool, rate int) {
	const subscribers = 1000
	const appenders = 128
	cfg := backend.Config{DataDir: b.TempDir()}
	if mode == "redis" {
		cfg.RedisURL = redistest.Start(b).URL()
	}
	store, err := backend.Open(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	e := benchStreamEnv(b, store)

	tickets := make([]string, subscribers)
	conns := make([]*websocket.Conn, subscribers)
	for i := range subscribers {
		cust := fmt.Sprint("cust", i)
		tk, err := e.tickets.Open(context.Background(), ticket.System, api.OpenTicketRequest{CustomerID: cust, Subject: "s"})
		if err != nil {
			b.Fatal(err)
		}
		tickets[i] = tk.ID
	}
	// Connect once every ticket is open, so nobody sees a ticket_opened.
	for i := range subscribers {
		tok := e.token(b, fmt.Sprint("cust", i), auth.RoleCustomer)
		if broadcast {
			tok = e.token(b, fmt.Sprint("agent", i), auth.RoleAgent)
		}
		c, _, err := e.tryDial(tok, "", nil)
		if err != nil {
			b.Fatal(err)
		}
		conns[i] = c
	}
	poll.Until(b, 30*time.Second, 20*time.Millisecond, func() error {
		if n := e.hub.Stats().Subscribers; n != subscribers {
			return fmt.Errorf("%d subscribers", n)
		}
		return nil
	})

	want := int64(b.N)
	if broadcast {
		want *= subscribers
	}
	var received atomic.Int64
	allIn := make(chan struct{})
	lat := make([][]time.Duration, subscribers)
	var readers sync.WaitGroup
	for i, c := range conns {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				_, msg, err := c.ReadMessage()
				if err != nil {
					return
				}
				now := time.Now()
				var ev struct {
					Payload api.MessagePayload `json:"payload"`
				}
				if json.Unmarshal(msg, &ev) != nil {
					continue
				}
				sent, _ := strconv.ParseInt(ev.Payload.Text, 10, 64)
				lat[i] = append(lat[i], now.Sub(time.Unix(0, sent)))
				if received.Add(1) == want {
					close(allIn)
				}
			}
		}()
	}

	b.ResetTimer()
	start := time.Now()
	// jobs hands out event numbers: at once, or one every 1/rate seconds.
	jobs := make(chan int, appenders)
	go func() {
		defer close(jobs)
		due := time.Now()
		for i := range b.N {
			if rate > 0 {
				due = due.Add(time.Second / time.Duration(rate))
				time.Sleep(time.Until(due))
			}
			jobs <- i
		}
	}()
	var wg sync.WaitGroup
	for range appenders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				p, _ := json.Marshal(api.MessagePayload{Text: strconv.FormatInt(time.Now().UnixNano(), 10)})
				if _, err := e.tickets.Append(context.Background(), api.Event{TicketID: tickets[i%subscribers], Type: api.EventMessage, Payload: p}); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	appendSecs := time.Since(start).Seconds()
	select {
	case <-allIn:
	case <-time.After(60 * time.Second):
		b.Errorf("delivered %d of %d (slow consumers cut: %d)", received.Load(), want, e.hub.Stats().SlowConsumers)
	}
	b.StopTimer()
	for _, c := range conns {
		c.Close()
	}
	readers.Wait()
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	slices.Sort(all)
	if len(all) > 0 {
		b.ReportMetric(float64(all[len(all)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "p99-ms")
	}
	b.ReportMetric(float64(b.N)/appendSecs, "events/s")
	b.ReportMetric(float64(len(all))/time.Since(start).Seconds(), "deliveries/s")
	b.ReportMetric(0, "ns/op")
}

// benchStreamEnv is newStreamEnv on a given store, without the leak check
// (a benchmark runs its body several times) and without rate limits.
func benchStreamEnv(b *testing.B, store state.Store) *streamEnv {
	return streamEnvOn(b, store, gateway.Config{RateIP: -1, RateSubject: -1}, ticket.HubConfig{})
}
