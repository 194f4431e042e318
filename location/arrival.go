package location

import (
	"context"
	"encoding/json"
	"math"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/state"
)

// markerTTL bounds how long an arriving/arrived marker is kept: longer
// than any job stays open, so an event never fires twice.
const markerTTL = dispatchRetention

// checkArrival looks at a technician's new position against each job they
// hold: technician_arriving fires once when the ETA drops under
// ArrivingETA, technician_arrived once inside the job's radius. "Once" is
// a set-if-absent marker per accepted offer, so two nodes taking two
// batches of one technician never both fire it. Arriving inside the
// radius fires both, arriving first, so the customer's app sees the order
// it expects. Failures are logged: the next fix tries again.
func (s *Service) checkArrival(ctx context.Context, tech string, rec *techRecord, fix api.Fix) {
	for _, j := range rec.Jobs {
		dist := state.Distance(fix.Lat, fix.Lon, j.Lat, j.Lon)
		eta := s.ETA(dist)
		if eta >= ArrivingETA && dist > j.ArriveRadiusM {
			continue
		}
		payload := api.TechnicianPayload{TechnicianID: tech, ETASeconds: int(eta.Seconds()), DistanceM: int(math.Round(dist)), OfferID: j.OfferID}
		s.fireOnce(ctx, "arriving", j, api.EventTechnicianArriving, payload)
		if dist <= j.ArriveRadiusM {
			payload.ETASeconds = 0
			s.fireOnce(ctx, "arrived", j, api.EventTechnicianArrived, payload)
		}
	}
}

func (s *Service) fireOnce(ctx context.Context, kind string, j job, typ api.EventType, p api.TechnicianPayload) {
	won, err := s.st.SetNX(ctx, keyMarker(kind, j.OfferID), []byte(p.TechnicianID), markerTTL)
	if err != nil {
		s.log.Warn("arrival marker", "ticket", j.TicketID, "kind", kind, "err", err)
		return
	}
	if !won {
		return
	}
	data, _ := json.Marshal(p)
	_, err = s.tickets.Append(context.WithoutCancel(ctx), api.Event{TicketID: j.TicketID, Type: typ,
		Actor: api.Actor{ID: p.TechnicianID, Role: "technician"}, Channel: api.ChannelField, Payload: data})
	if err != nil {
		// Let the next fix try again rather than lose the event.
		_ = s.st.Delete(context.WithoutCancel(ctx), keyMarker(kind, j.OfferID))
		s.log.Error("arrival event", "ticket", j.TicketID, "kind", kind, "err", err)
	}
}

// arrived reports whether technician_arrived fired for a job.
func (s *Service) arrived(ctx context.Context, j *job) (bool, error) {
	_, err := s.st.Get(ctx, keyMarker("arrived", j.OfferID))
	if err == nil {
		return true, nil
	}
	if isNotFound(err) {
		return false, nil
	}
	return false, err
}
