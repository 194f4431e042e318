package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/gateway"
	"github.com/switchboard/switchboard/internal/redistest"
	"github.com/switchboard/switchboard/location"
	"github.com/switchboard/switchboard/state"
	"github.com/switchboard/switchboard/state/redis"
)

// ingestBatch is the fixes per request: what the SDK's reporter sends
// after a minute offline at 1 Hz, rounded up.
const ingestBatch = 100

// benchIngest posts batches of fixes over real HTTP from many
// technicians at once and reports fixes/s.
func benchIngest(b *testing.B, store state.Store) {
	e := newLocEnv(b, gateway.Config{RateIP: -1, RateSubject: -1}, location.Config{FixesPerMinute: 1 << 30}, store)
	addr := e.listen(b)
	const techs = 256
	toks := make([]string, techs)
	for i := range toks {
		toks[i] = e.token(b, fmt.Sprintf("bench-tech-%d", i), auth.RoleTechnician)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 256}}
	var next atomic.Int64
	base := time.Now().Add(-time.Hour)
	b.SetParallelism(32)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			n := next.Add(1)
			tech := int(n % techs)
			seq := int(n / techs)
			fixes := make([]api.Fix, ingestBatch)
			for j := range fixes {
				// Each technician's batches move forward in time, 1 Hz.
				at := base.Add(time.Duration(seq*ingestBatch+j) * time.Second / 50)
				fixes[j] = api.Fix{Lat: 52.5 + float64(tech)*0.001 + float64(j)*1e-5, Lon: 13.4, AccuracyM: 5, Time: at}
			}
			body, _ := json.Marshal(api.PositionBatch{Fixes: fixes})
			req, _ := http.NewRequestWithContext(context.Background(), "POST", "http://"+addr+"/v1/technicians/me/positions", bytes.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+toks[tech])
			req.Header.Set("Content-Type", "application/json")
			res, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != 200 {
				b.Errorf("status %d", res.StatusCode)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N*ingestBatch)/time.Since(start).Seconds(), "fixes/s")
}

// BenchmarkPositionsIngest is fixes/s through POST /v1/technicians/me/positions.
func BenchmarkPositionsIngest(b *testing.B) {
	b.Run("embedded", func(b *testing.B) { benchIngest(b, nil) })
	b.Run("redis", func(b *testing.B) {
		srv := redistest.Start(b)
		st, err := redis.New(context.Background(), redis.Config{URL: srv.URL() + "?pool_size=128", Prefix: "bench:"})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { st.Close() })
		benchIngest(b, st)
	})
}
