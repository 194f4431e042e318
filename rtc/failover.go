package rtc

import (
	"context"
	"errors"
	"math"
	"time"

	"github.com/switchboard/switchboard/state"
)

// A call's media lives on one node (Node in its record). When that node
// dies the call would be stuck: its parties' PeerConnections fail, and
// nothing is left to end the call or free its agent. So every node keeps
// a liveness key alive while it runs, and a call whose node has lost its
// key is adopted by another node: the first party that joins again (a
// fresh PeerConnection, call.Rejoin in the SDK) makes the node it talks
// to the call's media node, and the other party joins there too; the
// sweep adopts the rest. A call nobody rejoins within ReconnectGrace of
// its adoption ends ("network"), as a call whose party's network dropped
// does, so its agent is freed.

// keyAlive is a node's liveness key.
func keyAlive(node string) string { return "rtc:alive:" + node }

// ixActive holds the connected calls -> answer time (ms), for the sweep.
const ixActive = "rtc:active"

// orphanBatch bounds the active calls one sweep looks at.
const orphanBatch = 1000

// alive renews this node's liveness key.
func (s *Service) alive(ctx context.Context) error {
	return s.st.Set(ctx, keyAlive(s.cfg.Node), []byte{1}, s.cfg.NodeTTL)
}

// mediaNode is the node that hosts rec's media now: rec.Node while it is
// alive, else this node, which adopts the call (or whichever node adopted
// it first).
func (s *Service) mediaNode(ctx context.Context, rec *callRecord) (string, error) {
	if rec.Node == s.cfg.Node || rec.ended() || !rec.Watched {
		return rec.Node, nil
	}
	if _, err := s.st.Get(ctx, keyAlive(rec.Node)); !errors.Is(err, state.ErrNotFound) {
		return rec.Node, err // alive, or the store failed
	}
	dead := rec.Node
	next, err := update(ctx, s.st, keyCall(rec.ID), 0, func(r *callRecord) error {
		if r.Node == dead {
			r.Node, r.AdoptedAt = s.cfg.Node, s.now().UTC()
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	if next.Node == s.cfg.Node {
		s.log.Warn("call adopted: its media node stopped", "call", rec.ID, "dead_node", dead)
	}
	*rec = next
	return rec.Node, nil
}

// sweepOrphans adopts the active calls whose media node died, and ends
// the calls whose media should be on this node but nobody joined within
// ReconnectGrace (of the answer, the adoption, or this node's start at
// started: a restarted node's calls lost their media too).
func (s *Service) sweepOrphans(ctx context.Context, started time.Time) error {
	active, err := s.st.ZRange(ctx, ixActive, state.RangeOptions{Min: math.Inf(-1), Max: math.Inf(1), Limit: orphanBatch})
	if err != nil {
		return err
	}
	for _, m := range active {
		rec, err := s.load(ctx, m.Member)
		if errors.Is(err, ErrNotFound) {
			_, _ = s.st.ZRem(ctx, ixActive, m.Member)
			continue
		}
		if err != nil {
			return err
		}
		if rec.ended() {
			_, _ = s.st.ZRem(ctx, ixActive, rec.ID)
			continue
		}
		if _, err := s.mediaNode(ctx, rec); err != nil {
			return err
		}
		if rec.Node != s.cfg.Node {
			s.relay.drop(rec.ID) // taken over while this node was cut off
			continue
		}
		// Its media should be here and is not: nobody joined since it was
		// answered, adopted, or this node started again.
		since := max(rec.AnsweredAt.UnixMilli(), rec.AdoptedAt.UnixMilli(), started.UnixMilli())
		if !s.relay.hosts(rec.ID) && s.now().UnixMilli()-since > s.cfg.ReconnectGrace.Milliseconds() {
			if _, err := s.finish(ctx, rec.ID, "system", "network"); err != nil && !errors.Is(err, ErrConflict) {
				return err
			}
		}
	}
	return nil
}

// runNode keeps this node's liveness key and sweeps orphaned calls until
// ctx ends; then it drops the key, so a node shut down on purpose hands
// its calls over at once instead of after NodeTTL.
func (s *Service) runNode(ctx context.Context) {
	started := s.now()
	t := time.NewTicker(s.cfg.NodeTTL / 3)
	defer t.Stop()
	for {
		if err := s.alive(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("node liveness not renewed", "err", err)
		}
		if err := s.sweepOrphans(ctx, started); err != nil && ctx.Err() == nil {
			s.log.Warn("orphaned call sweep failed", "err", err)
		}
		select {
		case <-ctx.Done():
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
			_ = s.st.Delete(dctx, keyAlive(s.cfg.Node))
			cancel()
			return
		case <-t.C:
		}
	}
}

// drop ends this node's room of call id, if it has one.
func (r *Relay) drop(id string) {
	r.mu.Lock()
	rm := r.rooms[id]
	r.mu.Unlock()
	if rm != nil {
		rm.stop()
	}
}

// hosts reports whether this node has a room for call id.
func (r *Relay) hosts(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rooms[id] != nil
}
