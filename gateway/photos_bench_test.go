package gateway_test

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/gateway"
	"github.com/switchboard/switchboard/media"
)

// procStatusKB reads a field (VmRSS, VmHWM) of /proc/self/status in KiB.
func procStatusKB(field string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	return 0
}

// BenchmarkUploadStorage50x8MB: 50 clients each PATCH 8 MB to their own
// tus upload at once over loopback, the storage path (auth, tus state,
// streaming to disk with fsync), and report the aggregate MB/s and how
// far the process's peak resident memory rose above where it stood
// (clients and server share the process; the clients send from one
// shared buffer). Each upload is declared a byte longer than sent, so
// none completes and decoding, measured by media's
// BenchmarkProcess12MP, stays out of this figure.
//
//	go test ./gateway -run XXX -bench UploadStorage -benchtime 3x
func BenchmarkUploadStorage50x8MB(b *testing.B) {
	const clients, size = 50, 8 << 20
	e := newMediaEnv(b, gateway.Config{RateSubject: -1, RateIP: -1}, media.Config{MaxBytes: size + 1})
	addr := e.listen(b)
	tid := e.openTicket(b, "joe")
	// One agent per client: the per-subject upload rate (30/min) is
	// not what is measured here.
	tokens := make([]string, clients)
	for i := range tokens {
		tokens[i] = e.token(b, "agent-"+strconv.Itoa(i), auth.RoleAgent)
	}
	body := bytes.Repeat([]byte{0xFF, 0xD8, 0xFF, 0xE0}, size/4)
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}}
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) // reset VmHWM (Linux)
	base := procStatusKB("VmRSS")
	var total time.Duration
	for b.Loop() {
		b.StopTimer()
		locs := make([]string, clients)
		for i := range locs {
			locs[i] = e.tusCreate(b, tokens[i], tid, size+1)
		}
		b.StartTimer()
		start := time.Now()
		var wg sync.WaitGroup
		errs := make(chan error, clients)
		for i, loc := range locs {
			wg.Go(func() {
				req, _ := http.NewRequest("PATCH", "http://"+addr+loc, bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+tokens[i])
				req.Header.Set("Tus-Resumable", "1.0.0")
				req.Header.Set("Content-Type", "application/offset+octet-stream")
				req.Header.Set("Upload-Offset", "0")
				res, err := hc.Do(req)
				if err != nil {
					errs <- err
					return
				}
				res.Body.Close()
				if res.StatusCode != 204 || res.Header.Get("Upload-Offset") != strconv.Itoa(size) {
					errs <- fmt.Errorf("status %d offset %s", res.StatusCode, res.Header.Get("Upload-Offset"))
				}
			})
		}
		wg.Wait()
		total += time.Since(start)
		close(errs)
		for err := range errs {
			b.Fatal(err)
		}
		b.StopTimer()
		for i, loc := range locs { // free the disk between rounds
			e.send(b, "DELETE", loc, tokens[i], nil, "Tus-Resumable", "1.0.0").Body.Close()
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(b.N*clients*size)/(1<<20)/total.Seconds(), "MB/s")
	if peak := procStatusKB("VmHWM"); peak > 0 {
		b.ReportMetric(float64(peak-base)/1024, "peak-rss-growth-MB")
	}
}
