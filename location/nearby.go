package location

import (
	"context"
	"math"
	"slices"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/state"
)

// TechQuery asks for the nearest available technicians.
type TechQuery struct {
	Lat, Lon float64
	// RadiusM bounds the search; 0 means Config.DefaultRadiusM, more than
	// MaxRadiusM is refused.
	RadiusM float64
	// Skills the technicians must all have.
	Skills []string
	// K is how many to return; 0 means DefaultK, more than MaxK is refused.
	K int
}

// A query with several skills reads the first skill's set and filters on
// the rest. It first reads multiSkillScan times k technicians (one with
// one skill of a trade usually has the others); when too few of them pass
// and the set held more, it reads again, multiSkillScan times as many,
// up to maxSkillScan, so a rare combination is still found among the
// nearest maxSkillScan holders of the first skill.
const (
	multiSkillScan = 4
	maxSkillScan   = 10_000
)

// NearbyTechnicians returns up to K on-duty technicians with a fresh fix
// and all of the skills, within RadiusM, nearest first, each with an ETA.
//
// Availability is kept in geo sets (one of all on-duty technicians, one
// per skill), maintained by Report, SetProfile and the stale sweeper, so
// the common query (one skill or none) is a single nearest search: this
// is what keeps it fast among 100,000 technicians. A technician whose fix
// went stale counts for at most StaleAfter plus SweepInterval.
func (s *Service) NearbyTechnicians(ctx context.Context, q TechQuery) ([]api.NearbyTechnician, error) {
	radius, k, err := s.checkNearby(q.Lat, q.Lon, q.RadiusM, q.K)
	if err != nil {
		return nil, err
	}
	skills, err := checkSkills(q.Skills)
	if err != nil {
		return nil, err
	}
	set := geoAvail
	if len(skills) > 0 {
		set = geoSkill(skills[0])
	}
	if len(skills) < 2 {
		found, err := s.st.GeoNearest(ctx, set, q.Lat, q.Lon, radius, k)
		if err != nil {
			return nil, err
		}
		out := make([]api.NearbyTechnician, 0, len(found))
		for _, r := range found {
			out = append(out, s.nearbyOf(r, nil))
		}
		return out, nil
	}
	out := []api.NearbyTechnician{}
	// Each technician is read once, even when a wider read finds the
	// nearest again (perhaps in another order: they move).
	checked := map[string]bool{}
	for scan := k * multiSkillScan; len(out) < k; scan = min(scan*multiSkillScan, maxSkillScan) {
		found, err := s.st.GeoNearest(ctx, set, q.Lat, q.Lon, radius, scan)
		if err != nil {
			return nil, err
		}
		for _, r := range found {
			if len(out) == k || checked[r.Member] {
				continue
			}
			checked[r.Member] = true
			var rec techRecord
			raw, err := s.getJSON(ctx, keyTech(r.Member), &rec)
			if err != nil {
				return nil, err
			}
			if raw != nil && rec.OnDuty && rec.has(skills) {
				out = append(out, s.nearbyOf(r, rec.Skills))
			}
		}
		if len(found) < scan || scan == maxSkillScan {
			break
		}
	}
	slices.SortStableFunc(out, func(a, b api.NearbyTechnician) int { return a.DistanceM - b.DistanceM })
	return out, nil
}

func (s *Service) nearbyOf(r state.GeoResult, skills []string) api.NearbyTechnician {
	return api.NearbyTechnician{
		TechnicianID: r.Member,
		Lat:          r.Lat,
		Lon:          r.Lon,
		DistanceM:    int(math.Round(r.DistanceM)),
		ETASeconds:   int(s.ETA(r.DistanceM).Seconds()),
		Skills:       skills,
	}
}

// candidate is a technician dispatch may offer a job to.
type candidate struct {
	id    string
	distM float64
	load  int
	score float64 // seconds: ETA plus loadPenalty per accepted job
}

// candidates ranks available technicians for a dispatch: all skills, on
// duty, below MaxLoad, not tried before; best (lowest ETA plus load
// penalty) first.
func (s *Service) candidates(ctx context.Context, d *dispatchRecord) ([]candidate, error) {
	set := geoAvail
	if len(d.Skills) > 0 {
		set = geoSkill(d.Skills[0])
	}
	found, err := s.st.GeoNearest(ctx, set, d.Lat, d.Lon, d.RadiusM, maxCandidates+len(d.Tried))
	if err != nil {
		return nil, err
	}
	var out []candidate
	for _, r := range found {
		if slices.Contains(d.Tried, r.Member) {
			continue
		}
		var rec techRecord
		raw, err := s.getJSON(ctx, keyTech(r.Member), &rec)
		if err != nil {
			return nil, err
		}
		if raw == nil || !rec.OnDuty || !rec.has(d.Skills) || len(rec.Jobs) >= MaxLoad || rec.job(d.TicketID) != nil {
			continue
		}
		eta := s.ETA(r.DistanceM)
		out = append(out, candidate{id: r.Member, distM: r.DistanceM, load: len(rec.Jobs),
			score: (eta + loadPenalty*time.Duration(len(rec.Jobs))).Seconds()})
	}
	slices.SortStableFunc(out, func(a, b candidate) int {
		switch {
		case a.score < b.score:
			return -1
		case a.score > b.score:
			return 1
		}
		return 0
	})
	return out, nil
}
