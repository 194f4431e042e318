package device

import (
	"strings"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
)

// sessionStore is paho's persistent store for our side of the session:
// outbound messages (commands we publish QoS 1, key prefix "o.") go to
// paho's file store under the data directory, so a restarted gateway
// resends what the broker never acknowledged. Inbound messages (frames,
// "i.") stay in memory: until we send PUBACK, which we do only after the
// frame is durable in the stream, the broker holds them for our
// persistent session and redelivers them after any restart. Writing each
// frame to a file as well cost five times the throughput (a create, a
// rename and a delete per frame) and protected nothing.
type sessionStore struct {
	file *paho.FileStore
	mem  *paho.MemoryStore
}

func newSessionStore(dir string) *sessionStore {
	return &sessionStore{file: paho.NewFileStore(dir), mem: paho.NewMemoryStore()}
}

var _ paho.Store = (*sessionStore)(nil)

func (s *sessionStore) pick(key string) paho.Store {
	if strings.HasPrefix(key, "o.") {
		return s.file
	}
	return s.mem
}

func (s *sessionStore) Open()  { s.file.Open(); s.mem.Open() }
func (s *sessionStore) Close() { s.file.Close(); s.mem.Close() }
func (s *sessionStore) Reset() { s.file.Reset(); s.mem.Reset() }

func (s *sessionStore) Put(key string, message packets.ControlPacket) {
	s.pick(key).Put(key, message)
}

func (s *sessionStore) Get(key string) packets.ControlPacket { return s.pick(key).Get(key) }

func (s *sessionStore) All() []string { return append(s.file.All(), s.mem.All()...) }

func (s *sessionStore) Del(key string) { s.pick(key).Del(key) }
