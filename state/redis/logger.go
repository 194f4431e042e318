package redis

import (
	"context"
	"fmt"
	"log/slog"

	goredis "github.com/redis/go-redis/v9"
)

// SetLogger sends go-redis's own messages (failed dials, pool trouble) to
// log instead of stderr. go-redis only has a process-wide logger, so this
// is a package function; cmd calls it once at start-up.
func SetLogger(log *slog.Logger) {
	goredis.SetLogger(slogPrintf{log.With("component", "redis")})
}

type slogPrintf struct{ log *slog.Logger }

func (s slogPrintf) Printf(ctx context.Context, format string, v ...any) {
	s.log.WarnContext(ctx, fmt.Sprintf(format, v...))
}
