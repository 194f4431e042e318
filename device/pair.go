package device

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/state"
)

// Guessing bounds. An 8-digit code has 10^8 values and at most 3 are
// accepted at any moment (the current step and one either side), so one
// guess succeeds with probability 3e-8. Wrong (or expired) codes count
// against the serial and against the user in a fixed 24-hour window;
// after MaxFailuresPerSerial the serial refuses every attempt until the
// window ends. So 1,000 guesses get 10 tries and 990 refusals, and over a
// whole year an attacker gets 3,650 tries: a success chance of about
// 1.1e-4, against a code the owner reads off a panel in the same room.
// The per-user bound stops one account from spraying many serials.
const (
	MaxFailuresPerSerial = 10
	MaxFailuresPerUser   = 20
	failureWindow        = 24 * time.Hour
	// usedCodeTTL outlives every step a code is accepted at.
	usedCodeTTL = (2*codeSkew + 2) * CodeStep
)

func keyFailSerial(serial string) string { return "dev:pair:fail:s:" + serial }
func keyFailUser(user string) string     { return "dev:pair:fail:u:" + user }
func keyUsedCode(id, purpose string, step int64) string {
	return "dev:pair:used:" + id + ":" + purpose + ":" + strconv.FormatInt(step, 10)
}

// Pair binds the appliance with req.Serial to the calling customer if
// req.Code is its current pairing code, and returns a relay token for the
// customer's phone. An appliance owned by someone else is ErrOwned unless
// the code is a factory-reset code.
func (s *Service) Pair(ctx context.Context, c Caller, req api.PairRequest) (api.PairResult, error) {
	if c.Role != roleCustomer {
		return api.PairResult{}, fmt.Errorf("%w: only a customer pairs an appliance", ErrForbidden)
	}
	if !serialRe.MatchString(req.Serial) {
		return api.PairResult{}, fmt.Errorf("%w: serial is malformed", ErrInvalid)
	}
	if !validCode(req.Code) {
		return api.PairResult{}, fmt.Errorf("%w: code must be %d digits", ErrInvalid, CodeDigits)
	}
	if err := s.checkLock(ctx, req.Serial, c.ID); err != nil {
		return api.PairResult{}, err
	}
	a, err := s.bySerial(ctx, req.Serial)
	if err == ErrNotFound {
		// An unknown serial costs a guess too, so serials cannot be
		// enumerated faster than codes can be guessed.
		s.fail(ctx, req.Serial, c.ID)
		return api.PairResult{}, ErrBadCode
	}
	if err != nil {
		return api.PairResult{}, err
	}
	purpose := purposePair
	if req.FactoryReset {
		purpose = purposeReset
	}
	step, ok, expired := matchCode(a.secret, purpose, req.Code, s.now())
	if !ok {
		s.fail(ctx, req.Serial, c.ID)
		if expired {
			return api.PairResult{}, ErrCodeExpired
		}
		return api.PairResult{}, ErrBadCode
	}
	// A code already used is refused as such, whoever sends it; owned by
	// someone else is refused before the code is used up, so once they
	// release it the code on the panel still pairs it.
	usedKey := keyUsedCode(a.ID, purpose, step)
	if _, err := s.st.Get(ctx, usedKey); err == nil {
		return api.PairResult{}, ErrCodeUsed
	} else if !errors.Is(err, state.ErrNotFound) {
		return api.PairResult{}, err
	}
	cur, curRaw, err := s.ownerOf(ctx, a.ID)
	if err != nil {
		return api.PairResult{}, err
	}
	if cur != nil && cur.CustomerID != c.ID && !req.FactoryReset {
		return api.PairResult{}, ErrOwned
	}
	fresh, err := s.st.SetNX(ctx, usedKey, []byte(c.ID), usedCodeTTL)
	if err != nil {
		return api.PairResult{}, err
	}
	if !fresh {
		return api.PairResult{}, ErrCodeUsed
	}
	o := owner{CustomerID: c.ID, PairedAt: s.now().UTC()}
	raw, _ := json.Marshal(o)
	swapped, err := s.st.CompareAndSwap(ctx, keyOwner(a.ID), curRaw, raw, 0)
	if err != nil {
		return api.PairResult{}, err
	}
	if !swapped { // someone else paired or released in between
		return api.PairResult{}, ErrOwned
	}
	if cur != nil && cur.CustomerID != c.ID {
		// A new owner: the old owner's grant and open ticket are theirs.
		_ = s.st.Delete(ctx, keyGrant(a.ID))
		_ = s.st.Delete(ctx, keyOpenTicket(a.ID))
		s.log.Info("appliance transferred by factory reset", "appliance", a.ID)
	}
	tok, err := s.relayToken(a.ID, c.ID)
	if err != nil {
		return api.PairResult{}, err
	}
	return api.PairResult{Appliance: view(a.record, &o), RelayToken: tok}, nil
}

// checkLock refuses attempts for a serial or user past their failures.
func (s *Service) checkLock(ctx context.Context, serial, user string) error {
	for _, k := range []struct {
		key string
		max int64
	}{{keyFailSerial(serial), MaxFailuresPerSerial}, {keyFailUser(user), MaxFailuresPerUser}} {
		n, err := s.st.Incr(ctx, k.key, 0, failureWindow)
		if err != nil {
			return err
		}
		if n >= k.max {
			return &LockedError{RetryAfterSeconds: int(failureWindow / time.Second)}
		}
	}
	return nil
}

// fail counts a wrong attempt; a store error here only loses a count.
func (s *Service) fail(ctx context.Context, serial, user string) {
	if _, err := s.st.Incr(ctx, keyFailSerial(serial), 1, failureWindow); err != nil {
		s.log.Warn("counting pairing failure", "err", err)
	}
	if _, err := s.st.Incr(ctx, keyFailUser(user), 1, failureWindow); err != nil {
		s.log.Warn("counting pairing failure", "err", err)
	}
}

// Release removes the caller's ownership of the appliance, so someone
// else may pair it. Relay tokens issued to the old owner stop working at
// once (every ingest checks the owner).
func (s *Service) Release(ctx context.Context, c Caller, id string) error {
	a, err := s.load(ctx, id)
	if err != nil {
		return err
	}
	cur, raw, err := s.ownerOf(ctx, a.ID)
	if err != nil {
		return err
	}
	switch {
	case cur == nil:
		if c.Role == auth.RoleAdmin {
			return nil
		}
		return ErrNotFound
	case c.Role == auth.RoleAdmin:
	case c.Role == roleCustomer && cur.CustomerID == c.ID:
	default:
		return ErrNotFound
	}
	ok, err := s.st.CompareAndDelete(ctx, keyOwner(a.ID), raw)
	if err != nil {
		return err
	}
	if !ok {
		return ErrNotFound
	}
	_ = s.st.Delete(ctx, keyGrant(a.ID))
	_ = s.st.Delete(ctx, keyOpenTicket(a.ID))
	return nil
}

// RefreshRelayToken issues a new relay token for the appliance to its
// owner: the customer themselves, or the phone's current relay token
// while its owner still owns the appliance.
func (s *Service) RefreshRelayToken(ctx context.Context, c Caller, id string) (api.RelayToken, error) {
	a, o, err := s.owned(ctx, c, id)
	if err != nil {
		return api.RelayToken{}, err
	}
	return s.relayToken(a.ID, o.CustomerID)
}

// owned returns the appliance and its owner if c is that owner, or a
// relay token issued to that owner for that appliance; else ErrNotFound.
func (s *Service) owned(ctx context.Context, c Caller, id string) (*appliance, *owner, error) {
	a, err := s.load(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	o, _, err := s.ownerOf(ctx, a.ID)
	if err != nil {
		return nil, nil, err
	}
	if o == nil {
		return nil, nil, ErrNotFound
	}
	switch c.Role {
	case roleCustomer:
		if o.CustomerID == c.ID {
			return a, o, nil
		}
	case auth.RoleDevice:
		if c.ID == a.ID && c.scoped(scopeAppliance) == a.ID && c.scoped(scopeOwner) == o.CustomerID {
			return a, o, nil
		}
	}
	return nil, nil, ErrNotFound
}

func (s *Service) relayToken(id, customer string) (api.RelayToken, error) {
	tok, cl, err := s.issuer.Access(id, auth.RoleDevice, []string{scopeAppliance + id, scopeOwner + customer}, s.ttl)
	if err != nil {
		return api.RelayToken{}, err
	}
	return api.RelayToken{Token: tok, ExpiresAt: cl.ExpiresAt.Time.UTC()}, nil
}
