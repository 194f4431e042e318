// Command switchboard runs the Switchboard gateway (serve, the default),
// mints tokens for operators (token) and prints its version (version).
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// Exit codes: 2 is a usage or configuration error, as flag packages do.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

// run is main without the process: tests call it directly.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	cmd := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return serve(ctx, args, stderr, getenv)
	case "token":
		return token(args, stdout, stderr, getenv)
	case "version":
		fmt.Fprintln(stdout, "switchboard", version)
		return exitOK
	case "help":
		fmt.Fprintln(stdout, "usage: switchboard [serve|token|version] [flags]; switchboard CMD -h lists the flags")
		return exitOK
	}
	fmt.Fprintf(stderr, "switchboard: unknown command %q (want serve, token or version)\n", cmd)
	return exitUsage
}
