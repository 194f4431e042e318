package location

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/state/embedded"
)

// FuzzHours: any hours string parses or is refused; never a panic, and
// an accepted week answers openAt.
func FuzzHours(f *testing.F) {
	for _, s := range []string{"mon-fri 09:00-18:00; sat 10:00-14:00", "daily 00:00-24:00", "fri 20:00-02:00", "sat-mon 10:00-11:00, 12:00-13:00", "sun closed", "mon 25:00-26:00", ";;", "mon-"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		w, err := parseHours(s)
		if err == nil {
			w.openAt(time.Now(), time.UTC)
		}
	})
}

// FuzzPositionBatch: any body the gateway or the WebSocket hands over is
// stored or refused with ErrInvalid (or rate limited), never another
// error and never a panic.
func FuzzPositionBatch(f *testing.F) {
	now := time.Now().UTC().Format(time.RFC3339)
	for _, s := range []string{
		`{"fixes":[{"lat":52.5,"lon":13.4,"time":"` + now + `"}]}`,
		`{"fixes":[{"lat":91,"lon":13.4,"time":"` + now + `"}]}`,
		`{"fixes":[{"lat":85.06,"lon":-180,"accuracy_m":-1,"time":"` + now + `"}]}`,
		`{"fixes":[]}`, `{}`, `{"fixes":[{"lat":1e308,"lon":-1e308,"heading":361}]}`,
	} {
		f.Add([]byte(s))
	}
	st, err := embedded.Open(f.TempDir())
	if err != nil {
		f.Fatal(err)
	}
	defer st.Close()
	s := New(st, nil, Config{FixesPerMinute: 1 << 30})
	f.Fuzz(func(t *testing.T, body []byte) {
		var b api.PositionBatch
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if dec.Decode(&b) != nil {
			return // the gateway answers 400
		}
		_, err := s.Report(context.Background(), "fuzz-tech", b.Fixes)
		if err != nil && !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrRateLimited) {
			t.Fatalf("unexpected error class: %v", err)
		}
	})
}

// FuzzImportCSV: any CSV imports its good rows and reports the rest;
// only a bad header refuses the file.
func FuzzImportCSV(f *testing.F) {
	f.Add("id,name,lat,lon,time_zone,hours,capabilities,stock\ns1,One,52.5,13.4,Europe/Berlin,daily 09:00-18:00,pickup,A:1|B:2\n")
	f.Add("id,name,lat,lon,time_zone,hours\n\"broken,row\nx,y,1,2,UTC,daily 00:00-24:00\n")
	f.Add("id,name,lat,lon,time_zone,hours\nbad\"quote,a,1,1,UTC,mon 01:00-02:00\n")
	st, err := embedded.Open(f.TempDir())
	if err != nil {
		f.Fatal(err)
	}
	defer st.Close()
	s := New(st, nil, Config{})
	f.Fuzz(func(t *testing.T, csv string) {
		if len(csv) > 64<<10 {
			return
		}
		res, err := s.ImportCSV(context.Background(), strings.NewReader(csv))
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Fatalf("unexpected error class: %v", err)
		}
		if res.Imported < 0 || len(res.Errors) > maxImportErrors+1 {
			t.Fatalf("result %+v", res)
		}
	})
}
