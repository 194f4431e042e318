package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pion/webrtc/v4/pkg/media/ivfreader"
	"github.com/pion/webrtc/v4/pkg/media/oggreader"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/internal/poll"
	"github.com/switchboard/switchboard/mobile-sdk/call"
	"github.com/switchboard/switchboard/rtc"
)

// checkOgg parses a recorded Opus track: the Opus ID header, pages with
// valid checksums to the end, and an end-of-stream mark (the file was
// finished, not cut off).
func checkOgg(path string) (pages int, err error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	r, head, err := oggreader.NewWith(bytes.NewReader(raw))
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	if head.SampleRate != 48000 || head.Channels != 2 {
		return 0, fmt.Errorf("%s: Opus head %+v", path, head)
	}
	var granule uint64
	for {
		_, ph, err := r.ParseNextPage()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return pages, fmt.Errorf("%s: page %d: %w", path, pages, err)
		}
		pages++
		granule = ph.GranulePosition
	}
	last := bytes.LastIndex(raw, []byte("OggS"))
	if pages < 3 || granule == 0 || last < 0 || raw[last+5]&0x04 == 0 {
		return pages, fmt.Errorf("%s: %d pages, granule %d, not finished with end of stream", path, pages, granule)
	}
	return pages, nil
}

// checkIVF parses a recorded VP8 track: the IVF header says VP80 and holds
// the frame count written when the file was finished, and every frame is
// there.
func checkIVF(path string) (frames int, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	r, head, err := ivfreader.NewWith(f)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	if head.FourCC != "VP80" || head.NumFrames == 0 {
		return 0, fmt.Errorf("%s: IVF header %+v (not finished?)", path, head)
	}
	for {
		_, _, err := r.ParseNextFrame()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return frames, fmt.Errorf("%s: frame %d: %w", path, frames, err)
		}
		frames++
	}
	if frames != int(head.NumFrames) {
		return frames, fmt.Errorf("%s: header says %d frames, file holds %d", path, head.NumFrames, frames)
	}
	return frames, nil
}

// Recording happens only with the customer's consent: a call placed with
// recording_consent leaves each party's Opus as Ogg and VP8 as IVF under
// --record-dir, finished and parseable once the call ends; a call without
// it leaves nothing.
func TestCallRecording(t *testing.T) {
	dir := t.TempDir()
	e := newCallEnv(t, nil, nil, "node-a", func(c *rtc.Config) { c.Media.RecordDir = dir })

	// Without consent.
	cm, am, plain, pa, annSig := connectCallWith(t, e, e, "joe", "ann", callOpts{})
	flowing(t, cm, am)
	if err := pa.HangUp(); err != nil {
		t.Fatal(err)
	}
	<-plain.Ended()
	_ = annSig.Send(api.Signal{Type: api.SigStatus, Status: api.AgentAway}) // the next call rings bob
	poll.Until(t, 10*time.Second, 20*time.Millisecond, func() error {
		if a, err := e.calls.Agent(context.Background(), "ann"); err != nil || a.Status != api.AgentAway {
			return fmt.Errorf("ann is %+v %v", a, err)
		}
		return nil
	})

	// With consent.
	cm, am, cc, ac, _ := connectCallWith(t, e, e, "kim", "bob", callOpts{Consent: true})
	flowing(t, cm, am)
	if got, err := e.client(t, "kim", auth.RoleCustomer).Call(context.Background(), cc.ID); err != nil || !got.Recording {
		t.Fatalf("consented call: %+v %v", got, err)
	}
	if err := ac.HangUp(); err != nil {
		t.Fatal(err)
	}
	<-cc.Ended()

	want := map[string]string{"caller-audio-*.ogg": "", "caller-video-*.ivf": "", "agent-audio-*.ogg": "", "agent-video-*.ivf": ""}
	poll.Until(t, 20*time.Second, 50*time.Millisecond, func() error {
		for pattern := range want {
			m, _ := filepath.Glob(filepath.Join(dir, cc.ID, pattern))
			if len(m) != 1 {
				return fmt.Errorf("%s: %d files", pattern, len(m))
			}
			var n int
			var err error
			if filepath.Ext(pattern) == ".ogg" {
				n, err = checkOgg(m[0])
			} else {
				n, err = checkIVF(m[0])
			}
			if err != nil {
				return err
			}
			want[pattern] = fmt.Sprintf("%s (%d)", filepath.Base(m[0]), n)
		}
		return nil
	})
	t.Logf("recorded: %v", want)

	if got, err := e.client(t, "joe", auth.RoleCustomer).Call(context.Background(), plain.ID); err != nil || got.Recording {
		t.Fatalf("call without consent: %+v %v", got, err)
	}
	// call_ended says which node holds a recording, and only for the
	// recorded call.
	for who, c := range map[string]*call.Call{"kim": cc, "joe": plain} {
		want := map[string]string{"kim": "node-a", "joe": ""}[who]
		poll.Until(t, 10*time.Second, 20*time.Millisecond, func() error {
			got, err := e.client(t, who, auth.RoleCustomer).Call(context.Background(), c.ID)
			if err != nil {
				return err
			}
			var view api.TicketView
			if err := e.client(t, who, auth.RoleCustomer).Do(context.Background(), "GET", "/v1/tickets/"+got.TicketID, nil, &view); err != nil {
				return err
			}
			for _, ev := range view.Events {
				if ev.Type != api.EventCallEnded {
					continue
				}
				var p api.CallEndedPayload
				if err := json.Unmarshal(ev.Payload, &p); err != nil {
					return err
				}
				if p.RecordingNode != want {
					t.Fatalf("%s's call_ended names recording node %q, want %q", who, p.RecordingNode, want)
				}
				return nil
			}
			return fmt.Errorf("%s: no call_ended yet", who)
		})
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != cc.ID {
		t.Fatalf("record dir holds %v; want only the consented call %s", entries, cc.ID)
	}
}
