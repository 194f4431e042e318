package device

import (
	"strings"

	"github.com/switchboard/switchboard/auth"
)

const roleCustomer = auth.RoleCustomer

// Scope prefixes of relay tokens: "appliance:ID" names the one appliance
// the token may relay for, "owner:CUSTOMER" the owner it was issued to, so
// a token outlives neither a release nor a transfer.
const (
	scopeAppliance = "appliance:"
	scopeOwner     = "owner:"
)

// Caller is who asks, from verified token claims.
type Caller struct {
	ID     string
	Role   auth.Role
	Scopes []string
}

// CallerFrom builds a Caller from verified claims.
func CallerFrom(cl *auth.Claims) Caller {
	return Caller{ID: cl.Subject, Role: cl.Role, Scopes: cl.Scopes}
}

func (c Caller) staff() bool { return c.Role == auth.RoleAgent || c.Role == auth.RoleAdmin }

// scoped returns the value of the first scope with prefix.
func (c Caller) scoped(prefix string) string {
	for _, s := range c.Scopes {
		if v, ok := strings.CutPrefix(s, prefix); ok {
			return v
		}
	}
	return ""
}
