// Package device is the appliance domain: the factory registry, pairing
// through the owner's phone, signed diagnostics (relayed by the phone over
// HTTP, or its relay session, or published over MQTT), fault rules that act on them, commands
// down to the appliance, and the owner's consent to remote diagnostics.
//
// It is plain Go on the state seam: it must never import gateway or Fiber.
// It writes to the unified ticket stream only through ticket.Service, and
// it speaks MQTT through paho (a client like any other) and, embedded,
// runs a mochi-mqtt broker that the same paho client connects to.
//
// Keys it owns in the state seam (all prefixed "dev:"):
//
//	dev:ap:ID            the appliance record (secret sealed with AES-GCM)
//	dev:serial:SERIAL    serial -> ID
//	dev:owner:ID         the owner and when it paired
//	dev:seen:ID          the sequence window (high-water mark + bitmap)
//	dev:live:ID          the last frames, for the live view
//	dev:ticket:ID        the open ticket faults attach to
//	dev:fault:ID:CODE    the ticket a fault code was acted on
//	dev:grant:ID         the owner's consent grant (TTL = its length)
//	dev:cmd:ID / dev:cmds:ID  commands waiting for the relaying phone
//	dev:pair:*           used pairing codes and failure counters
//
// and one pub/sub channel, dev:cmds, which says "a command is waiting for
// appliance ID" to the relay sessions of every node.
package device
