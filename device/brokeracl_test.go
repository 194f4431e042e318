package device_test

import (
	"context"
	"encoding/json"
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
