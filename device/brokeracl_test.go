package device_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/device"
	"github.com/switchboard/switchboard/internal/poll"
)

// TestBrokerClientIDIsBoundToTheLogin: an appliance logs in with its own
// serial and password but presents another appliance's client ID. MQTT
// hands a client ID's session (its subscriptions and the QoS 1 messages
// queued for it) to whoever connects with that ID, and the broker's ACL is
// not asked again for queued messages: so eve's appliance would take over
// joe's session and receive the commands queued for joe's appliance (and
// with the gateway's ID, the gateway's session). The broker refuses the
// connection instead, and the session stays its owner's.
func TestBrokerClientIDIsBoundToTheLogin(t *testing.T) {
	r := newRig(t)
	b := r.startBroker(t)
	r.startGatewayMQTT(t, b.URL(), false)
	broker := "tcp://" + b.Addr()
	joes := r.register(t, "PJ-100")
	eves := r.register(t, "PJ-100")
	r.pair(t, joes, "joe")
	r.pair(t, eves, "eve")

	// Joe's appliance subscribes to its commands and goes offline,
	// keeping its session: commands queue for it at the broker.
	cj, err := applianceClient(t, broker, joes.serial, joes.serial, device.MQTTPassword(joes.secret))
	if err != nil {
		t.Fatal(err)
	}
	if tok := cj.Subscribe(device.CommandTopic(joes.serial), 1, nil); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	cj.Disconnect(100)
	if _, err := r.svc.Grant(context.Background(), customer("joe"), joes.id, api.GrantRequest{Hours: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.svc.Command(context.Background(), agent("ag1"), joes.id, api.CommandRequest{Kind: api.CommandSelfTest}); err != nil {
		t.Fatal(err)
	}

	for _, id := range []string{joes.serial, "switchboard-test-gw", ""} {
		got := make(chan api.Command, 4)
		o := paho.NewClientOptions().AddBroker(broker).SetClientID(id).SetCleanSession(id == "").
			SetAutoReconnect(false).SetConnectRetry(false).
			SetUsername(eves.serial).SetPassword(device.MQTTPassword(eves.secret)).
			SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) {
				var c api.Command
				if json.Unmarshal(m.Payload(), &c) == nil {
					got <- c
				}
			})
		c := paho.NewClient(o)
		tok := c.Connect()
		if !tok.WaitTimeout(10 * time.Second) {
			t.Fatalf("client ID %q: connect timed out", id)
		}
		if tok.Error() == nil {
			c.Disconnect(100)
			t.Fatalf("eve's appliance connected with client ID %q", id)
		}
		select {
		case cmd := <-got:
			t.Fatalf("eve's appliance received joe's command %+v", cmd)
		case <-time.After(200 * time.Millisecond):
		}
	}

	// Joe's appliance, back, still gets its command.
	got := make(chan api.Command, 1)
	o := paho.NewClientOptions().AddBroker(broker).SetClientID(joes.serial).SetCleanSession(false).
		SetUsername(joes.serial).SetPassword(device.MQTTPassword(joes.secret)).
		SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) {
			var c api.Command
			if json.Unmarshal(m.Payload(), &c) == nil {
				select {
				case got <- c:
				default:
				}
			}
		})
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("joe's appliance reconnecting: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	var cmd api.Command
	poll.Until(t, 10*time.Second, 10*time.Millisecond, func() error {
		select {
		case cmd = <-got:
			return nil
		default:
			return context.DeadlineExceeded
		}
	})
	if cmd.Serial != joes.serial || cmd.Sig != device.CommandSig(joes.secret, cmd) {
		t.Fatalf("joe's appliance got %+v", cmd)
	}
}

// TestBrokerBoundsWhatClientsSend: the embedded broker listens on a
// public port, so what anyone may make it hold is bounded. A CONNECT (or
// any packet) declaring more bytes than a frame needs is refused from its
// header, before the broker allocates the declared size (MQTT allows 256
// MB); a connection that never sends CONNECT is closed after
// connectWait; and retained messages are not kept, since an appliance may
// publish under any topic of its own and each retained one would stay in
// memory for good.
func TestBrokerBoundsWhatClientsSend(t *testing.T) {
	r := newRig(t)
	b := r.startBroker(t)
	// closed reports how soon the broker closed c, within limit.
	closed := func(t *testing.T, c net.Conn, limit time.Duration) time.Duration {
		t.Helper()
		start := time.Now()
		_ = c.SetReadDeadline(start.Add(limit))
		_, err := io.Copy(io.Discard, c)
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("the broker kept the connection open for %v", limit)
		}
		return time.Since(start)
	}

	t.Run("oversized packet header", func(t *testing.T) {
		c, err := net.Dial("tcp", b.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// CONNECT with a remaining length of 200,000,000 bytes.
		if _, err := c.Write([]byte{0x10, 0x80, 0x84, 0xaf, 0x5f}); err != nil {
			t.Fatal(err)
		}
		closed(t, c, 3*time.Second)
	})

	t.Run("silent connection", func(t *testing.T) {
		c, err := net.Dial("tcp", b.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if d := closed(t, c, 20*time.Second); d < 5*time.Second {
			t.Fatalf("closed after %v: too soon for a slow link", d)
		}
	})

	t.Run("retained messages", func(t *testing.T) {
		u := r.register(t, "PJ-100")
		r.pair(t, u, "joe")
		c, err := applianceClient(t, "tcp://"+b.Addr(), u.serial, u.serial, device.MQTTPassword(u.secret))
		if err != nil {
			t.Fatal(err)
		}
		if tok := c.Publish(device.CommandTopic(u.serial), 1, true, []byte(`{"kept":"forever"}`)); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
		got := make(chan string, 1)
		tok := c.Subscribe(device.CommandTopic(u.serial), 1, func(_ paho.Client, m paho.Message) {
			select {
			case got <- string(m.Payload()):
			default:
			}
		})
		if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("subscribe: %v", tok.Error())
		}
		select {
		case p := <-got:
			t.Fatalf("the broker kept a retained message: %s", p)
		case <-time.After(500 * time.Millisecond):
		}
	})
}
