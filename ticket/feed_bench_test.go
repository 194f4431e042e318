package ticket_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/state/embedded"
	"github.com/switchboard/switchboard/ticket"
)

// BenchmarkAppend measures raw ticket.Service.Append throughput in
// embedded mode with many concurrent appenders (the embedded store batches
// them, one write-ahead log fdatasync per batch). Goal of issue 3: 50,000
// events/s.
//
//	go test -run x -bench Append -benchtime 20000x ./ticket/
func BenchmarkAppend(b *testing.B) {
	for _, appenders := range []int{1, 64, 256, 1024} {
		b.Run(fmt.Sprintf("appenders=%d", appenders), func(b *testing.B) {
			st, err := embedded.Open(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			svc := ticket.New(st)
			const tickets = 100
			ids := make([]string, tickets)
			for i := range ids {
				tk, err := svc.Open(context.Background(), ticket.System, api.OpenTicketRequest{CustomerID: fmt.Sprint("c", i), Subject: "s"})
				if err != nil {
					b.Fatal(err)
				}
				ids[i] = tk.ID
			}
			payload, _ := json.Marshal(api.MessagePayload{Text: "the projector shows a red light"})
			var n atomic.Int64
			b.ResetTimer()
			start := time.Now()
			done := make(chan error, appenders)
			for range appenders {
				go func() {
					for {
						i := n.Add(1)
						if i > int64(b.N) {
							done <- nil
							return
						}
						_, err := svc.Append(context.Background(), api.Event{TicketID: ids[i%tickets], Type: api.EventMessage, Payload: payload})
						if err != nil {
							done <- err
							return
						}
					}
				}()
			}
			for range appenders {
				if err := <-done; err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
		})
	}
}
