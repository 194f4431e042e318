package rtc

import (
	"fmt"
	"io"
	"log/slog"
	"net"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/logging"
	"github.com/pion/webrtc/v4"
)

// The relay speaks one audio and one video codec, so what comes in from
// one party can go out to the other unchanged (no transcoding): Opus, which
// every WebRTC endpoint must support (RFC 7874), and VP8 (RFC 7742).
var (
	codecOpus = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2,
		SDPFmtpLine: "minptime=10;useinbandfec=1"}
	codecVP8 = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000,
		RTCPFeedback: []webrtc.RTCPFeedback{{Type: "nack"}, {Type: "nack", Parameter: "pli"}, {Type: "ccm", Parameter: "fir"}}}
)

// newAPI builds the pion engine for the relay (and for test clients).
// No interceptors: the relay forwards RTCP feedback end to end instead of
// answering it itself, which keeps per-packet work to decrypt, rewrite,
// encrypt. With media, every party's ICE runs on that one socket (pion's
// UDP mux, returned to be closed last) and pion's DTLS key log goes to
// its keyring, for the fast path.
func newAPI(cfg MediaConfig, log *slog.Logger, media *mediaConn) (*webrtc.API, io.Closer, error) {
	m := &webrtc.MediaEngine{}
	if err := m.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: codecOpus, PayloadType: 111}, webrtc.RTPCodecTypeAudio); err != nil {
		return nil, nil, err
	}
	if err := m.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: codecVP8, PayloadType: 96}, webrtc.RTPCodecTypeVideo); err != nil {
		return nil, nil, err
	}
	se := webrtc.SettingEngine{LoggerFactory: pionLogger{log}}
	if cfg.PortMin != 0 || cfg.PortMax != 0 {
		if err := se.SetEphemeralUDPPortRange(cfg.PortMin, cfg.PortMax); err != nil {
			return nil, nil, fmt.Errorf("%w: media port range: %v", ErrInvalid, err)
		}
	}
	if len(cfg.PublicIPs) > 0 {
		for _, ip := range cfg.PublicIPs {
			if net.ParseIP(ip) == nil {
				return nil, nil, fmt.Errorf("%w: public IP %q is not an IP address", ErrInvalid, ip)
			}
		}
		se.SetNAT1To1IPs(cfg.PublicIPs, webrtc.ICECandidateTypeHost)
	}
	se.SetIncludeLoopbackCandidate(cfg.IncludeLoopback)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6})
	se.SetICETimeouts(cfg.DisconnectedTimeout, cfg.FailedTimeout, cfg.KeepAlive)
	var mux ice.UDPMux
	if media != nil {
		mux = webrtc.NewICEUDPMux(se.LoggerFactory.NewLogger("udpmux"), media)
		se.SetICEUDPMux(mux)
		se.SetDTLSKeyLogWriter(media.keys)
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se),
		webrtc.WithInterceptorRegistry(&interceptor.Registry{})), mux, nil
}

// pionLogger adapts slog to pion's LoggerFactory; pion's debug and trace
// chatter stays at debug.
type pionLogger struct{ log *slog.Logger }

func (p pionLogger) NewLogger(scope string) logging.LeveledLogger {
	return leveled{p.log.With("pion", scope)}
}

type leveled struct{ l *slog.Logger }

func (l leveled) Trace(string)              {}
func (l leveled) Tracef(string, ...any)     {}
func (l leveled) Debug(m string)            { l.l.Debug(m) }
func (l leveled) Debugf(f string, a ...any) { l.l.Debug(fmt.Sprintf(f, a...)) }
func (l leveled) Info(m string)             { l.l.Debug(m) }
func (l leveled) Infof(f string, a ...any)  { l.l.Debug(fmt.Sprintf(f, a...)) }
func (l leveled) Warn(m string)             { l.l.Warn(m) }
func (l leveled) Warnf(f string, a ...any)  { l.l.Warn(fmt.Sprintf(f, a...)) }
func (l leveled) Error(m string)            { l.l.Error(m) }
func (l leveled) Errorf(f string, a ...any) { l.l.Error(fmt.Sprintf(f, a...)) }
