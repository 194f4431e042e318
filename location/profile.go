package location

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/state"
)

// techRecord is what dispatch knows of a technician, under keyTech.
type techRecord struct {
	Name    string    `json:"name,omitempty"`
	Skills  []string  `json:"skills,omitempty"`
	OnDuty  bool      `json:"on_duty"`
	Jobs    []job     `json:"jobs,omitempty"`
	Updated time.Time `json:"updated"`
}

// job is a dispatch a technician accepted and has not completed.
type job struct {
	TicketID      string    `json:"ticket"`
	OfferID       string    `json:"offer"`
	Lat           float64   `json:"lat"`
	Lon           float64   `json:"lon"`
	ArriveRadiusM float64   `json:"radius"`
	AcceptedAt    time.Time `json:"at"`
}

func (r *techRecord) has(skills []string) bool {
	for _, sk := range skills {
		if !slices.Contains(r.Skills, sk) {
			return false
		}
	}
	return true
}

func (r *techRecord) job(ticketID string) *job {
	for i := range r.Jobs {
		if r.Jobs[i].TicketID == ticketID {
			return &r.Jobs[i]
		}
	}
	return nil
}

func (r *techRecord) profile(id string) api.TechnicianProfile {
	skills := r.Skills
	if skills == nil {
		skills = []string{}
	}
	return api.TechnicianProfile{ID: id, Name: r.Name, Skills: skills, OnDuty: r.OnDuty, Load: len(r.Jobs), UpdatedAt: r.Updated}
}

// updateTech applies change to a technician's record with
// compare-and-swap, creating it if absent, and returns old and new.
func (s *Service) updateTech(ctx context.Context, id string, change func(*techRecord) error) (old, cur techRecord, err error) {
	for range casRetries {
		var rec techRecord
		raw, err := s.getJSON(ctx, keyTech(id), &rec)
		if err != nil {
			return old, cur, err
		}
		old = rec
		old.Skills = slices.Clone(rec.Skills)
		old.Jobs = slices.Clone(rec.Jobs)
		if err := change(&rec); err != nil {
			return old, cur, err
		}
		rec.Updated = s.now().UTC()
		next, err := json.Marshal(rec)
		if err != nil {
			return old, cur, err
		}
		ok, err := s.st.CompareAndSwap(ctx, keyTech(id), raw, next, 0)
		if err != nil {
			return old, cur, err
		}
		if ok {
			return old, rec, nil
		}
	}
	return old, cur, fmt.Errorf("%w: technician %s changed concurrently; retry", ErrConflict, id)
}

// Profile returns a technician's profile; one never configured is
// ErrNotFound.
func (s *Service) Profile(ctx context.Context, id string) (api.TechnicianProfile, error) {
	if err := checkID("technician", id); err != nil {
		return api.TechnicianProfile{}, ErrNotFound
	}
	var rec techRecord
	raw, err := s.getJSON(ctx, keyTech(id), &rec)
	if err != nil {
		return api.TechnicianProfile{}, err
	}
	if raw == nil {
		return api.TechnicianProfile{}, fmt.Errorf("%w: no technician %s", ErrNotFound, id)
	}
	return rec.profile(id), nil
}

// SetProfile changes a technician's name, skills or duty (an admin's
// call) and moves them between the availability sets to match.
func (s *Service) SetProfile(ctx context.Context, id string, req api.ProfileRequest) (api.TechnicianProfile, error) {
	if err := checkID("technician", id); err != nil {
		return api.TechnicianProfile{}, err
	}
	var skills []string
	if req.Skills != nil {
		var err error
		if skills, err = checkSkills(*req.Skills); err != nil {
			return api.TechnicianProfile{}, err
		}
	}
	if req.Name != nil && len(*req.Name) > 200 {
		return api.TechnicianProfile{}, fmt.Errorf("%w: name is longer than 200 bytes", ErrInvalid)
	}
	old, cur, err := s.updateTech(ctx, id, func(r *techRecord) error {
		if req.Name != nil {
			r.Name = *req.Name
		}
		if req.Skills != nil {
			r.Skills = skills
		}
		if req.OnDuty != nil {
			r.OnDuty = *req.OnDuty
		}
		return nil
	})
	if err != nil {
		return api.TechnicianProfile{}, err
	}
	if err := s.replace(ctx, id, &old, &cur); err != nil {
		return api.TechnicianProfile{}, err
	}
	return cur.profile(id), nil
}

// SetDuty is the technician's own on/off duty switch.
func (s *Service) SetDuty(ctx context.Context, id string, onDuty bool) (api.TechnicianProfile, error) {
	return s.SetProfile(ctx, id, api.ProfileRequest{OnDuty: &onDuty})
}

// replace moves a technician between availability sets after their
// record changed from old to cur: out of every set they no longer belong
// to, into the ones they now do (if their last fix is fresh).
func (s *Service) replace(ctx context.Context, id string, old, cur *techRecord) error {
	// Off duty leaves every set; a dropped skill leaves its set. Old sets
	// are removed even if old was off duty, so leftovers of a crash
	// between two writes are cleaned up by the next change.
	var gone []string
	if !cur.OnDuty {
		gone = append(gone, geoAvail)
	}
	for _, sk := range old.Skills {
		if !cur.OnDuty || !slices.Contains(cur.Skills, sk) {
			gone = append(gone, geoSkill(sk))
		}
	}
	var fns []func() error
	for _, set := range gone {
		fns = append(fns, func() error { return s.st.GeoRemove(ctx, set, id) })
	}
	if len(fns) > 0 {
		if err := parallel(fns...); err != nil {
			return err
		}
	}
	if !cur.OnDuty {
		return nil
	}
	var last lastRecord
	raw, err := s.getJSON(ctx, keyLast(id), &last)
	if err != nil || raw == nil || !s.fresh(last.Fix.Time) {
		return err
	}
	return s.place(ctx, id, cur, last.Fix)
}

// place puts a technician at fix in the availability sets of their record.
func (s *Service) place(ctx context.Context, id string, rec *techRecord, fix api.Fix) error {
	_, err := s.st.Apply(ctx, nil, placeOps(id, rec, fix)...)
	return err
}

// placeOps are the writes of place, for a caller that has more to write
// in the same step.
func placeOps(id string, rec *techRecord, fix api.Fix) []state.Op {
	pt := []state.GeoPoint{geoPoint(id, fix)}
	ops := []state.Op{state.GeoAddOp{Set: geoAvail, Points: pt}}
	for _, sk := range rec.Skills {
		ops = append(ops, state.GeoAddOp{Set: geoSkill(sk), Points: pt})
	}
	return ops
}

// unplace takes a technician out of every availability set of rec.
func (s *Service) unplace(ctx context.Context, id string, rec *techRecord) error {
	fns := []func() error{func() error { return s.st.GeoRemove(ctx, geoAvail, id) }}
	for _, sk := range rec.Skills {
		fns = append(fns, func() error { return s.st.GeoRemove(ctx, geoSkill(sk), id) })
	}
	return parallel(fns...)
}
