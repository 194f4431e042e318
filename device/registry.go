package device

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/state"
)

// Bounds of the registry.
const (
	// MaxImport is the most appliances one import may carry: a factory
	// batch of a production line's shift, and 1,000 records of ~300 bytes
	// stay well under the 1 MiB body limit.
	MaxImport = 1000
	// minSecret and maxSecret bound the secret: HMAC-SHA256 wants at least
	// its output size (RFC 2104 §3), 64 bytes is its block size.
	minSecret, maxSecret = 32, 64
)

// serialRe: serials go into MQTT topics and keys, so no '/', '+', '#',
// spaces or control characters; 64 characters covers GS1 serials (20).
var serialRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// nameRe bounds model and firmware names.
var nameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9 ._+-]{0,63}$`)

func keyAppliance(id string) string  { return "dev:ap:" + id }
func keySerial(serial string) string { return "dev:serial:" + serial }
func keyOwner(id string) string      { return "dev:owner:" + id }

// record is the stored appliance.
type record struct {
	ID        string    `json:"id"`
	Serial    string    `json:"serial"`
	Model     string    `json:"model"`
	Firmware  string    `json:"firmware,omitempty"`
	Sealed    []byte    `json:"sealed"` // AES-GCM of the secret, see seal.go
	CreatedAt time.Time `json:"created_at"`
}

// appliance is an opened record, secret in the clear, in memory only.
type appliance struct {
	record
	secret []byte
	mqttPW string
}

// owner is who paired the appliance.
type owner struct {
	CustomerID string    `json:"customer_id"`
	PairedAt   time.Time `json:"paired_at"`
}

// ValidSerial reports whether s is a well-formed serial.
func ValidSerial(s string) bool { return serialRe.MatchString(s) }

// Import registers appliances from the factory. Serials already registered
// are skipped unchanged (an import is safe to run twice); an invalid entry
// fails the whole import before anything is written.
func (s *Service) Import(ctx context.Context, req api.ImportAppliancesRequest) (api.ImportAppliancesResult, error) {
	if len(req.Appliances) == 0 || len(req.Appliances) > MaxImport {
		return api.ImportAppliancesResult{}, fmt.Errorf("%w: appliances must hold 1 to %d entries", ErrInvalid, MaxImport)
	}
	secrets := make([][]byte, len(req.Appliances))
	seen := map[string]bool{}
	for i, a := range req.Appliances {
		if !serialRe.MatchString(a.Serial) {
			return api.ImportAppliancesResult{}, fmt.Errorf("%w: appliances[%d].serial must be 1 to 64 letters, digits, '.', '_' or '-'", ErrInvalid, i)
		}
		if seen[a.Serial] {
			return api.ImportAppliancesResult{}, fmt.Errorf("%w: appliances[%d].serial appears twice", ErrInvalid, i)
		}
		seen[a.Serial] = true
		if !nameRe.MatchString(a.Model) {
			return api.ImportAppliancesResult{}, fmt.Errorf("%w: appliances[%d].model must be 1 to 64 plain characters", ErrInvalid, i)
		}
		if a.Firmware != "" && !nameRe.MatchString(a.Firmware) {
			return api.ImportAppliancesResult{}, fmt.Errorf("%w: appliances[%d].firmware must be at most 64 plain characters", ErrInvalid, i)
		}
		sec, err := base64.StdEncoding.DecodeString(a.Secret)
		if err != nil || len(sec) < minSecret || len(sec) > maxSecret {
			return api.ImportAppliancesResult{}, fmt.Errorf("%w: appliances[%d].secret must be base64 of %d to %d bytes", ErrInvalid, i, minSecret, maxSecret)
		}
		secrets[i] = sec
	}
	res := api.ImportAppliancesResult{Created: []api.Appliance{}}
	now := s.now().UTC()
	for i, a := range req.Appliances {
		id := newID("ap_")
		won, err := s.st.SetNX(ctx, keySerial(a.Serial), []byte(id), 0)
		if err != nil {
			return res, err
		}
		if !won {
			res.Skipped = append(res.Skipped, a.Serial)
			continue
		}
		r := record{ID: id, Serial: a.Serial, Model: a.Model, Firmware: a.Firmware, Sealed: s.seal.seal(id, secrets[i]), CreatedAt: now}
		raw, _ := json.Marshal(r)
		if err := s.st.Set(ctx, keyAppliance(id), raw, 0); err != nil {
			// Free the serial so the retried import creates it.
			_, _ = s.st.CompareAndDelete(ctx, keySerial(a.Serial), []byte(id))
			return res, err
		}
		res.Created = append(res.Created, view(r, nil))
	}
	return res, nil
}

func view(r record, o *owner) api.Appliance {
	a := api.Appliance{ID: r.ID, Serial: r.Serial, Model: r.Model, Firmware: r.Firmware, CreatedAt: r.CreatedAt}
	if o != nil {
		a.OwnerID = o.CustomerID
		t := o.PairedAt
		a.PairedAt = &t
	}
	return a
}

// load returns the opened appliance with id, from the cache when it can.
func (s *Service) load(ctx context.Context, id string) (*appliance, error) {
	if id == "" || len(id) > 64 {
		return nil, ErrNotFound
	}
	if a := s.cache.get(id); a != nil {
		return a, nil
	}
	raw, err := s.st.Get(ctx, keyAppliance(id))
	if errors.Is(err, state.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	var r record
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("device: appliance %s: corrupt record: %w", id, err)
	}
	sec, err := s.seal.open(r.ID, r.Sealed)
	if err != nil {
		return nil, fmt.Errorf("device: appliance %s: secret does not open (wrong seal key?): %w", id, err)
	}
	a := &appliance{record: r, secret: sec, mqttPW: MQTTPassword(sec)}
	s.cache.put(a)
	return a, nil
}

// bySerial returns the appliance with serial.
func (s *Service) bySerial(ctx context.Context, serial string) (*appliance, error) {
	if !serialRe.MatchString(serial) {
		return nil, ErrNotFound
	}
	id, err := s.st.Get(ctx, keySerial(serial))
	if errors.Is(err, state.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return s.load(ctx, string(id))
}

// ownerOf returns the appliance's owner, or nil when it has none.
func (s *Service) ownerOf(ctx context.Context, id string) (*owner, []byte, error) {
	raw, err := s.st.Get(ctx, keyOwner(id))
	if errors.Is(err, state.ErrNotFound) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	var o owner
	if err := json.Unmarshal(raw, &o); err != nil {
		return nil, nil, fmt.Errorf("device: owner of %s: corrupt: %w", id, err)
	}
	return &o, raw, nil
}

// Get returns the appliance for a caller: its owner, or staff (agents and
// admins see the registry). Anyone else gets ErrNotFound.
func (s *Service) Get(ctx context.Context, c Caller, id string) (api.Appliance, error) {
	a, err := s.load(ctx, id)
	if err != nil {
		return api.Appliance{}, err
	}
	o, _, err := s.ownerOf(ctx, id)
	if err != nil {
		return api.Appliance{}, err
	}
	if !c.staff() && (o == nil || o.CustomerID != c.ID || c.Role != roleCustomer) {
		return api.Appliance{}, ErrNotFound
	}
	return view(a.record, o), nil
}
