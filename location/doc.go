// Package location is where field technicians are and where they go:
// live positions from their phones (batches over HTTP or a WebSocket),
// bounded position history, technician profiles (skills, on duty), the
// store catalogue (opening hours in the store's time zone, capabilities,
// stock per SKU, CSV and GeoJSON import), nearest-store and
// nearest-technician queries with an ETA, dispatch (rank, reserve
// atomically, offer with an accept timeout, move on to the next
// candidate), arrival detection, and what a customer may see of the
// technician on the way.
//
// It is plain Go on the state seam, so it runs the same on the embedded
// store (one node) and on Redis (many nodes): positions live in geo sets,
// the latest fix per technician in a key replaced by compare-and-swap,
// reservations in set-if-absent claims. Everything it does to a ticket
// goes through ticket.Service (Append for technician_dispatched,
// technician_arriving and technician_arrived; Update to set the ticket's
// technician), so push, consoles and webhooks learn of it from the
// stream.
//
// ETA is straight-line distance times a detour factor divided by a
// configured average speed (Config.AverageSpeedKmh); no outside routing
// service is called.
//
// This package must never import gateway, Fiber or another domain's
// internals (push, rtc, media, device); it may import api, auth, state
// and ticket.
package location
