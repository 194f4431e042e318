package device

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
)

// Broker is the embedded MQTT broker (mochi-mqtt) of a single-node
// install. Appliances log in with their serial (as username and client
// ID) and MQTTPassword; each may publish only under appliances/{its
// serial}/ and subscribe only to its command topic. The gateway's own
// client logs in with a random password made at start, known only to
// this process.
type Broker struct {
	srv        *mqtt.Server
	ln         *acceptGate
	user, pass string
}

// gatewayUser is the embedded broker's account of the gateway's client.
const gatewayUser = "switchboard-gateway"

// Bounds of what a client may make the broker hold. mochi-mqtt's defaults
// have none: it allocates whatever size a packet header declares (up to
// 256 MB, before the login is checked), waits for CONNECT for ever, and
// keeps every retained message (an appliance may publish under any topic
// of its own). Retained messages are off: nothing here uses them.
const (
	// maxPacketBytes is twice the largest payload the ingest reads
	// (2×MaxFrameBytes, a frame in its JSON envelope), so the topic,
	// properties and a CONNECT's credentials fit with room to spare.
	maxPacketBytes = 4 * MaxFrameBytes
	// connectWait is how long a new connection may take to send CONNECT,
	// as the gateway's other sockets allow a first message; after it
	// mochi keeps the deadline by the client's keepalive.
	connectWait = 10 * time.Second
)

// NewBroker listens on addr now, so a taken port fails start-up with a
// clear error; Run serves.
func (s *Service) NewBroker(addr string, log *slog.Logger) (*Broker, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("MQTT broker: listen on %s: %w (another broker there? set --mqtt-addr, or --mqtt-url to use it)", addr, err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	b := &Broker{ln: newAcceptGate(ln), user: gatewayUser, pass: rand.Text()}
	caps := mqtt.NewDefaultServerCapabilities()
	caps.MaximumPacketSize = maxPacketBytes
	caps.RetainAvailable = 0
	b.srv = mqtt.New(&mqtt.Options{InlineClient: false, Capabilities: caps, Logger: log.With("component", "mqtt-broker")})
	if err := b.srv.AddHook(&aclHook{svc: s, user: b.user, pass: b.pass}, nil); err != nil {
		ln.Close()
		return nil, err
	}
	if err := b.srv.AddListener(listeners.NewNet("tcp", b.ln)); err != nil {
		ln.Close()
		return nil, err
	}
	return b, nil
}

// Addr is the address the broker listens on.
func (b *Broker) Addr() string { return b.ln.Addr().String() }

// URL is the broker's URL for the gateway's own client, credentials in it.
func (b *Broker) URL() string {
	return "tcp://" + b.user + ":" + b.pass + "@" + b.Addr()
}

// Close releases the broker's port when Run will not run (start-up
// failed after NewBroker); after Run it does nothing useful, and no harm.
func (b *Broker) Close() error { return b.ln.Close() }

// Run serves until ctx ends, then closes every connection.
func (b *Broker) Run(ctx context.Context) error {
	if err := b.srv.Serve(); err != nil {
		return err
	}
	<-ctx.Done()
	b.ln.settle(settleWait) // see acceptGate
	return b.srv.Close()
}

// aclHook authenticates appliances and confines them to their topics.
type aclHook struct {
	mqtt.HookBase
	svc        *Service
	user, pass string
}

func (h *aclHook) ID() string { return "switchboard-appliances" }

func (h *aclHook) Provides(b byte) bool {
	return bytes.Contains([]byte{mqtt.OnConnectAuthenticate, mqtt.OnACLCheck}, []byte{b})
}

func (h *aclHook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	user, pass := string(pk.Connect.Username), pk.Connect.Password
	if user == h.user {
		return subtle.ConstantTimeCompare(pass, []byte(h.pass)) == 1
	}
	// An appliance's client ID must be its serial. MQTT gives a client
	// ID's session (subscriptions, queued QoS 1 messages) to whoever
	// connects with that ID, and mochi resends the queued messages without
	// asking the ACL: another ID would let one appliance take over
	// another's session, or the gateway's, and read what was queued there.
	if cl.ID != user {
		return false
	}
	a, err := h.svc.bySerial(context.Background(), user)
	if err != nil {
		return false
	}
	return subtle.ConstantTimeCompare(pass, []byte(a.mqttPW)) == 1
}

func (h *aclHook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	user := string(cl.Properties.Username)
	if user == h.user {
		return true
	}
	if write {
		return strings.HasPrefix(topic, "appliances/"+user+"/") && !strings.ContainsAny(topic, "+#")
	}
	return topic == CommandTopic(user)
}
