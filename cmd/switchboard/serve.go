package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime/pprof"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/gateway"
	"github.com/switchboard/switchboard/location"
	"github.com/switchboard/switchboard/state/backend"
	"github.com/switchboard/switchboard/ticket"
	"github.com/switchboard/switchboard/ticket/webhook"
	"golang.org/x/sync/errgroup"
)

func keyDir(data string) string { return filepath.Join(data, "keys") }

// serve runs the gateway until ctx ends (SIGTERM or SIGINT), then drains.
func serve(ctx context.Context, args []string, stderr io.Writer, getenv func(string) string) int {
	var c Config
	s := newSettings("switchboard serve", stderr)
	registerServe(s, &c)
	if err := s.parse(args, getenv); err != nil {
		fmt.Fprintln(stderr, "switchboard:", err)
		return exitUsage
	}
	if err := c.Validate(); err != nil {
		fmt.Fprintln(stderr, "switchboard:", err)
		return exitUsage
	}
	log := newLogger(stderr, c)
	if c.CPUProfile != "" {
		stop, err := profileCPU(c.CPUProfile)
		if err != nil {
			fmt.Fprintln(stderr, "switchboard:", err)
			return exitFail
		}
		defer stop()
	}
	if err := runServer(ctx, c, log); err != nil {
		fmt.Fprintln(stderr, "switchboard:", err)
		return exitFail
	}
	return exitOK
}

// profileCPU starts a CPU profile of the process into path; stop ends it
// and closes the file. It is how a loaded gateway's CPU is read (go tool
// pprof), without exposing a profiling endpoint.
func profileCPU(path string) (stop func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}, nil
}

// runServer opens the backends, serves until ctx ends, then drains within
// ShutdownTimeout and closes everything in reverse order.
func runServer(ctx context.Context, c Config, log *slog.Logger) error {
	log.Info("starting", "version", version, "config", c.Sanitized())
	if err := os.MkdirAll(c.Data, 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	store, err := backend.Open(ctx, backend.Config{RedisURL: c.RedisURL, RedisPrefix: c.RedisPrefix, DataDir: c.Data, Logger: log})
	if err != nil {
		return fmt.Errorf("state backend: %w", err)
	}
	defer store.Close()

	key, err := auth.LoadOrCreateKey(keyDir(c.Data))
	if err != nil {
		return fmt.Errorf("signing key: %w", err)
	}
	var external []auth.KeySource
	if c.JWKS != "" {
		src, err := jwksSource(c)
		if err != nil {
			return fmt.Errorf("jwks: %w", err)
		}
		external = append(external, src)
	}

	secrets, _ := c.ingestSecrets() // checked by Validate
	tickets := ticket.New(store, ticket.WithLogger(log), ticket.WithIngestSecrets(secrets))
	presence := ticket.NewPresence(store)
	hub := ticket.NewHub(tickets, ticket.HubConfig{Logger: log, Presence: presence})
	pushes, err := newPush(ctx, c.Push, store, tickets, presence, log)
	if err != nil {
		return err
	}
	webhooks := webhook.New(store, c.Webhooks, webhook.WithLogger(log))
	photos, err := newMedia(c.Media, c.Data, store, tickets, log)
	if err != nil {
		return fmt.Errorf("media: %w", err)
	}
	locations := location.New(store, tickets, c.Location.config(), location.WithLogger(log))
	calls, turnSrv, turnConn, err := newRTC(c.RTC, nodeID(), store, tickets, log)
	if err != nil {
		return fmt.Errorf("calls: %w", err)
	}
	defer calls.Close() // when start-up fails below; after Run, a no-op
	if turnConn != nil {
		defer turnConn.Close() // likewise: the TURN server's Run closes it
	}
	// One registry for /metrics: the gateway registers its own and the
	// domains' series on it, and the workers built here theirs.
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	devices, deviceWorkers, err := newDevices(c.Device, c.Data, store, tickets, auth.NewIssuer(c.Auth, key, store), reg, log)
	if err != nil {
		return fmt.Errorf("appliances: %w", err)
	}
	for _, w := range deviceWorkers {
		if w.close != nil {
			defer w.close() // when start-up fails below; after run, harmless
		}
	}
	srv := gateway.New(c.HTTP, gateway.Deps{
		Store:    store,
		Issuer:   auth.NewIssuer(c.Auth, key, store),
		Verifier: auth.NewVerifier(c.Auth, key, external...),
		Tickets:  tickets,
		Hub:      hub,
		Media:    photos,
		Webhooks: webhooks,
		Location: locations,
		Push:     pushes,
		Calls:    calls,
		Devices:  devices,
		Logger:   log,
		Registry: reg,
	})

	// Listen before serving so a taken port fails start-up with a clear
	// message instead of a log line from a goroutine.
	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", c.Addr, err)
	}
	log.Info("listening", "addr", ln.Addr().String())

	// Background workers live until ctx ends (SIGTERM); the errgroup is
	// their owner and Wait their stop.
	ctx, stopWorkers := context.WithCancel(ctx)
	defer stopWorkers()
	workers, wctx := errgroup.WithContext(ctx)
	node := nodeID()
	start := func(name string, run func(context.Context) error) {
		workers.Go(func() error {
			err := run(wctx)
			if err != nil && wctx.Err() == nil {
				// A worker that fails on its own stops the node: better
				// restarted by the orchestrator than running half-blind.
				log.Error("worker failed", "worker", name, "err", err)
				return fmt.Errorf("%s: %w", name, err)
			}
			return nil // errors after shutdown began are the shutdown
		})
	}
	start("feed", hub.Run)
	start("follow-ups", func(ctx context.Context) error { return tickets.RunFollowUps(ctx, node) })
	start("webhooks", webhook.NewDispatcher(webhooks, node).Run)
	start("media-sweeper", photos.Run)
	start("offers", locations.RunOffers)
	start("position-sweeper", locations.RunSweeper)
	start("calls", calls.Run)
	if turnSrv != nil {
		start("turn", func(ctx context.Context) error { return turnSrv.Run(ctx, turnConn) })
	}
	start("push-rules", pushes.Rules(node).Run)
	start("push-outbox", pushes.Outbox(node).Run)
	for _, w := range deviceWorkers {
		start(w.name, w.run)
	}

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		stopWorkers()
		return errors.Join(err, workers.Wait())
	case <-wctx.Done():
	}
	log.Info("draining", "deadline", c.ShutdownTimeout.String())
	dctx, cancel := context.WithTimeout(context.Background(), c.ShutdownTimeout)
	defer cancel()
	var errs []error
	if err := srv.Shutdown(dctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		errs = append(errs, fmt.Errorf("shutdown: %w", err))
	}
	// Shutdown closes the listener only if Serve already took it: a stop
	// that came before that goroutine ran would leave Serve accepting.
	// Whatever Shutdown said, Serve and the workers (cancelled with ctx)
	// are waited for before the stores they use close.
	_ = ln.Close()
	<-served
	if err := workers.Wait(); err != nil {
		errs = append(errs, fmt.Errorf("worker: %w", err))
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	log.Info("stopped")
	return nil
}

// nodeID names this process among gateway nodes (consumer groups, claims):
// host, pid and a random suffix, so a restarted node is a new consumer.
func nodeID() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), rand.Text()[:6])
}
