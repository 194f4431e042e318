package device

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"slices"

	"github.com/switchboard/switchboard/api"
)

// Actions a fault rule may take.
const (
	ActionOpenTicket = "open_ticket"         // open a ticket with a priority
	ActionOrderPart  = "order_part"          // + part_ordered with the SKU
	ActionDispatch   = "dispatch_technician" // + technician_dispatched with the skill
	ActionSalesLead  = "sales_lead"          // + sales_lead_opened: unrepairable or end of life
	ActionNotify     = "notify"              // tell the owner only; no ticket
)

var actions = []string{ActionOpenTicket, ActionOrderPart, ActionDispatch, ActionSalesLead, ActionNotify}

// Rule maps a model (or "*" for any) and a fault code to an action.
type Rule struct {
	Model       string       `json:"model"`
	Code        string       `json:"code"`
	Action      string       `json:"action"`
	Priority    api.Priority `json:"priority,omitempty"`    // of the ticket; default high
	SKU         string       `json:"sku,omitempty"`         // order_part
	Skill       string       `json:"skill,omitempty"`       // dispatch_technician
	Reason      string       `json:"reason,omitempty"`      // sales_lead
	Description string       `json:"description,omitempty"` // shown to the owner and the agent
	Queue       string       `json:"queue,omitempty"`       // of the ticket; default general
}

// Rules is a rules file: the rules, and per model the range each reading
// must lie in (a frame with a reading outside is refused).
type Rules struct {
	Rules  []Rule                           `json:"rules"`
	Ranges map[string]map[string][2]float64 `json:"ranges,omitempty"`
}

// maxRules bounds a rules file: a catalogue of a few hundred models with a
// few dozen codes each.
const maxRules = 10_000

// LoadRules reads a rules file (JSON, see README) and checks every rule.
func LoadRules(path string) (*Rules, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseRules(raw)
}

// ParseRules parses and checks the JSON of a rules file.
func ParseRules(raw []byte) (*Rules, error) {
	var r Rules
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("rules: %w", err)
	}
	if len(r.Rules) > maxRules {
		return nil, fmt.Errorf("rules: more than %d rules", maxRules)
	}
	seen := map[[2]string]bool{}
	for i, x := range r.Rules {
		if x.Model != "*" && !nameRe.MatchString(x.Model) {
			return nil, fmt.Errorf("rules[%d]: model must be a model name or *", i)
		}
		if !faultRe.MatchString(x.Code) {
			return nil, fmt.Errorf("rules[%d]: code is malformed", i)
		}
		if seen[[2]string{x.Model, x.Code}] {
			return nil, fmt.Errorf("rules[%d]: model %s code %s appears twice", i, x.Model, x.Code)
		}
		seen[[2]string{x.Model, x.Code}] = true
		if !slices.Contains(actions, x.Action) {
			return nil, fmt.Errorf("rules[%d]: action must be one of %v", i, actions)
		}
		if x.Priority == "" {
			r.Rules[i].Priority = api.PriorityHigh
		} else if !slices.Contains([]api.Priority{api.PriorityLow, api.PriorityNormal, api.PriorityHigh, api.PriorityUrgent}, x.Priority) {
			return nil, fmt.Errorf("rules[%d]: priority must be low, normal, high or urgent", i)
		}
		switch {
		case x.Action == ActionOrderPart && x.SKU == "":
			return nil, fmt.Errorf("rules[%d]: order_part needs a sku", i)
		case x.Action == ActionDispatch && x.Skill == "":
			return nil, fmt.Errorf("rules[%d]: dispatch_technician needs a skill", i)
		case len(x.SKU) > 64 || len(x.Skill) > 64 || len(x.Reason) > 512 || len(x.Description) > 512 || len(x.Queue) > 64:
			return nil, fmt.Errorf("rules[%d]: a field is too long", i)
		}
	}
	for model, m := range r.Ranges {
		for k, rg := range m {
			if !readingRe.MatchString(k) || rg[0] > rg[1] {
				return nil, fmt.Errorf("ranges[%s][%s]: want a reading name and [min, max]", model, k)
			}
		}
	}
	return &r, nil
}

// match returns the rule for model and code: the model's own first, then
// the wildcard's.
func (r *Rules) match(model, code string) *Rule {
	var any *Rule
	for i := range r.Rules {
		x := &r.Rules[i]
		if x.Code != code {
			continue
		}
		if x.Model == model {
			return x
		}
		if x.Model == "*" && any == nil {
			any = x
		}
	}
	return any
}
