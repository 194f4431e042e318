package rtc

import (
	"log/slog"
	"time"
)

// Config configures the call service. Every zero value means the default
// stated beside the field.
type Config struct {
	// Node names this gateway node among all nodes; a call's media is
	// pinned to the node that placed it. Required.
	Node string
	// Logger receives the service's logs; nil discards them.
	Logger *slog.Logger

	// RingTimeout is how long a call rings one agent before it moves on.
	// Zero means 20s: about four rings, the usual ACD default (Genesys and
	// Amazon Connect both default to 15-20s).
	RingTimeout time.Duration
	// PresenceTTL is how long an agent stays present without a heartbeat
	// (a signaling ping or a status update). Zero means 60s; consoles
	// ping every 20s.
	PresenceTTL time.Duration
	// MaxQueue bounds the calls waiting at once across all skills. Zero
	// means 10,000.
	MaxQueue int
	// AverageHandle is the assumed length of one call, for the expected
	// wait shown to callers until enough calls ended to measure it. Zero
	// means 3m (a common contact-centre average handle time).
	AverageHandle time.Duration
	// RoutePoll is how often each node looks for calls to route and rings
	// that timed out. Zero means 250ms.
	RoutePoll time.Duration
	// ReconnectGrace is how long a call survives a party whose network
	// dropped (ICE failed) before it ends. Zero means 30s.
	ReconnectGrace time.Duration
	// NodeTTL is how long a node counts as alive after its last renewal
	// (every third of it); the calls of a node silent for longer are
	// adopted by the others (failover.go). Zero means 15s.
	NodeTTL time.Duration

	// SignalRate and SignalBurst are the token bucket of one signaling
	// connection (messages per second, and the burst). Zero means
	// DefaultSignalRate and DefaultSignalBurst.
	SignalRate, SignalBurst float64

	// Media configures the relay.
	Media MediaConfig
	// TURN configures the ICE servers handed to clients.
	TURN TURNConfig
}

// MediaConfig configures the WebRTC relay.
type MediaConfig struct {
	// PortMin and PortMax bound the UDP ports of the relay's ICE
	// candidates (open them in the firewall). Zero means any port.
	PortMin, PortMax uint16
	// UDPAddr, when set, puts every party's media on this one UDP
	// address (e.g. ":7882"; one port to open in the firewall), where the
	// relay forwards RTP in its own packet loop (fastpath.go) instead of
	// through pion's per-party goroutines: about half the CPU per packet.
	// PortMin and PortMax are then unused.
	UDPAddr string
	// PublicIPs are the node's public addresses when it sits behind a 1:1
	// NAT (a cloud VM): host candidates carry them instead of the private
	// address. Empty means the interface addresses.
	PublicIPs []string
	// IncludeLoopback offers loopback candidates, for tests and one-machine
	// set-ups. Off in production: loopback is useless to remote clients.
	IncludeLoopback bool
	// DisconnectedTimeout, FailedTimeout and KeepAlive are ICE consent
	// timers (RFC 7675). Zero means 5s, 20s and 2s: a party that stops
	// answering connectivity checks is disconnected after 5s and failed
	// (and gets no more media) after 20s, inside RFC 7675's 30s consent
	// lifetime.
	DisconnectedTimeout, FailedTimeout, KeepAlive time.Duration
	// RecordDir is where calls whose caller consented are recorded: one
	// WebM file per party, RecordDir/<call id>/<role>.webm (caller,
	// agent; supervisors listening in are not recorded), holding the
	// party's Opus audio and, on a video call, its VP8 video, in sync.
	// Empty means nothing is recorded.
	RecordDir string
	// RecordRetention is how long a recording is kept: a call's directory
	// older than this is deleted (recordings are personal data, kept no
	// longer than needed). Zero means 30 days.
	RecordRetention time.Duration
}

// TURNConfig is what clients are told about STUN and TURN.
type TURNConfig struct {
	// URLs are the TURN/STUN URLs handed to clients, e.g.
	// "turn:turn.example.com:3478?transport=udp". Empty means none: clients
	// reach the relay directly (fine on one network, not behind NAT).
	URLs []string
	// Secret is the shared secret of the TURN REST API scheme (coturn's
	// static-auth-secret). Required when URLs hold a turn: URL.
	Secret string
	// CredentialTTL is how long handed-out credentials work. Zero means 1h
	// (a call rarely lasts longer; refreshed with every POST /v1/calls).
	CredentialTTL time.Duration
}

func (c Config) withDefaults() Config {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.RingTimeout, 20*time.Second)
	def(&c.PresenceTTL, 60*time.Second)
	def(&c.AverageHandle, 3*time.Minute)
	def(&c.RoutePoll, 250*time.Millisecond)
	def(&c.ReconnectGrace, 30*time.Second)
	def(&c.NodeTTL, 15*time.Second)
	def(&c.Media.DisconnectedTimeout, 5*time.Second)
	def(&c.Media.FailedTimeout, 20*time.Second)
	def(&c.Media.KeepAlive, 2*time.Second)
	def(&c.Media.RecordRetention, 30*24*time.Hour)
	def(&c.TURN.CredentialTTL, time.Hour)
	if c.SignalRate <= 0 {
		c.SignalRate = DefaultSignalRate
	}
	if c.SignalBurst <= 0 {
		c.SignalBurst = DefaultSignalBurst
	}
	if c.MaxQueue <= 0 {
		c.MaxQueue = 10_000
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}
