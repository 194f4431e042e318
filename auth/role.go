package auth

import "fmt"

// Role is what a token's subject is allowed to be. Roles are exact,
// lower-case strings on the wire ("role" claim).
type Role string

// The roles Switchboard knows. Anything else is refused.
const (
	RoleCustomer   Role = "customer"   // owns tickets and appliances
	RoleTechnician Role = "technician" // field staff: positions, jobs
	RoleAgent      Role = "agent"      // console: calls, tickets, dispatch
	RoleAdmin      Role = "admin"      // operators: appliance import, everything
	RoleDevice     Role = "device"     // an appliance with its own link; scoped by "appliance:ID"
)

// ParseRole returns the Role named s exactly (case-sensitive), or an error
// wrapping ErrInvalidRole.
func ParseRole(s string) (Role, error) {
	r := Role(s)
	if !r.Valid() {
		if len(s) > 32 { // s may come from a token: keep error messages short
			s = s[:32] + "..."
		}
		return "", fmt.Errorf("%w: %q", ErrInvalidRole, s)
	}
	return r, nil
}

// Valid reports whether r is one of the Role constants.
func (r Role) Valid() bool {
	switch r {
	case RoleCustomer, RoleTechnician, RoleAgent, RoleAdmin, RoleDevice:
		return true
	}
	return false
}

// String returns the role's wire name.
func (r Role) String() string { return string(r) }
