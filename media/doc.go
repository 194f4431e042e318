// Package media takes photos from the customer app and keeps them private:
// it sniffs what the bytes are (never trusting names or headers), refuses
// pixel bombs from the header before decoding, strips EXIF, GPS and other
// metadata after applying the EXIF orientation, makes one thumbnail per
// photo, stores each distinct photo once (by content hash) in a blob store
// written atomically, runs tus 1.0 resumable uploads with their state on
// the state seam, signs short-lived URLs, and records every stored photo
// as a photo_added event on its ticket.
//
// It is plain Go on the state seam and the ticket service: it never
// imports gateway or Fiber, and never uses a client-supplied name as a
// path.
package media
