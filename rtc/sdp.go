package rtc

import (
	"fmt"

	"github.com/pion/sdp/v3"
)

const (
	// MaxSDP bounds an offer. A browser's offer with audio, video and a
	// data channel is 3-8 KB; 64 KiB leaves room for many codecs and
	// candidates while keeping a 1 MB offer away from the parser.
	MaxSDP = 64 << 10
	// MaxMLines bounds the media sections of an offer. A call uses three
	// (audio, video, data); a supervisor four.
	MaxMLines = 8
)

// ValidateOffer checks an SDP offer from a client before pion sees it:
// size, syntax, the number of media sections, and a DTLS fingerprint
// (without one the media could not be authenticated).
func ValidateOffer(s string) error {
	if s == "" {
		return fmt.Errorf("%w: the offer is empty", ErrBadSDP)
	}
	if len(s) > MaxSDP {
		return fmt.Errorf("%w: the offer is larger than %d bytes", ErrBadSDP, MaxSDP)
	}
	var d sdp.SessionDescription
	if err := d.UnmarshalString(s); err != nil {
		return fmt.Errorf("%w: the offer is not valid SDP", ErrBadSDP)
	}
	switch n := len(d.MediaDescriptions); {
	case n == 0:
		return fmt.Errorf("%w: the offer has no media sections", ErrBadSDP)
	case n > MaxMLines:
		return fmt.Errorf("%w: the offer has more than %d media sections", ErrBadSDP, MaxMLines)
	}
	_, session := d.Attribute("fingerprint")
	for _, m := range d.MediaDescriptions {
		if _, ok := m.Attribute("fingerprint"); !ok && !session {
			return fmt.Errorf("%w: the offer has no DTLS fingerprint", ErrBadSDP)
		}
	}
	return nil
}
