package push

import "time"

// BenchMessage builds an android message for benchmarks outside the package.
func BenchMessage(token, title, body string) *Message {
	return &Message{Device: &device{Platform: "android", Token: token}, Title: title, Body: body,
		Data: map[string]string{"kind": "technician_arriving", "ticket_id": "tk_1", "link": "switchboard://tickets/tk_1"},
		High: true, CollapseKey: "tech-tk_1", TTL: 30 * time.Minute}
}
