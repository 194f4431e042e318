package push_test

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/internal/fcmtest"
	"github.com/switchboard/switchboard/push"
)

// cpuTime is the process's user+system CPU time so far. The local FCM
// endpoint runs in the same process, so figures include its share: the
// gateway's own cost per notification is lower than reported.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkFCMSend: notifications through the real Firebase SDK
// (SendEach, 500 per call) into the local FCM endpoint.
func BenchmarkFCMSend(b *testing.B) {
	f := fcmtest.Start(b, project)
	f.KeepRequests(false)
	s, err := push.NewFCM(context.Background(), push.FCMConfig{CredentialsFile: f.WriteCredentials(b, b.TempDir()), Endpoint: f.Endpoint()})
	if err != nil {
		b.Fatal(err)
	}
	msgs := make([]*push.Message, 500)
	for i := range msgs {
		msgs[i] = push.BenchMessage(token(i), "Technician arriving", "Your technician is 5 minutes away.")
	}
	ctx := context.Background()
	s.Send(ctx, msgs[:1]) // token exchange outside the timing
	b.ResetTimer()
	cpu0, t0 := cpuTime(), time.Now()
	sent := 0
	for sent < b.N {
		n := min(len(msgs), b.N-sent)
		for _, r := range s.Send(ctx, msgs[:n]) {
			if r.Outcome != push.Delivered {
				b.Fatalf("outcome %v %s", r.Outcome, r.Reason)
			}
		}
		sent += n
	}
	el, cpu := time.Since(t0), cpuTime()-cpu0
	b.ReportMetric(float64(b.N)/el.Seconds(), "notifications/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/notification")
}

// BenchmarkOutbox: end to end from the durable outbox (embedded store)
// through the workers and the SDK into the local endpoint.
func BenchmarkOutbox(b *testing.B) {
	r := newRigB(b)
	users := 1000
	for i := range users {
		if _, err := r.svc.Register(context.Background(), fmt.Sprintf("u%d", i), "i1",
			api.DeviceRegistration{Platform: api.PlatformAndroid, Token: token(i)}); err != nil {
			b.Fatal(err)
		}
	}
	r.fcm.KeepRequests(false)
	ctx := context.Background()
	var ns []push.Notification
	for i := range b.N {
		ns = append(ns, push.Notification{Kind: push.KindTechArriving, Recipient: fmt.Sprintf("u%d", i%users), Params: map[string]string{"minutes": "5"}})
	}
	b.ResetTimer()
	cpu0, t0 := cpuTime(), time.Now()
	for lo := 0; lo < len(ns); lo += 1000 {
		if err := r.svc.Enqueue(ctx, ns[lo:min(lo+1000, len(ns))]...); err != nil {
			b.Fatal(err)
		}
	}
	r.startB(b)
	for r.fcm.Accepted() < uint64(b.N) {
		time.Sleep(time.Millisecond)
	}
	el, cpu := time.Since(t0), cpuTime()-cpu0
	b.ReportMetric(float64(b.N)/el.Seconds(), "notifications/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/notification")
}
