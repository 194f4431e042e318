package device

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/state"
)

// Command bounds: an appliance does one self-test at a time; 20 queued
// covers a day of agents asking while the phone is away, and a day is
// long enough for a phone to come back.
const (
	maxPendingCommands = 20
	commandTTL         = 24 * time.Hour
)

func keyCommand(id string) string      { return "dev:cmd:" + id }
func keyCommandQueue(ap string) string { return "dev:cmds:" + ap }

// CommandTopic is the MQTT topic an appliance with serial receives
// commands on; DiagnosticsTopic the one it publishes frames to.
func CommandTopic(serial string) string     { return "appliances/" + serial + "/commands" }
func DiagnosticsTopic(serial string) string { return "appliances/" + serial + "/diagnostics" }

// CommandSig is the signature of a command, as the appliance checks it.
func CommandSig(secret []byte, cmd api.Command) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("sbcmd1." + cmd.ID + "." + cmd.Kind + "." + strconv.FormatInt(cmd.IssuedAt.Unix(), 10)))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// Command sends a command to the appliance: published over MQTT when a
// client runs, and queued for the relaying phone either way (pushed at
// once to an open relay session, else fetched; the appliance acts on a
// command ID once). Agents may command an appliance that has an open
// ticket or an active grant: its owner asked for help.
func (s *Service) Command(ctx context.Context, c Caller, id string, req api.CommandRequest) (api.Command, error) {
	if !c.staff() {
		return api.Command{}, ErrNotFound
	}
	if req.Kind != api.CommandSelfTest {
		return api.Command{}, fmt.Errorf("%w: kind must be %s", ErrInvalid, api.CommandSelfTest)
	}
	a, err := s.load(ctx, id)
	if err != nil {
		return api.Command{}, err
	}
	g, err := s.activeGrant(ctx, a.ID)
	if err != nil {
		return api.Command{}, err
	}
	tk, err := s.openTicket(ctx, a.ID)
	if err != nil {
		return api.Command{}, err
	}
	if g == nil && tk == "" {
		return api.Command{}, ErrNoConsent
	}
	n, err := s.st.ZCard(ctx, keyCommandQueue(a.ID))
	if err != nil {
		return api.Command{}, err
	}
	if n >= maxPendingCommands {
		return api.Command{}, fmt.Errorf("%w: %d commands are waiting for the appliance", ErrTooMany, n)
	}
	cmd := api.Command{ID: newID("cmd_"), ApplianceID: a.ID, Serial: a.Serial, Kind: req.Kind, IssuedAt: s.now().UTC().Truncate(time.Second), IssuedBy: c.ID}
	cmd.Sig = CommandSig(a.secret, cmd)
	raw, _ := json.Marshal(cmd)
	if err := s.st.Set(ctx, keyCommand(cmd.ID), raw, commandTTL); err != nil {
		return api.Command{}, err
	}
	if err := s.st.ZAdd(ctx, keyCommandQueue(a.ID), cmd.ID, float64(cmd.IssuedAt.UnixMilli())); err != nil {
		return api.Command{}, err
	}
	if err := s.st.Publish(ctx, chCommands, []byte(a.ID)); err != nil {
		// A relay session finds it at its next periodic check.
		s.log.Warn("relay sessions not told of a command", "appliance", a.ID, "err", err)
	}
	if p := s.pub.Load(); p != nil {
		if err := (*p)(ctx, CommandTopic(a.Serial), raw); err != nil {
			// The phone still fetches it; the log says MQTT missed it.
			s.log.Warn("command not published over MQTT", "appliance", a.ID, "err", err)
		}
	}
	return cmd, nil
}

// PendingCommands hands the relaying phone the appliance's waiting
// commands, each once (they leave the queue as they are handed out).
func (s *Service) PendingCommands(ctx context.Context, c Caller, id string) (api.CommandList, error) {
	if c.Role != auth.RoleDevice {
		return api.CommandList{}, ErrNotFound
	}
	a, _, err := s.owned(ctx, c, id)
	if err != nil {
		return api.CommandList{}, err
	}
	ms, err := s.st.ZPopMin(ctx, keyCommandQueue(a.ID), maxPendingCommands)
	if err != nil {
		return api.CommandList{}, err
	}
	out := api.CommandList{Commands: []api.Command{}}
	for _, m := range ms {
		raw, err := s.st.Get(ctx, keyCommand(m.Member))
		if errors.Is(err, state.ErrNotFound) {
			continue // expired
		}
		if err != nil {
			return out, err
		}
		var cmd api.Command
		if json.Unmarshal(raw, &cmd) == nil {
			out.Commands = append(out.Commands, cmd)
		}
	}
	return out, nil
}
