package rtc

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestPruneRecordings: call directories older than the retention go,
// younger ones and anything that is not a call's directory stay.
func TestPruneRecordings(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	mk := func(name string, age time.Duration) {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(p, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(p, "caller-audio-1.ogg"), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, now.Add(-age), now.Add(-age)); err != nil {
			t.Fatal(err)
		}
	}
	mk("call_old", 31*24*time.Hour)
	mk("call_new", 29*24*time.Hour)
	mk("not-a-call", 400*24*time.Hour)
	s := &Service{cfg: Config{Media: MediaConfig{RecordDir: dir}}.withDefaults(), now: func() time.Time { return now }}
	s.log = s.cfg.Logger
	if err := s.PruneRecordings(context.Background()); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]bool{"call_old": false, "call_new": true, "not-a-call": true} {
		if _, err := os.Stat(filepath.Join(dir, name)); (err == nil) != want {
			t.Errorf("%s: exists %v, want %v", name, err == nil, want)
		}
	}
}
