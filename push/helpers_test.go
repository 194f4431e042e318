package push_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/internal/fcmtest"
	"github.com/switchboard/switchboard/push"
	"github.com/switchboard/switchboard/state"
	"github.com/switchboard/switchboard/state/embedded"
	"github.com/switchboard/switchboard/ticket"
)

const project = "switchboard-test"

// rig is a push service on a real embedded store, sending through the
// real Firebase SDK into a local FCM endpoint.
type rig struct {
	t       testing.TB
	dir     string
	store   state.Store
	fcm     *fcmtest.Server
	sender  *push.FCM
	svc     *push.Service
	tickets *ticket.Service
	cfg     push.Config
	stop    func()
}

func newRig(t *testing.T, cfg push.Config) *rig { return newRigTB(t, cfg) }

// newRigB is a rig for benchmarks.
func newRigB(b *testing.B) *rig { return newRigTB(b, push.Config{}) }

func newRigTB(t testing.TB, cfg push.Config) *rig {
	t.Helper()
	r := &rig{t: t, dir: t.TempDir(), fcm: fcmtest.Start(t, project), cfg: cfg}
	var err error
	r.sender, err = push.NewFCM(context.Background(), push.FCMConfig{
		CredentialsFile: r.fcm.WriteCredentials(t, t.TempDir()),
		Endpoint:        r.fcm.Endpoint(),
	})
	if err != nil {
		t.Fatal(err)
	}
	r.open()
	t.Cleanup(r.close)
	return r
}

// open opens the store and builds the service on it (again, after close:
// a restart).
func (r *rig) open() {
	r.t.Helper()
	st, err := embedded.Open(r.dir)
	if err != nil {
		r.t.Fatal(err)
	}
	r.store = st
	r.tickets = ticket.New(st)
	r.svc = push.New(st, r.cfg, push.WithFCM(r.sender), push.WithTickets(r.tickets))
}

func (r *rig) startB(testing.TB) { r.start() }

// start runs the outbox until close.
func (r *rig) start() {
	r.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ob := r.svc.Outbox(fmt.Sprintf("node-%d", time.Now().UnixNano()))
	done := make(chan error, 1)
	go func() { done <- ob.Run(ctx) }()
	select {
	case <-ob.Ready():
	case err := <-done:
		r.t.Fatal(err)
	}
	r.stop = func() {
		cancel()
		if err := <-done; err != nil {
			r.t.Error(err)
		}
	}
}

func (r *rig) close() {
	if r.stop != nil {
		r.stop()
		r.stop = nil
	}
	if r.store != nil {
		r.store.Close()
		r.store = nil
	}
}

// device registers an android device with token tok for user.
func (r *rig) device(user, iid, tok, locale string) {
	r.t.Helper()
	_, err := r.svc.Register(context.Background(), user, iid, api.DeviceRegistration{Platform: api.PlatformAndroid, Token: tok, Locale: locale})
	if err != nil {
		r.t.Fatal(err)
	}
}

// token makes an FCM-looking registration token.
func token(i int) string {
	return fmt.Sprintf("fcm-token-%04d-%s", i, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")
}
