package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/postern/postern/proxy"
	"github.com/postern/postern/proxy/config"
)

// Operational log formats and levels for serve's -log-format and
// -log-level.
var (
	logFormats    = []string{"json", "text"}
	logLevelNames = []string{"debug", "info", "warn", "error"}
	logLevels     = map[string]slog.Level{"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError}
)

// newOpLogger is the operational log: JSON or text lines on w from level
// up. The audit trail never goes through it.
func newOpLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	lvl, ok := logLevels[level]
	if !ok {
		return nil, fmt.Errorf("-log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("-log-format %q: want %s", format, strings.Join(logFormats, " or "))
}

func serveFlags(fs *flag.FlagSet) func([]string, io.Writer, io.Writer) int {
	configPath := fs.String("config", "", "config `FILE` (default ./config.toml, else the embedded sandbox)")
	sandbox := fs.Bool("sandbox", false, "run the embedded sandbox configuration, which sends nothing")
	listen := fs.String("listen", "", "`ADDR` to listen on, overriding [server] listen (e.g. 127.0.0.1:0 for any free port)")
	adminListen := fs.String("admin-listen", "", "`ADDR` for the admin listener, overriding [server] admin_listen (\"off\" to disable)")
	grace := fs.Duration("grace", 0, "`DURATION` in-flight messages may take to finish after SIGTERM, overriding [server] shutdown_grace (default 15s)")
	logFormat := fs.String("log-format", "json", "operational log `FORMAT` on stderr: json or text (the audit trail is always JSON)")
	logLevel := fs.String("log-level", "info", "least severe operational log `LEVEL`: debug, info, warn or error")
	return func(args []string, stdout, stderr io.Writer) int {
		if len(args) > 0 {
			return usageError(stderr, "serve", "takes no arguments, got %q", args[0])
		}
		log, err := newOpLogger(stderr, *logFormat, *logLevel)
		if err != nil {
			return usageError(stderr, "serve", "%v", err)
		}
		return serve(serveOptions{config: *configPath, sandbox: *sandbox, listen: *listen, adminListen: *adminListen, grace: *grace}, log, stdout, stderr)
	}
}

// serveOptions are serve's flags.
type serveOptions struct {
	config, listen, adminListen string
	sandbox                     bool
	grace                       time.Duration
}

// serve runs postern until SIGTERM or SIGINT. The operational log goes to
// log, the audit trail to the [audit] sinks (stdout by default): neither
// ever holds message text or secrets.
func serve(o serveOptions, log *slog.Logger, stdout, stderr io.Writer) int {
	load, err := serveConfigLoader(o.config, o.sandbox, log)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitFailure
	}
	cfg, err := load()
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitFailure
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err = proxy.Run(ctx, cfg, proxy.DaemonOptions{Load: load, Listen: o.listen, AdminListen: o.adminListen, Grace: o.grace,
		Log: log, Stdout: stdout, Stderr: stderr, Build: buildInfo(), Hangup: hangups(ctx)})
	if err != nil {
		return exitFailure // Run has logged why
	}
	return exitOK
}

// serveConfigLoader picks the configuration: -sandbox, else -config, else
// ./config.toml, else the embedded sandbox, saying which. The loader it
// returns is called again on every reload.
func serveConfigLoader(path string, sandbox bool, log *slog.Logger) (func() (*config.Config, error), error) {
	if sandbox && path != "" {
		return nil, errors.New("postern: -sandbox and -config are mutually exclusive")
	}
	if !sandbox {
		if path = configFile(path); path == "" {
			sandbox = true
			log.Warn("no -config given and no ./config.toml: running the embedded sandbox configuration; messages are NOT sent")
		}
	}
	if sandbox {
		log.Warn("sandbox mode: requests are answered \"ID: sandbox-<n>\" and nothing is sent to any provider")
		return config.LoadSandbox, nil
	}
	return func() (*config.Config, error) { return config.LoadFile(path, config.LoadOptions{}) }, nil
}
