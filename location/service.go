package location

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/switchboard/switchboard/state"
	"github.com/switchboard/switchboard/ticket"
)

// Keys and sets on the state seam. All start with "loc:".
func keyTech(id string) string         { return "loc:tech:" + id } // techRecord
func keyLast(id string) string         { return "loc:last:" + id } // lastRecord
func keyHist(id, m string) string      { return "loc:h:" + id + ":" + m }
func ixHist(id string) string          { return "loc:hix:" + id } // history batches by fix time
func keyStore(id string) string        { return "loc:store:" + id }
func keyDispatch(ticket string) string { return "loc:disp:" + ticket }
func keyOffer(id string) string        { return "loc:offer:" + id }
func keyClaim(tech string) string      { return "loc:claim:" + tech } // the tech's pending offer
func keyMarker(kind, offer string) string {
	return "loc:" + kind + ":" + offer // arriving / arrived, once per accepted offer
}

const (
	ixSeen    = "loc:seen"   // technician -> time of the latest fix (ms)
	ixOffers  = "loc:offers" // pending (or accepted, unfinished) offer -> expiry (ms)
	geoAvail  = "loc:avail"  // on-duty technicians with a fresh fix
	geoStores = "loc:stores"
)

// geoSkill is the availability set of technicians with skill.
func geoSkill(skill string) string { return "loc:avail:" + skill }

// Service is the location domain. It keeps no state of its own beyond
// caches of immutable things (time zones), so any number of gateway nodes
// may run one over the same backend.
type Service struct {
	st      state.Store
	tickets *ticket.Service
	cfg     Config
	log     *slog.Logger
	now     func() time.Time
	zones   sync.Map // time zone name -> *time.Location
}

// Option configures a Service.
type Option func(*Service)

// WithLogger sets the logger. The default discards.
func WithLogger(l *slog.Logger) Option {
	return func(s *Service) { s.log = l.With("component", "location") }
}

// WithClock sets the clock, for tests.
func WithClock(now func() time.Time) Option { return func(s *Service) { s.now = now } }

// New returns the location service over st, writing ticket events
// through tickets. cfg must have passed Validate.
func New(st state.Store, tickets *ticket.Service, cfg Config, opts ...Option) *Service {
	s := &Service{st: st, tickets: tickets, cfg: cfg.withDefaults(), log: slog.New(slog.DiscardHandler), now: time.Now}
	for _, o := range opts {
		o(s)
	}
	return s
}

// newID returns a random opaque ID with a prefix saying what it names.
func newID(prefix string) string { return prefix + strings.ToLower(rand.Text()[:20]) }

// checkID accepts IDs of subjects, stores and SKUs: 1 to 128 bytes of
// letters, digits and ._-@: (token subjects are often emails or URNs).
// They become parts of keys, so nothing else gets in.
func checkID(what, id string) error {
	if id == "" || len(id) > 128 {
		return fmt.Errorf("%w: %s must be 1 to 128 characters", ErrInvalid, what)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("._-@:", c) >= 0) {
			return fmt.Errorf("%w: %s may hold only letters, digits and . _ - @ :", ErrInvalid, what)
		}
	}
	return nil
}

// checkSkills normalises skills: lower-case names of 1 to 32 letters,
// digits, - and _, at most MaxSkills, duplicates dropped.
func checkSkills(skills []string) ([]string, error) {
	if len(skills) > MaxSkills {
		return nil, fmt.Errorf("%w: more than %d skills", ErrInvalid, MaxSkills)
	}
	out := make([]string, 0, len(skills))
	for _, sk := range skills {
		sk = strings.ToLower(strings.TrimSpace(sk))
		if sk == "" || len(sk) > 32 {
			return nil, fmt.Errorf("%w: a skill must be 1 to 32 characters", ErrInvalid)
		}
		for i := 0; i < len(sk); i++ {
			c := sk[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return nil, fmt.Errorf("%w: skill %q may hold only letters, digits, - and _", ErrInvalid, sk)
			}
		}
		dup := false
		for _, o := range out {
			dup = dup || o == sk
		}
		if !dup {
			out = append(out, sk)
		}
	}
	return out, nil
}

// checkPoint refuses coordinates a geo set cannot hold, with the same
// rule as both state backends (state.ValidCoordinates), so embedded and
// Redis modes accept exactly the same input.
func checkPoint(what string, lat, lon float64) error {
	switch {
	case math.IsNaN(lat) || math.IsNaN(lon) || math.IsInf(lat, 0) || math.IsInf(lon, 0):
		return fmt.Errorf("%w: %s: coordinates must be numbers", ErrInvalid, what)
	case lat < -90 || lat > 90:
		return fmt.Errorf("%w: %s: latitude %g is outside -90..90", ErrInvalid, what, lat)
	case lon < -180 || lon > 180:
		return fmt.Errorf("%w: %s: longitude %g is outside -180..180", ErrInvalid, what, lon)
	case !state.ValidCoordinates(lat, lon):
		return fmt.Errorf("%w: %s: latitude %g is beyond ±%g, the limit of the geo index (Web Mercator, as Redis GEO)", ErrInvalid, what, lat, state.MaxLatitude)
	}
	return nil
}

// checkRadius returns radius (0: the default) or refuses it.
func (s *Service) checkRadius(r float64) (float64, error) {
	switch {
	case math.IsNaN(r) || r < 0:
		return 0, fmt.Errorf("%w: radius_m must be a positive number", ErrInvalid)
	case r == 0:
		return s.cfg.DefaultRadiusM, nil
	case r > MaxRadiusM:
		return 0, fmt.Errorf("%w: radius_m must be at most %d", ErrInvalid, MaxRadiusM)
	}
	return r, nil
}

// checkNearby checks a nearby query's centre, radius and k, and returns
// the radius and k with their defaults applied.
func (s *Service) checkNearby(lat, lon, radiusM float64, k int) (float64, int, error) {
	if err := checkPoint("centre", lat, lon); err != nil {
		return 0, 0, err
	}
	radius, err := s.checkRadius(radiusM)
	if err != nil {
		return 0, 0, err
	}
	k, err = checkK(k)
	return radius, k, err
}

// checkK returns k (0: DefaultK) or refuses it.
func checkK(k int) (int, error) {
	switch {
	case k < 0 || k > MaxK:
		return 0, fmt.Errorf("%w: k must be 1 to %d", ErrInvalid, MaxK)
	case k == 0:
		return DefaultK, nil
	}
	return k, nil
}

// ETA is how long a technician needs for distanceM metres of straight
// line: times DetourFactor for the roads, at AverageSpeedKmh.
func (s *Service) ETA(distanceM float64) time.Duration {
	mps := s.cfg.AverageSpeedKmh / 3.6
	return time.Duration(distanceM * DetourFactor / mps * float64(time.Second))
}

// getJSON reads key into v and returns the raw value (for a later CAS);
// a missing key is (nil, nil) with v untouched.
func (s *Service) getJSON(ctx context.Context, key string, v any) ([]byte, error) {
	raw, err := s.st.Get(ctx, key)
	if errors.Is(err, state.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return raw, decodeJSON(key, raw, v)
}

// decodeJSON reads the value raw of key into v; a nil raw (missing)
// leaves v untouched.
func decodeJSON(key string, raw []byte, v any) error {
	if raw == nil {
		return nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("%s: corrupt record: %w", key, err)
	}
	return nil
}

// parallel runs fns concurrently and joins their errors. Independent
// writes issued together share one commit in the embedded store and run
// on parallel connections with Redis.
func parallel(fns ...func() error) error {
	if len(fns) == 1 {
		return fns[0]()
	}
	errs := make([]error, len(fns))
	var wg sync.WaitGroup
	for i, f := range fns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = f()
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// casRetries bounds compare-and-swap loops: a record is changed by its
// one technician and the occasional dispatcher, so more than a few lost
// races in a row means something is wrong.
const casRetries = 8

func isNotFound(err error) bool {
	return errors.Is(err, state.ErrNotFound) || errors.Is(err, ErrNotFound)
}
func isNoTech(err error) bool { return errors.Is(err, ErrNoTechnician) }
