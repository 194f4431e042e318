package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/device"
	"github.com/switchboard/switchboard/state"
	"github.com/switchboard/switchboard/ticket"
)

// deviceConfig holds the appliance settings: MQTT and the fault rules.
type deviceConfig struct {
	MQTTAddr     string
	MQTTURL      string
	MQTTClientID string
	MQTTShared   bool
	Rules        string
	RelayTTL     time.Duration
}

func registerDevice(s *settings, c *deviceConfig) {
	host, _ := os.Hostname()
	s.str(&c.MQTTAddr, "mqtt-addr", ":1883", "embedded MQTT broker address for appliances; empty disables it (ignored with --mqtt-url)")
	s.str(&c.MQTTURL, "mqtt-url", "", "external MQTT broker, tcp://[user:password@]host:port; empty runs the embedded one")
	s.str(&c.MQTTClientID, "mqtt-client-id", "switchboard-"+host, "this node's fixed MQTT client ID (its persistent session); unique per node")
	s.boolean(&c.MQTTShared, "mqtt-shared", false, "subscribe with $share/switchboard/ so several nodes split the frames of one external broker")
	s.str(&c.Rules, "appliance-rules", "", "fault rules file (JSON): model and fault code to actions; empty: faults are recorded only")
	s.dur(&c.RelayTTL, "relay-token-ttl", time.Hour, "life of the relay token a phone gets for a paired appliance")
}

var clientIDRe = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// validate names the first bad setting and why.
func (c deviceConfig) validate() (string, string) {
	if c.MQTTAddr != "" {
		if _, _, err := net.SplitHostPort(c.MQTTAddr); err != nil {
			return "mqtt-addr", "want host:port, e.g. :1883, or empty to disable"
		}
	}
	if c.MQTTURL != "" {
		u, err := url.Parse(c.MQTTURL)
		if err != nil || (u.Scheme != "tcp" && u.Scheme != "ssl" && u.Scheme != "tls" && u.Scheme != "mqtt" && u.Scheme != "mqtts") || u.Host == "" {
			return "mqtt-url", "want tcp://host:port (or ssl://, mqtts://)"
		}
	}
	if !clientIDRe.MatchString(c.MQTTClientID) {
		return "mqtt-client-id", "want 1 to 64 letters, digits, '.', '_' or '-'"
	}
	if c.Rules != "" {
		if _, err := device.LoadRules(c.Rules); err != nil {
			return "appliance-rules", err.Error()
		}
	}
	if c.RelayTTL < time.Minute || c.RelayTTL > 24*time.Hour {
		return "relay-token-ttl", "must be between 1m and 24h"
	}
	return "", ""
}

// sanitized hides the external broker's password.
func (c deviceConfig) sanitized() deviceConfig {
	if u, err := url.Parse(c.MQTTURL); err == nil && u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
			c.MQTTURL = u.String()
		}
	}
	return c
}

// deviceWorker is a named goroutine of the appliance domain for start().
type deviceWorker struct {
	name string
	run  func(context.Context) error
	// close, if set, releases what the worker holds when start-up fails
	// before run runs (run releases it itself).
	close func()
}

// newDevices builds the appliance service and its MQTT side: the embedded
// broker (listening already, so a taken port fails start-up here) unless
// an external one is configured, and the gateway's client of either, whose
// queue it registers on reg.
func newDevices(c deviceConfig, data string, store state.Store, tickets *ticket.Service, issuer *auth.Issuer, reg prometheus.Registerer, log *slog.Logger) (*device.Service, []deviceWorker, error) {
	seal, err := device.LoadOrCreateSealKey(keyDir(data))
	if err != nil {
		return nil, nil, fmt.Errorf("appliance seal key: %w", err)
	}
	var rules *device.Rules
	if c.Rules != "" {
		if rules, err = device.LoadRules(c.Rules); err != nil {
			return nil, nil, err
		}
	}
	svc, err := device.New(store, tickets, issuer, device.Config{SealKey: seal, Rules: rules, RelayTTL: c.RelayTTL, Logger: log})
	if err != nil {
		return nil, nil, err
	}
	var workers []deviceWorker
	brokerURL, shared := c.MQTTURL, c.MQTTShared
	if brokerURL == "" && c.MQTTAddr != "" {
		b, err := svc.NewBroker(c.MQTTAddr, log)
		if err != nil {
			return nil, nil, err
		}
		log.Info("MQTT broker listening", "addr", b.Addr())
		workers = append(workers, deviceWorker{"mqtt-broker", b.Run, func() { _ = b.Close() }})
		brokerURL, shared = b.URL(), false
	}
	if brokerURL != "" {
		m, err := svc.NewMQTT(device.MQTTConfig{URL: brokerURL, ClientID: c.MQTTClientID, Shared: shared,
			StoreDir: filepath.Join(data, "mqtt", c.MQTTClientID), Logger: log})
		if err != nil {
			for _, w := range workers {
				if w.close != nil {
					w.close()
				}
			}
			return nil, nil, err
		}
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "switchboard_appliance_mqtt_queued_frames",
			Help: "MQTT frames this node received and has not yet taken up to record.",
		}, func() float64 { return float64(m.Queued()) }))
		workers = append(workers, deviceWorker{name: "mqtt", run: m.Run})
	}
	return svc, workers, nil
}
