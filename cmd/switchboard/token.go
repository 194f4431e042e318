package main

import (
	"fmt"
	"io"
	"time"

	"github.com/switchboard/switchboard/auth"
)

// token mints an access token with the server's key, for operators and for
// trying the API with curl. It prints the token alone, so
// TOKEN=$(switchboard token --sub alice --role customer) works.
func token(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	var (
		c      Config
		sub    string
		role   string
		ttl    time.Duration
		scopes []string
	)
	s := newSettings("switchboard token", stderr)
	registerCommon(s, &c)
	s.fs.StringVar(&sub, "sub", "", "subject: the user or device ID (required)")
	s.fs.StringVar(&role, "role", "", "customer, technician, agent, admin or device (required)")
	s.fs.DurationVar(&ttl, "ttl", 15*time.Minute, "lifetime of the token")
	s.list(&scopes, "scope", nil, "scopes, e.g. appliance:ID for a device token")
	if err := s.parse(args, getenv); err != nil {
		fmt.Fprintln(stderr, "switchboard token:", err)
		return exitUsage
	}
	r, err := auth.ParseRole(role)
	switch {
	case sub == "":
		err = fmt.Errorf("--sub is required")
	case err != nil:
		err = fmt.Errorf("invalid --role %q: want customer, technician, agent, admin or device", role)
	case ttl <= 0 || ttl > 365*24*time.Hour:
		err = fmt.Errorf("invalid --ttl %s: want between 1s and 8760h", ttl)
	}
	if err != nil {
		fmt.Fprintln(stderr, "switchboard token:", err)
		return exitUsage
	}
	key, err := auth.LoadOrCreateKey(keyDir(c.Data))
	if err != nil {
		fmt.Fprintln(stderr, "switchboard token:", err)
		return exitFail
	}
	tok, _, err := auth.NewIssuer(c.Auth, key, nil).Access(sub, r, scopes, ttl)
	if err != nil {
		fmt.Fprintln(stderr, "switchboard token:", err)
		return exitFail
	}
	fmt.Fprintln(stdout, tok)
	return exitOK
}
