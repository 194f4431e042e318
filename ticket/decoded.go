package ticket

import (
	"bytes"
	"slices"
	"sync"

	"github.com/switchboard/switchboard/api"
)

// decodedMax bounds the decoded-ticket cache.
const decodedMax = 4096

// decodedTickets keeps the decoded form of recently loaded tickets. Every
// event appended loads its ticket for the customer, queue and status it
// carries, and decoding the record's JSON was a fifth of an append's CPU.
// An entry is used only while the stored bytes are the same, so a changed
// ticket (on this node or another) is decoded afresh: the cache can miss
// but never answer wrongly.
type decodedTickets struct {
	mu sync.Mutex
	m  map[string]decodedTicket
}

type decodedTicket struct {
	raw []byte
	t   api.Ticket
}

// get returns a copy of the ticket decoded from raw, if it is cached.
func (d *decodedTickets) get(id string, raw []byte) (*api.Ticket, bool) {
	d.mu.Lock()
	e, ok := d.m[id]
	d.mu.Unlock()
	if !ok || !bytes.Equal(e.raw, raw) {
		return nil, false
	}
	t := e.t
	t.Tags = slices.Clone(t.Tags) // callers may change their copy
	return &t, true
}

// put caches t, decoded from raw; the caller no longer changes either.
func (d *decodedTickets) put(id string, raw []byte, t api.Ticket) {
	t.Tags = slices.Clone(t.Tags)
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.m == nil {
		d.m = make(map[string]decodedTicket)
	}
	if _, ok := d.m[id]; !ok && len(d.m) >= decodedMax {
		for k := range d.m { // any one: map order is random enough
			delete(d.m, k)
			break
		}
	}
	d.m[id] = decodedTicket{raw: raw, t: t}
}
