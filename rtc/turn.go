package rtc

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/pion/turn/v5"

	"github.com/switchboard/switchboard/api"
)

// TURNCredentials makes time-limited TURN credentials in the TURN REST API
// scheme (draft-uberti-behave-turn-rest, coturn's use-auth-secret): the
// username is "expiry:user" (expiry in Unix seconds) and the password
// base64(HMAC-SHA1(secret, username)). Any TURN server holding the secret
// checks them without asking us.
func TURNCredentials(secret, user string, expires time.Time) (username, password string) {
	username = strconv.FormatInt(expires.Unix(), 10) + ":" + user
	mac := hmac.New(sha1.New, []byte(secret))
	mac.Write([]byte(username))
	return username, base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// ICEServers are the STUN/TURN servers handed to user, with credentials
// valid for CredentialTTL.
func (s *Service) ICEServers(user string) []api.ICEServer {
	if len(s.cfg.TURN.URLs) == 0 {
		return []api.ICEServer{}
	}
	srv := api.ICEServer{URLs: s.cfg.TURN.URLs}
	if s.cfg.TURN.Secret != "" {
		srv.Username, srv.Credential = TURNCredentials(s.cfg.TURN.Secret, user, s.now().Add(s.cfg.TURN.CredentialTTL))
	}
	return []api.ICEServer{srv}
}

// TURNServer is the embedded TURN server (RFC 8656) over UDP.
type TURNServer struct {
	cfg TURNServerConfig
	log *slog.Logger
}

// TURNServerConfig configures the embedded TURN server.
type TURNServerConfig struct {
	// Addr is the UDP listen address, e.g. ":3478". Required.
	Addr string
	// Secret is the REST API shared secret. Required.
	Secret string
	// Realm is the TURN realm. Empty means "switchboard".
	Realm string
	// RelayIP is the address relays are offered on (the node's public IP).
	// Empty means the listen address's IP, or 127.0.0.1 when that is
	// unspecified.
	RelayIP string
	// AllowPeer overrides the peer filter; nil refuses loopback, private,
	// link-local, CGNAT, multicast and unspecified peers, as coturn's
	// denied-peer-ip does, so nobody relays into our own network.
	AllowPeer func(net.IP) bool
	// Logger receives the server's logs; nil discards them.
	Logger *slog.Logger
}

// NewTURNServer checks cfg.
func NewTURNServer(cfg TURNServerConfig) (*TURNServer, error) {
	if cfg.Addr == "" || cfg.Secret == "" {
		return nil, fmt.Errorf("%w: the TURN server needs an address and a secret", ErrInvalid)
	}
	if cfg.Realm == "" {
		cfg.Realm = "switchboard"
	}
	if cfg.AllowPeer == nil {
		cfg.AllowPeer = PublicPeer
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &TURNServer{cfg: cfg, log: cfg.Logger.With("component", "turn")}, nil
}

// PublicPeer reports whether a TURN relay may send to ip: only public
// unicast addresses.
func PublicPeer(ip net.IP) bool {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return false
	}
	a = a.Unmap()
	if a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() ||
		a.IsMulticast() || a.IsUnspecified() || a.IsInterfaceLocalMulticast() {
		return false
	}
	for _, p := range deniedPrefixes {
		if p.Contains(a) {
			return false
		}
	}
	return true
}

// deniedPrefixes are non-public ranges netip does not classify: CGNAT
// (RFC 6598), "this network" (RFC 1122), benchmarking (RFC 2544) and the
// IPv4 reserved block.
var deniedPrefixes = []netip.Prefix{
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("240.0.0.0/4"),
}

// Listen binds the UDP socket, so a taken port fails start-up; Run serves.
func (t *TURNServer) Listen() (net.PacketConn, error) {
	return net.ListenPacket("udp", t.cfg.Addr)
}

// Run serves TURN on pc until ctx ends, then closes it.
func (t *TURNServer) Run(ctx context.Context, pc net.PacketConn) error {
	relayIP := net.ParseIP(t.cfg.RelayIP)
	host := pc.LocalAddr().(*net.UDPAddr).IP
	if relayIP == nil {
		relayIP = host
		if relayIP.IsUnspecified() {
			relayIP = net.IPv4(127, 0, 0, 1)
		}
	}
	bind := "0.0.0.0"
	if !host.IsUnspecified() {
		bind = host.String()
	}
	logger := pionLogger{t.log}
	srv, err := turn.NewServer(turn.ServerConfig{
		Realm:         t.cfg.Realm,
		LoggerFactory: logger,
		AuthHandler:   turn.LongTermTURNRESTAuthHandler(t.cfg.Secret, logger.NewLogger("auth")),
		PacketConnConfigs: []turn.PacketConnConfig{{
			PacketConn:            pc,
			RelayAddressGenerator: &turn.RelayAddressGeneratorStatic{RelayAddress: relayIP, Address: bind},
			PermissionHandler: func(_ net.Addr, peer net.IP) bool {
				ok := t.cfg.AllowPeer(peer)
				if !ok {
					t.log.Debug("TURN permission refused", "peer", peer.String())
				}
				return ok
			},
		}},
	})
	if err != nil {
		_ = pc.Close()
		return fmt.Errorf("turn: %w", err)
	}
	<-ctx.Done()
	return srv.Close()
}

// ValidTURNURL reports whether u is a stun:, turn: or turns: URL.
func ValidTURNURL(u string) bool {
	for _, p := range []string{"stun:", "turn:", "turns:"} {
		if strings.HasPrefix(u, p) && len(u) > len(p) {
			return true
		}
	}
	return false
}
