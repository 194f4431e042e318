package push_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/poll"
	"github.com/switchboard/switchboard/push"
)

func TestFCMThroughSDK(t *testing.T) {
	r := newRig(t, push.Config{})
	r.start()
	r.device("joe", "inst-1", token(1), "de-DE")
	ctx := context.Background()
	err := r.svc.Enqueue(ctx, push.Notification{ID: "pn_1", Kind: push.KindTechArriving, Recipient: "joe", TicketID: "tk_1",
		Params: map[string]string{"minutes": "5"}})
	if err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 20*time.Second, 10*time.Millisecond, func() error {
		if len(r.fcm.Delivered()) != 1 {
			return fmt.Errorf("delivered %v", r.fcm.Delivered())
		}
		return nil
	})
	m := r.fcm.Requests()[0].Message
	if m.Token != token(1) || m.Android == nil || m.Android.Priority != "high" || m.Android.CollapseKey != "tech-tk_1" || m.Android.TTL != "1800s" {
		t.Fatalf("message %+v android %+v", m, m.Android)
	}
	if m.Notification == nil || m.Notification.Body != "Ihr Techniker ist in 5 Minuten da." {
		t.Fatalf("notification %+v", m.Notification)
	}
	if m.Data["link"] != "switchboard://tickets/tk_1" || m.Data["kind"] != "technician_arriving" {
		t.Fatalf("data %v", m.Data)
	}
	if r.fcm.TokenExchanges() < 1 {
		t.Fatal("the SDK never exchanged its service-account JWT")
	}
}
