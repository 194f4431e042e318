package rtc

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"sync/atomic"
)

// maxRecordErrors bounds consecutive writes the disk refuses: a refused
// write is retried with its data kept (nothing is lost to a passing
// error), but a disk that refuses this many in a row (a full one) ends
// the recording.
const maxRecordErrors = 50

// recordFlushBytes is the most a recording keeps in memory before it
// writes to the disk without waiting for the cluster's end.
const recordFlushBytes = 256 << 10

// clusterID is the EBML ID of a WebM Cluster. ebml-go writes an element's
// ID with a Write of its own, so a Write of exactly these bytes starts a
// cluster (or, harmlessly, flushes once more than needed).
var clusterID = []byte{0x1f, 0x43, 0xb6, 0x75}

// sizePattern is the VP8 track's PixelWidth and PixelHeight elements as
// ebml-go writes the placeholders: ID, a one-byte size of 2, the value.
var sizePattern = []byte{0xb0, 0x82, placeholderWidth >> 8, placeholderWidth & 0xff,
	0xba, 0x82, placeholderHeight >> 8, placeholderHeight & 0xff}

// recordFile is the file under a recording's WebM writer. It keeps the
// bytes of the cluster being written in memory and writes them when the
// next cluster starts (or recordFlushBytes have piled up), so a
// recording costs a write per cluster rather than three per block, and a
// gateway killed mid-call leaves a file that plays up to the start of its
// last cluster. It never returns an error: ebml-go's writer stops for
// good on one, and the frames sent to it then block forever; instead
// failed tells the recording to stop.
//
// After the header, only ebml-go's muxer goroutine writes through it;
// patchSize writes in place beside it (os.File allows that).
type recordFile struct {
	f        *os.File
	buf      []byte
	errs     int // consecutive refused writes
	err      error
	failed   atomic.Bool // err is set before
	closeErr error
	sizeAt   int64 // offset of sizePattern in the file; -1 none
}

// Write implements io.Writer for ebml-go.
func (w *recordFile) Write(b []byte) (int, error) {
	if w.failed.Load() {
		return len(b), nil
	}
	if len(w.buf) >= recordFlushBytes || bytes.Equal(b, clusterID) {
		w.flush()
	}
	w.buf = append(w.buf, b...)
	return len(b), nil
}

// WriteAt implements io.WriterAt for ebml-go, which writes the seek index
// and duration in place when it finishes the file.
func (w *recordFile) WriteAt(b []byte, off int64) (int, error) {
	if w.flush(); w.failed.Load() || len(w.buf) > 0 {
		return len(b), nil
	}
	if _, err := w.f.WriteAt(b, off); err != nil {
		w.refused(err)
	}
	return len(b), nil
}

// Close implements io.Closer: ebml-go calls it when the file is finished.
func (w *recordFile) Close() error {
	w.flush()
	switch {
	case w.failed.Load():
		w.closeErr = w.err
	case len(w.buf) > 0:
		w.closeErr = fmt.Errorf("rtc: %d recorded bytes not written: %w", len(w.buf), w.err)
	}
	if err := w.f.Close(); err != nil && w.closeErr == nil {
		w.closeErr = err
	}
	w.buf = nil
	return nil
}

// flush writes what is buffered; what the disk refuses stays for the
// next try.
func (w *recordFile) flush() {
	if w.failed.Load() || len(w.buf) == 0 {
		return
	}
	n, err := w.f.Write(w.buf)
	w.buf = w.buf[:copy(w.buf, w.buf[n:])]
	if err != nil {
		w.refused(err)
		return
	}
	w.errs = 0
}

func (w *recordFile) refused(err error) {
	w.err = err
	if w.errs++; w.errs >= maxRecordErrors {
		w.buf = nil
		w.failed.Store(true)
	}
}

// fatal is ebml-go's handler of errors it cannot go on from.
func (w *recordFile) fatal(err error) {
	if !w.failed.Load() {
		w.err = err
		w.failed.Store(true)
	}
}

// header puts the file's header on the disk, noting where the video size
// is. It reports whether the disk took it.
func (w *recordFile) header(video bool) bool {
	if video {
		if i := bytes.Index(w.buf, sizePattern); i >= 0 {
			w.sizeAt = int64(i)
		}
	}
	w.flush()
	return len(w.buf) == 0 && !w.failed.Load()
}

// patchSize writes the video's size over the header's placeholder. VP8
// sizes are 14 bits, so they fit the placeholders' two bytes (an EBML
// unsigned integer may have leading zero bytes).
func (w *recordFile) patchSize(width, height int) {
	if w.sizeAt < 0 || w.failed.Load() {
		return
	}
	b := make([]byte, 6)
	binary.BigEndian.PutUint16(b[0:], uint16(width))
	copy(b[2:4], sizePattern[4:6])
	binary.BigEndian.PutUint16(b[4:], uint16(height))
	_, _ = w.f.WriteAt(b, w.sizeAt+2)
}
