package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard/switchboard/rtc"
	"github.com/switchboard/switchboard/state"
	"github.com/switchboard/switchboard/ticket"
)

// rtcConfig holds the click-to-call settings.
type rtcConfig struct {
	TURNAddr    string
	TURNSecret  string
	TURNURLs    []string
	TURNRelayIP string
	MediaPorts  string
	MediaUDP    string
	PublicIPs   []string
	RingTimeout time.Duration
	RecordDir   string
	RecordKeep  time.Duration
}

func registerRTC(s *settings, c *rtcConfig) {
	s.str(&c.TURNAddr, "turn-addr", ":3478", "embedded TURN server UDP address; empty disables it")
	s.str(&c.TURNSecret, "turn-secret", "", "TURN REST API shared secret (coturn static-auth-secret); empty: one made and kept in the store, shared by the nodes on it")
	s.list(&c.TURNURLs, "turn-urls", nil, "STUN/TURN URLs handed to clients; empty with the embedded server: turn:<--turn-relay-ip, else the first --public-ips, else the TURN listen IP>:<port>, none if unknown")
	s.str(&c.TURNRelayIP, "turn-relay-ip", "", "public IP the embedded TURN server offers relays on")
	s.str(&c.MediaPorts, "media-ports", "", "UDP port range of the media relay, as MIN-MAX; empty: any")
	s.str(&c.MediaUDP, "media-udp-addr", ":7882", "one UDP address (IPv4 unless an IPv6 one is given) for all call media, forwarded in the relay's own packet loop; empty: a port per party, from media-ports")
	s.list(&c.PublicIPs, "public-ips", nil, "the node's public IPs behind a 1:1 NAT, put in media candidates")
	s.dur(&c.RingTimeout, "ring-timeout", 20*time.Second, "how long a call rings one agent before moving on")
	s.str(&c.RecordDir, "record-dir", "", "directory for recordings of calls with the caller's consent; empty: no recording")
	s.dur(&c.RecordKeep, "record-retention", 30*24*time.Hour, "how long a recording is kept before it is deleted")
}

// validate names the first bad setting and why.
func (c rtcConfig) validate() (string, string) {
	if c.TURNAddr != "" {
		if _, _, err := net.SplitHostPort(c.TURNAddr); err != nil {
			return "turn-addr", "want host:port, e.g. :3478"
		}
	}
	if c.TURNSecret != "" && len(c.TURNSecret) < 16 {
		return "turn-secret", "use at least 16 characters"
	}
	for _, u := range c.TURNURLs {
		if !rtc.ValidTURNURL(u) {
			return "turn-urls", "want stun:, turn: or turns: URLs"
		}
	}
	if c.TURNRelayIP != "" && net.ParseIP(c.TURNRelayIP) == nil {
		return "turn-relay-ip", "want an IP address"
	}
	if _, _, err := c.ports(); err != nil {
		return "media-ports", err.Error()
	}
	if c.MediaUDP != "" {
		if _, _, err := net.SplitHostPort(c.MediaUDP); err != nil {
			return "media-udp-addr", "want host:port, e.g. :7882"
		}
		if c.MediaPorts != "" {
			return "media-ports", "a port per party needs media-udp-addr empty"
		}
	}
	for _, ip := range c.PublicIPs {
		if net.ParseIP(ip) == nil {
			return "public-ips", "want IP addresses"
		}
	}
	if c.RingTimeout < time.Second || c.RingTimeout > 5*time.Minute {
		return "ring-timeout", "must be between 1s and 5m"
	}
	if c.RecordKeep < time.Hour {
		return "record-retention", "must be at least 1h"
	}
	return "", ""
}

func (c rtcConfig) ports() (uint16, uint16, error) {
	if c.MediaPorts == "" {
		return 0, 0, nil
	}
	lo, hi, ok := strings.Cut(c.MediaPorts, "-")
	a, err1 := strconv.ParseUint(lo, 10, 16)
	b, err2 := strconv.ParseUint(hi, 10, 16)
	if !ok || err1 != nil || err2 != nil || a == 0 || a > b {
		return 0, 0, fmt.Errorf("want MIN-MAX, e.g. 50000-60000")
	}
	return uint16(a), uint16(b), nil
}

// keyTURNSecret holds the TURN secret made when none is configured.
const keyTURNSecret = "rtc:turn-secret"

// sharedTURNSecret is the TURN secret when --turn-secret is not set: made
// once and kept in the store, so every node on one Redis, and this node
// after a restart, accept the credentials any of them issued.
func sharedTURNSecret(store state.Store) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := store.SetNX(ctx, keyTURNSecret, []byte(rand.Text()), 0); err != nil {
		return "", err
	}
	b, err := store.Get(ctx, keyTURNSecret)
	return string(b), err
}

// embeddedTURNURL is the URL callers get for the embedded TURN server
// listening on at: on --turn-relay-ip, else the first --public-ips, else
// the address it listens on when that is one IP. Empty when none is
// known: an unspecified or loopback address is no use to a phone.
func (c rtcConfig) embeddedTURNURL(at *net.UDPAddr) string {
	host := c.TURNRelayIP
	if host == "" && len(c.PublicIPs) > 0 {
		host = c.PublicIPs[0]
	}
	if host == "" && !at.IP.IsUnspecified() && !at.IP.IsLoopback() {
		host = at.IP.String()
	}
	if host == "" {
		return ""
	}
	return "turn:" + net.JoinHostPort(host, strconv.Itoa(at.Port)) + "?transport=udp"
}

// newRTC builds the call service and, unless disabled, the embedded TURN
// server with its bound socket (nil when off).
func newRTC(c rtcConfig, node string, store state.Store, tickets *ticket.Service, log *slog.Logger) (*rtc.Service, *rtc.TURNServer, net.PacketConn, error) {
	lo, hi, _ := c.ports()
	if c.RecordDir != "" {
		// Fail start-up, not the first consented call, on a bad directory.
		if err := os.MkdirAll(c.RecordDir, 0o700); err != nil {
			return nil, nil, nil, fmt.Errorf("record-dir: %w", err)
		}
	}
	cfg := rtc.Config{Node: node, Logger: log, RingTimeout: c.RingTimeout,
		Media: rtc.MediaConfig{PortMin: lo, PortMax: hi, UDPAddr: c.MediaUDP, PublicIPs: c.PublicIPs, RecordDir: c.RecordDir, RecordRetention: c.RecordKeep},
		TURN:  rtc.TURNConfig{URLs: c.TURNURLs, Secret: c.TURNSecret}}
	var turnSrv *rtc.TURNServer
	var pc net.PacketConn
	if c.TURNAddr != "" {
		var err error
		if cfg.TURN.Secret == "" {
			if cfg.TURN.Secret, err = sharedTURNSecret(store); err != nil {
				return nil, nil, nil, fmt.Errorf("TURN secret: %w", err)
			}
		}
		if turnSrv, err = rtc.NewTURNServer(rtc.TURNServerConfig{Addr: c.TURNAddr, Secret: cfg.TURN.Secret, RelayIP: c.TURNRelayIP, Logger: log}); err != nil {
			return nil, nil, nil, err
		}
		if pc, err = turnSrv.Listen(); err != nil {
			return nil, nil, nil, fmt.Errorf("TURN listen on %s: %w", c.TURNAddr, err)
		}
		if len(cfg.TURN.URLs) == 0 {
			if u := c.embeddedTURNURL(pc.LocalAddr().(*net.UDPAddr)); u != "" {
				cfg.TURN.URLs = []string{u}
			} else {
				log.Warn("the embedded TURN server is not offered to callers: it does not know an address they can reach; set --turn-relay-ip or --public-ips, or --turn-urls")
			}
		}
	}
	svc, err := rtc.New(cfg, store, tickets)
	if err != nil {
		if pc != nil {
			_ = pc.Close()
		}
		return nil, nil, nil, err
	}
	return svc, turnSrv, pc, nil
}
