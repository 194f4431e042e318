package api

import "time"

// Fix is one GPS reading from a technician's phone.
type Fix struct {
	Lat float64 `json:"lat"`
	Lon float64 `json:"lon"`
	// AccuracyM is the radius of 68% confidence in metres (what Android's
	// Location.getAccuracy and iOS's horizontalAccuracy report); 0: unknown.
	AccuracyM float64 `json:"accuracy_m,omitempty"`
	// SpeedMps is the ground speed in metres per second; 0: unknown or still.
	SpeedMps float64 `json:"speed_mps,omitempty"`
	// Heading is degrees clockwise from true north, 0 to 360.
	Heading float64 `json:"heading,omitempty"`
	// Time is when the phone took the fix (not when it was sent).
	Time time.Time `json:"time"`
}

// PositionBatch is the body of POST /v1/technicians/me/positions and one
// message of its WebSocket: fixes in any order.
type PositionBatch struct {
	Fixes []Fix `json:"fixes"`
}

// PositionResult says what happened to a batch.
type PositionResult struct {
	// Accepted fixes were kept in the technician's history.
	Accepted int `json:"accepted"`
	// Superseded fixes were older than the latest position already known:
	// kept in history, but the live position did not move back.
	Superseded int `json:"superseded"`
	// Flagged lists the indexes (in the batch as sent) of fixes that imply
	// an impossible speed from the position before them (a GPS glitch or a
	// spoofed position). They are kept in history marked as such and do
	// not move the live position.
	Flagged []int `json:"flagged,omitempty"`
	// Latest is the live position after the batch, if there is one.
	Latest *Fix `json:"latest,omitempty"`
}

// TechnicianProfile is what dispatch knows of a technician.
type TechnicianProfile struct {
	ID     string   `json:"id"`
	Name   string   `json:"name,omitempty"`
	Skills []string `json:"skills"`
	OnDuty bool     `json:"on_duty"`
	// Load is the number of jobs accepted and not yet completed.
	Load      int       `json:"load"`
	UpdatedAt time.Time `json:"updated_at"`
}

// ProfileRequest is the body of PUT /v1/technicians/{id}/profile (admin):
// the fields present change.
type ProfileRequest struct {
	Name   *string   `json:"name,omitempty"`
	Skills *[]string `json:"skills,omitempty"`
	OnDuty *bool     `json:"on_duty,omitempty"`
}

// DutyRequest is the body of PUT /v1/technicians/me/duty (technician).
type DutyRequest struct {
	OnDuty bool `json:"on_duty"`
}

// NearbyTechnician is one answer of GET /v1/technicians/nearby.
type NearbyTechnician struct {
	TechnicianID string   `json:"technician_id"`
	Lat          float64  `json:"lat"`
	Lon          float64  `json:"lon"`
	DistanceM    int      `json:"distance_m"`
	ETASeconds   int      `json:"eta_seconds"`
	Skills       []string `json:"skills,omitempty"`
}

// NearbyTechnicians is the answer of GET /v1/technicians/nearby, nearest first.
type NearbyTechnicians struct {
	Technicians []NearbyTechnician `json:"technicians"`
}

// Store capabilities.
const (
	CapabilityPickup = "pickup"
	CapabilityRepair = "repair"
)

// Store is a shop in the catalogue.
type Store struct {
	ID   string  `json:"id"`
	Name string  `json:"name"`
	Lat  float64 `json:"lat"`
	Lon  float64 `json:"lon"`
	// TimeZone is an IANA zone name, e.g. Europe/Berlin: opening hours are
	// local time there.
	TimeZone string `json:"time_zone"`
	// Hours are the weekly opening hours in local time, as
	// "mon-fri 09:00-18:00; sat 10:00-14:00" (a range past midnight, like
	// "fri 20:00-02:00", ends the next day; empty: never open).
	Hours        string         `json:"hours"`
	Capabilities []string       `json:"capabilities"`
	Stock        map[string]int `json:"stock,omitempty"`
	UpdatedAt    time.Time      `json:"updated_at"`
}

// NearbyStore is one answer of GET /v1/stores/nearby.
type NearbyStore struct {
	Store
	DistanceM int  `json:"distance_m"`
	OpenNow   bool `json:"open_now"`
}

// NearbyStores is the answer of GET /v1/stores/nearby, nearest first.
type NearbyStores struct {
	Stores []NearbyStore `json:"stores"`
}

// ImportError is one refused row of a store import: Line for CSV (1 is
// the header), Feature (0-based) for GeoJSON.
type ImportError struct {
	Line    int    `json:"line,omitempty"`
	Feature *int   `json:"feature,omitempty"`
	Reason  string `json:"reason"`
}

// ImportResult is the answer of POST /v1/stores/import: good rows are
// stored, broken ones reported.
type ImportResult struct {
	Imported int           `json:"imported"`
	Errors   []ImportError `json:"errors,omitempty"`
}

// DispatchRequest is the body of POST /v1/tickets/{id}/dispatch.
type DispatchRequest struct {
	// Lat and Lon are the job's location (the customer's address).
	Lat float64 `json:"lat"`
	Lon float64 `json:"lon"`
	// Skills the technician must all have.
	Skills []string `json:"skills,omitempty"`
	// RadiusM bounds the search; 0 means the server's default.
	RadiusM float64 `json:"radius_m,omitempty"`
	// ArriveRadiusM is how close counts as arrived; 0 means the default.
	ArriveRadiusM float64 `json:"arrive_radius_m,omitempty"`
}

// Dispatch states.
const (
	DispatchOffering  = "offering"  // an offer is out, waiting for the technician
	DispatchAssigned  = "assigned"  // a technician accepted
	DispatchExhausted = "exhausted" // nobody accepted; dispatch again later
	DispatchCompleted = "completed" // the technician finished the job
)

// Offer stages, as the stage of technician_dispatched events.
const (
	OfferPending   = "offered"
	OfferAccepted  = "accepted"
	OfferDeclined  = "declined"
	OfferExpired   = "expired"
	OfferExhausted = "exhausted"
)

// Dispatch is where a ticket's dispatch stands.
type Dispatch struct {
	TicketID     string     `json:"ticket_id"`
	State        string     `json:"state"`
	OfferID      string     `json:"offer_id,omitempty"`
	TechnicianID string     `json:"technician_id,omitempty"`
	ETASeconds   int        `json:"eta_seconds,omitempty"`
	DistanceM    int        `json:"distance_m,omitempty"`
	ExpiresAt    *time.Time `json:"expires_at,omitempty"`
	// Tried is how many technicians were offered the job so far.
	Tried int `json:"tried"`
}

// Offer is a job offered to a technician.
type Offer struct {
	ID           string    `json:"id"`
	TicketID     string    `json:"ticket_id"`
	TechnicianID string    `json:"technician_id"`
	State        string    `json:"state"`
	ExpiresAt    time.Time `json:"expires_at"`
	Lat          float64   `json:"lat"`
	Lon          float64   `json:"lon"`
	ETASeconds   int       `json:"eta_seconds"`
	DistanceM    int       `json:"distance_m"`
}

// TechnicianPosition is the answer of GET /v1/tickets/{id}/technician:
// the assigned technician on the way to the customer.
type TechnicianPosition struct {
	TechnicianID string    `json:"technician_id"`
	Lat          float64   `json:"lat"`
	Lon          float64   `json:"lon"`
	AccuracyM    float64   `json:"accuracy_m,omitempty"`
	FixTime      time.Time `json:"fix_time"`
	DistanceM    int       `json:"distance_m"`
	ETASeconds   int       `json:"eta_seconds"`
}

// PositionReply answers one message on the positions WebSocket: the
// batch's result, or the problem that refused it (the connection stays
// open either way).
type PositionReply struct {
	Result  *PositionResult `json:"result,omitempty"`
	Problem *Problem        `json:"problem,omitempty"`
}
