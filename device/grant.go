package device

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/state"
)

// Consent bounds: the owner lets agents watch live diagnostics for 1 hour
// to 7 days, 72 hours unless they say otherwise (a long weekend of
// troubleshooting).
const (
	DefaultGrantHours = 72
	MaxGrantHours     = 168
)

func keyGrant(id string) string { return "dev:grant:" + id }

// Grant lets agents see the appliance's live diagnostics for req.Hours.
// Only the owner grants; a new grant replaces the old.
func (s *Service) Grant(ctx context.Context, c Caller, id string, req api.GrantRequest) (api.Grant, error) {
	if c.Role != roleCustomer {
		return api.Grant{}, ErrNotFound
	}
	a, o, err := s.owned(ctx, c, id)
	if err != nil {
		return api.Grant{}, err
	}
	h := req.Hours
	if h == 0 {
		h = DefaultGrantHours
	}
	if h < 1 || h > MaxGrantHours {
		return api.Grant{}, fmt.Errorf("%w: hours must be 1 to %d", ErrInvalid, MaxGrantHours)
	}
	now := s.now().UTC()
	g := api.Grant{ApplianceID: a.ID, GrantedBy: o.CustomerID, GrantedAt: now, ExpiresAt: now.Add(time.Duration(h) * time.Hour)}
	raw, _ := json.Marshal(g)
	if err := s.st.Set(ctx, keyGrant(a.ID), raw, time.Duration(h)*time.Hour); err != nil {
		return api.Grant{}, err
	}
	return g, nil
}

// Revoke ends the owner's grant at once; revoking none is not an error.
func (s *Service) Revoke(ctx context.Context, c Caller, id string) error {
	if c.Role != roleCustomer {
		return ErrNotFound
	}
	a, _, err := s.owned(ctx, c, id)
	if err != nil {
		return err
	}
	return s.st.Delete(ctx, keyGrant(a.ID))
}

// activeGrant returns the appliance's grant while it lasts, else nil.
func (s *Service) activeGrant(ctx context.Context, id string) (*api.Grant, error) {
	raw, err := s.st.Get(ctx, keyGrant(id))
	if errors.Is(err, state.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var g api.Grant
	if err := json.Unmarshal(raw, &g); err != nil {
		return nil, err
	}
	if !s.now().Before(g.ExpiresAt) {
		return nil, nil
	}
	return &g, nil
}

// Live returns the appliance's recent frames: to its owner always, to
// agents and admins only under an active grant (ErrNoConsent otherwise;
// they still see what was attached to a ticket, through the ticket).
func (s *Service) Live(ctx context.Context, c Caller, id string) (api.LiveDiagnostics, error) {
	var aid string
	var g *api.Grant
	switch c.Role {
	case roleCustomer:
		a, _, err := s.owned(ctx, c, id)
		if err != nil {
			return api.LiveDiagnostics{}, err
		}
		aid = a.ID
		if g, err = s.activeGrant(ctx, aid); err != nil {
			return api.LiveDiagnostics{}, err
		}
	case auth.RoleAgent, auth.RoleAdmin:
		a, err := s.load(ctx, id)
		if err != nil {
			return api.LiveDiagnostics{}, err
		}
		aid = a.ID
		if g, err = s.activeGrant(ctx, aid); err != nil {
			return api.LiveDiagnostics{}, err
		}
		if g == nil {
			return api.LiveDiagnostics{}, ErrNoConsent
		}
	default:
		return api.LiveDiagnostics{}, ErrNotFound
	}
	fs, err := s.live(ctx, aid)
	if err != nil {
		return api.LiveDiagnostics{}, err
	}
	return api.LiveDiagnostics{ApplianceID: aid, Frames: fs, Grant: g}, nil
}
