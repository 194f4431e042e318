package gateway_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/gateway"
)

// BenchmarkApplianceDiagnosticsHTTP measures signed frames verified and
// written per second through POST /v1/appliances/{id}/diagnostics in
// batches of 1,000, over loopback HTTP, in embedded mode (bbolt, fsync per
// commit): 8 phones relaying for 8 appliances at once.
func BenchmarkApplianceDiagnosticsHTTP(b *testing.B) {
	e := newApplianceEnv(b, gateway.Config{RateSubject: -1, RateIP: -1, BodyLimit: 4 << 20})
	addr := e.listen(b)
	const phones, batch = 8, 1000
	units := e.importUnits(b, phones)
	tokens := make([]string, phones)
	for i, u := range units {
		tokens[i] = e.pair(b, u, fmt.Sprintf("cust-%d", i))
	}
	// Sign every frame before the clock starts: signing is the appliance's
	// work, not the gateway's.
	bodies := make([][][]byte, phones)
	batches := max(1, b.N/(phones*batch))
	for i, u := range units {
		for range batches {
			fs := make([]api.SignedFrame, batch)
			for k := range fs {
				fs[k] = u.frame(map[string]float64{"lamp_temp_c": 70, "fan_rpm": 1200, "hours": 5000})
			}
			body, _ := json.Marshal(api.DiagnosticsBatch{Frames: fs})
			bodies[i] = append(bodies[i], body)
		}
	}
	client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: phones}}
	var accepted atomic.Int64
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for i := range phones {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, body := range bodies[i] {
				req, _ := http.NewRequest("POST", "http://"+addr+"/v1/appliances/"+units[i].id+"/diagnostics", bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+tokens[i])
				req.Header.Set("Content-Type", "application/json")
				res, err := client.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				var r api.DiagnosticsResult
				data, _ := io.ReadAll(res.Body)
				res.Body.Close()
				if res.StatusCode != 202 || json.Unmarshal(data, &r) != nil {
					b.Errorf("status %d: %s", res.StatusCode, data)
					return
				}
				accepted.Add(int64(r.Accepted))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if n := accepted.Load(); n != int64(phones*batch*batches) {
		b.Fatalf("accepted %d of %d", n, phones*batch*batches)
	}
	b.ReportMetric(float64(accepted.Load())/elapsed.Seconds(), "frames/s")
	b.ReportMetric(0, "ns/op")
}
