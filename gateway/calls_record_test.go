package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/at-wat/ebml-go"
	"github.com/at-wat/ebml-go/webm"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/internal/poll"
	"github.com/switchboard/switchboard/mobile-sdk/call"
	"github.com/switchboard/switchboard/rtc"
)

// recordedWebM is a party's recording as ebml-go reads it back.
type recordedWebM struct {
	Header  webm.EBMLHeader `ebml:"EBML"`
	Segment webm.Segment    `ebml:"Segment"`
}

// recordedTrack sums up one track of a recording.
type recordedTrack struct {
	codec       string
	blocks      int
	first, last int64 // block times, ms from the file's start
	firstKey    bool
}

// readRecording parses a party's WebM recording: it must be finished (its
// duration written at the end of the call), and each track's blocks must
// never go back in time.
func readRecording(path string) (map[uint64]*recordedTrack, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var doc recordedWebM
	if err := ebml.Unmarshal(bytes.NewReader(raw), &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if doc.Header.DocType != "webm" || doc.Segment.Info.Duration <= 0 {
		return nil, fmt.Errorf("%s: doc type %q, duration %v: not a finished WebM file", path, doc.Header.DocType, doc.Segment.Info.Duration)
	}
	tracks := map[uint64]*recordedTrack{}
	for _, e := range doc.Segment.Tracks.TrackEntry {
		tracks[e.TrackNumber] = &recordedTrack{codec: e.CodecID}
	}
	for _, c := range doc.Segment.Cluster {
		for _, b := range c.SimpleBlock {
			tr := tracks[b.TrackNumber]
			if tr == nil {
				return nil, fmt.Errorf("%s: a block of track %d, not in the header", path, b.TrackNumber)
			}
			at := int64(c.Timecode) + int64(b.Timecode)
			if tr.blocks == 0 {
				tr.first, tr.firstKey = at, b.Keyframe
			} else if at < tr.last {
				return nil, fmt.Errorf("%s: track %d goes back from %d ms to %d ms", path, b.TrackNumber, tr.last, at)
			}
			tr.last = at
			tr.blocks++
		}
	}
	return tracks, nil
}

// Recording happens only with the customer's consent: a video call placed
// with recording_consent leaves one WebM file per party under
// --record-dir, caller.webm and agent.webm, each with the party's Opus
// and VP8 tracks in sync, finished once the call ends; a supervisor
// listening in (and talking) is not recorded; a call without consent
// leaves nothing.
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
	// A supervisor listens in and renegotiates to add a microphone; what
	// it sends is not recorded.
	supSig := dial(t, e.client(t, "sue", auth.RoleAgent, "supervisor"))
	api0, _ := call.DefaultAPI(true)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	heard := &marked{byID: map[string]int{}}
	sc, err := call.Join(ctx, supSig, cc.ID, call.Options{Listen: true, OnTrack: heard.onTrack, API: api0})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sc.Close)
	poll.Until(t, 20*time.Second, 20*time.Millisecond, func() error { // connected: its first offer answered
		if heard.count("audio") < 10 {
			return fmt.Errorf("supervisor heard %d packets", heard.count("audio"))
		}
		return nil
	})
	mic := supervisorTalks(t, ctx, sc, supSig)
	// The call goes on for about two seconds of media (50 packets a
	// second of each kind), the supervisor talking meanwhile.
	c0, a0 := cm.got.Load(), am.got.Load()
	poll.Until(t, 20*time.Second, 20*time.Millisecond, func() error {
		if cm.got.Load() < c0+200 || am.got.Load() < a0+200 || !mic.bound.Load() {
			return fmt.Errorf("media: customer %d, agent %d more packets; microphone bound %v", cm.got.Load()-c0, am.got.Load()-a0, mic.bound.Load())
		}
		return nil
	})
	if err := ac.HangUp(); err != nil {
		t.Fatal(err)
	}
	<-cc.Ended()

	// The files are finished when the call's media is torn down.
	recorded := map[string]map[uint64]*recordedTrack{}
	poll.Until(t, 20*time.Second, 50*time.Millisecond, func() error {
		for _, role := range []string{"caller", "agent"} {
			tracks, err := readRecording(filepath.Join(dir, cc.ID, role+".webm"))
			if err != nil {
				return err
			}
			recorded[role] = tracks
		}
		return nil
	})
	files, err := os.ReadDir(filepath.Join(dir, cc.ID))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		names = append(names, f.Name())
		if fi, err := f.Info(); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v %v, want 0600", f.Name(), fi.Mode(), err)
		}
	}
	if len(names) != 2 || names[0] != "agent.webm" || names[1] != "caller.webm" {
		t.Fatalf("the call's recordings are %v, want agent.webm and caller.webm", names)
	}
	if fi, err := os.Stat(filepath.Join(dir, cc.ID)); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("call directory mode %v %v, want 0700", fi.Mode(), err)
	}
	for role, tracks := range recorded {
		var audio, video *recordedTrack
		for _, tr := range tracks {
			switch tr.codec {
			case "A_OPUS":
				audio = tr
			case "V_VP8":
				video = tr
			}
		}
		if len(tracks) != 2 || audio == nil || video == nil {
			t.Fatalf("%s: tracks %v, want A_OPUS and V_VP8", role, tracks)
		}
		t.Logf("%s: audio %+v, video %+v", role, *audio, *video)
		if audio.blocks < 50 || video.blocks < 50 {
			t.Errorf("%s: %d audio and %d video blocks, want a second's worth of each at least", role, audio.blocks, video.blocks)
		}
		if !video.firstKey {
			t.Errorf("%s: the first video block is not a keyframe", role)
		}
		da, dv := audio.last-audio.first, video.last-video.first
		if d := da - dv; d < -1000 || d > 1000 || audio.last-video.last < -1000 || audio.last-video.last > 1000 {
			t.Errorf("%s: audio lasts %d ms to %d ms, video %d ms to %d ms: out of sync", role, da, audio.last, dv, video.last)
		}
	}

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
