package device

import (
	"context"
	"encoding/binary"
	"errors"

	"github.com/switchboard/switchboard/state"
)

// seqWindow is how far behind the highest sequence number a frame may
// arrive and still be taken: a phone's offline buffer is replayed in
// order, and MQTT redelivery reorders only what is in flight (a broker's
// inflight window is 20 by default in Mosquitto), so 1,024 frames of
// reordering is ample. A frame older than the window is a replay.
const seqWindow = 1024

func keySeen(id string) string { return "dev:seen:" + id }

// window is the sequence numbers of one appliance already recorded: the
// highest, and a bitmap of the seqWindow numbers below and at it (bit i is
// hw-i). 8 + 128 bytes on the wire.
type window struct {
	hw   uint64
	bits [seqWindow / 64]uint64
}

func (w *window) seen(seq uint64) bool {
	if seq > w.hw {
		return false
	}
	d := w.hw - seq
	if d >= seqWindow {
		return true // too old to tell: treat as a replay
	}
	return w.bits[d/64]&(1<<(d%64)) != 0
}

func (w *window) mark(seq uint64) {
	if seq > w.hw {
		w.shift(seq - w.hw)
		w.hw = seq
	}
	d := w.hw - seq
	if d < seqWindow {
		w.bits[d/64] |= 1 << (d % 64)
	}
}

// shift moves the bitmap n places toward older numbers.
func (w *window) shift(n uint64) {
	if n >= seqWindow {
		w.bits = [seqWindow / 64]uint64{}
		return
	}
	words, bitsN := int(n/64), n%64
	var out [seqWindow / 64]uint64
	for i := len(out) - 1; i >= words; i-- {
		v := w.bits[i-words] << bitsN
		if bitsN != 0 && i-words-1 >= 0 {
			v |= w.bits[i-words-1] >> (64 - bitsN)
		}
		out[i] = v
	}
	w.bits = out
}

func (w *window) encode() []byte {
	b := make([]byte, 8+8*len(w.bits))
	binary.BigEndian.PutUint64(b, w.hw)
	for i, v := range w.bits {
		binary.BigEndian.PutUint64(b[8+8*i:], v)
	}
	return b
}

func decodeWindow(b []byte) (window, bool) {
	var w window
	if len(b) != 8+8*len(w.bits) {
		return w, false
	}
	w.hw = binary.BigEndian.Uint64(b)
	for i := range w.bits {
		w.bits[i] = binary.BigEndian.Uint64(b[8+8*i:])
	}
	return w, true
}

// readWindow returns the appliance's window and its raw value (nil when
// it has none yet), for a later markSeen.
func (s *Service) readWindow(ctx context.Context, id string) (window, []byte, error) {
	raw, err := s.st.Get(ctx, keySeen(id))
	if errors.Is(err, state.ErrNotFound) {
		return window{}, nil, nil
	}
	if err != nil {
		return window{}, nil, err
	}
	w, ok := decodeWindow(raw)
	if !ok {
		return window{}, nil, errors.New("device: corrupt sequence window")
	}
	return w, raw, nil
}

// markSeen records seqs in the window with compare-and-swap; marking is a
// union, so a lost race is merged and retried.
func (s *Service) markSeen(ctx context.Context, id string, w window, raw []byte, seqs []uint64) error {
	for range 16 { // a handful of racing nodes settle in a few rounds
		for _, q := range seqs {
			w.mark(q)
		}
		ok, err := s.st.CompareAndSwap(ctx, keySeen(id), raw, w.encode(), 0)
		if err != nil || ok {
			return err
		}
		if w, raw, err = s.readWindow(ctx, id); err != nil {
			return err
		}
	}
	return errors.New("device: sequence window contended")
}
