package main

import (
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// settings is a flag set in which every flag also reads SWITCHBOARD_<NAME>
// from the environment; a flag given on the command line wins.
type settings struct {
	fs *flag.FlagSet
}

func newSettings(name string, out io.Writer) *settings {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(out)
	return &settings{fs: fs}
}

// envName is the environment variable of a flag: --read-timeout is
// SWITCHBOARD_READ_TIMEOUT.
func envName(flagName string) string {
	return "SWITCHBOARD_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func (s *settings) str(p *string, name, def, usage string) {
	s.fs.StringVar(p, name, def, usage+" ("+envName(name)+")")
}

func (s *settings) dur(p *time.Duration, name string, def time.Duration, usage string) {
	s.fs.DurationVar(p, name, def, usage+" ("+envName(name)+")")
}

func (s *settings) num(p *int, name string, def int, usage string) {
	s.fs.IntVar(p, name, def, usage+" ("+envName(name)+")")
}

func (s *settings) boolean(p *bool, name string, def bool, usage string) {
	s.fs.BoolVar(p, name, def, usage+" ("+envName(name)+")")
}

func (s *settings) list(p *[]string, name string, def []string, usage string) {
	*p = def
	s.fs.Func(name, usage+", comma-separated ("+envName(name)+")", func(v string) error {
		*p = splitList(v)
		return nil
	})
}

func splitList(v string) []string {
	var out []string
	for _, part := range strings.Split(v, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

// parse reads the command line, then fills every flag not given there from
// its environment variable. Errors name the setting as the user wrote it.
func (s *settings) parse(args []string, getenv func(string) string) error {
	if err := s.fs.Parse(args); err != nil {
		return err
	}
	given := map[string]bool{}
	s.fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	s.fs.VisitAll(func(f *flag.Flag) {
		if err != nil || given[f.Name] {
			return
		}
		env := envName(f.Name)
		v := getenv(env)
		if v == "" {
			return
		}
		if serr := s.fs.Set(f.Name, v); serr != nil {
			err = fmt.Errorf("invalid %s=%s: %v", env, strconv.Quote(v), cleanFlagErr(serr))
		}
	})
	if err == nil && s.fs.NArg() > 0 {
		err = fmt.Errorf("unexpected argument %q", s.fs.Arg(0))
	}
	return err
}

// cleanFlagErr drops the flag package's Go-internal wording ("parse error").
func cleanFlagErr(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 && strings.Contains(msg, "parse") {
		return "not a valid value" + msg[i:]
	}
	return msg
}
