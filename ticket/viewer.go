package ticket

import (
	"slices"
	"strings"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/auth"
)

// Viewer is who asks: the subject and role of a verified token, and for
// agents the queues they serve (scopes "queue:NAME"; none means all).
type Viewer struct {
	ID     string
	Role   auth.Role
	Queues []string
}

// RoleSystem is the role of the gateway's own work (rules, schedules).
const RoleSystem auth.Role = "system"

// System is the viewer of the gateway's own work.
var System = Viewer{ID: "system", Role: RoleSystem}

// ViewerFrom builds a Viewer from verified claims.
func ViewerFrom(cl *auth.Claims) Viewer {
	v := Viewer{ID: cl.Subject, Role: cl.Role}
	for _, s := range cl.Scopes {
		if q, ok := strings.CutPrefix(s, "queue:"); ok && q != "" {
			v.Queues = append(v.Queues, q)
		}
	}
	return v
}

func (v Viewer) actor() api.Actor { return api.Actor{ID: v.ID, Role: string(v.Role)} }

func (v Viewer) isStaff() bool {
	return v.Role == auth.RoleAgent || v.Role == auth.RoleAdmin || v.Role == RoleSystem
}

// servesQueue reports whether an agent's queues include q.
func (v Viewer) servesQueue(q string) bool {
	return len(v.Queues) == 0 || slices.Contains(v.Queues, q)
}

// CanSee reports whether v may read t.
func (v Viewer) CanSee(t *api.Ticket) bool {
	switch {
	case v.Role == RoleSystem, v.Role == auth.RoleAdmin:
		return true
	case v.Role == auth.RoleAgent:
		return v.servesQueue(t.Queue)
	case v.Role == auth.RoleCustomer:
		return t.CustomerID == v.ID
	case v.Role == auth.RoleTechnician:
		return t.Technician != "" && t.Technician == v.ID
	}
	return false
}

// SeesEvent reports whether v may see ev (on a ticket v can see, or on
// v's own customer timeline). Internal notes are for staff only.
func (v Viewer) SeesEvent(ev *api.Event) bool {
	if v.Role == auth.RoleCustomer {
		return ev.CustomerID == v.ID && ev.Type != api.EventNote
	}
	return true
}

// seesOnTimeline is SeesEvent for a timeline the viewer was already found
// allowed to read: events that a merge brought over from a provisional
// customer carry that customer's ID, so only notes are hidden.
func (v Viewer) seesOnTimeline(ev *api.Event) bool {
	return v.Role != auth.RoleCustomer || ev.Type != api.EventNote
}

// postable lists the event types each role may post through the API; all
// others are written by the system (calls, diagnostics, dispatch, push).
var postable = map[auth.Role][]api.EventType{
	auth.RoleCustomer:   {api.EventMessage},
	auth.RoleTechnician: {api.EventMessage, api.EventNote},
	auth.RoleAgent:      {api.EventMessage, api.EventNote, api.EventOfferMade, api.EventPickupOffered},
	auth.RoleAdmin:      {api.EventMessage, api.EventNote, api.EventOfferMade, api.EventPickupOffered},
}

func (v Viewer) mayPost(t api.EventType) bool {
	return slices.Contains(postable[v.Role], t)
}
