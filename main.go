// Command postern takes Cisco ISE's plaintext SMS gateway requests and sends
// them on as authenticated, verified HTTPS REST calls.
//
//	postern [serve] [-config FILE] [-sandbox] [-listen ADDR]
//	postern check -config FILE
//	postern translate -config FILE URL
//	postern trust [-config FILE] HOST[:PORT]
//	postern report [-since DATE] [-json] AUDIT_FILE...
//	postern version
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/postern/postern/proxy"
	"github.com/postern/postern/trust"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is main without the process: it returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return serve(args, stdout, stderr)
	case "check":
		return check(args, stdout, stderr)
	case "translate":
		return translate(args, stdout, stderr)
	case "trust":
		return trustCmd(args, stdout, stderr)
	case "report":
		return report(args, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, versionString())
		return 0
	case "reload":
		return reloadCmd(args, stdout, stderr)
	case "health":
		return healthCmd(args, stdout, stderr)
	case "help", "-h", "--help":
		usage(stdout)
		return 0
	}
	fmt.Fprintf(stderr, "postern: unknown command %q\n", cmd)
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage:
  postern [serve] [-config FILE] [-sandbox] [-listen ADDR] [-admin-listen ADDR] [-grace DURATION]
                                              run the server (default command)
  postern check -config FILE                  validate a config and summarise its routes
  postern translate -config FILE URL          show the request a legacy URL would become, sending nothing
  postern trust [-config FILE] HOST[:PORT]    check a provider's certificate exactly as postern would
  postern report [-since DATE] [-json] AUDIT_FILE...
                                              summarise audit logs for an auditor
  postern reload [-url URL]                   make a running postern re-read its config (POST URL, default
                                              http://127.0.0.1:9090/-/reload); or send it SIGHUP
  postern health [-url URL]                   exit 0 if a running postern is alive (GET URL, default
                                              http://127.0.0.1:9090/healthz); for container health checks
  postern version                             print version, commit and Go version
`)
}

func versionString() string {
	bi := buildInfo()
	return fmt.Sprintf("postern %s (commit %s, %s)", bi.Version, bi.Commit, bi.GoVersion)
}

// buildInfo is the version set by -ldflags, else the module version, with
// the VCS commit and Go version recorded in the binary.
func buildInfo() proxy.BuildInfo {
	v, commit, goVersion := version, "unknown", runtime.Version()
	if bi, ok := debug.ReadBuildInfo(); ok {
		goVersion = bi.GoVersion
		if v == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				commit = s.Value
			}
		}
	}
	return proxy.BuildInfo{Version: v, Commit: commit, GoVersion: goVersion}
}

func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

func check(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("check", stderr)
	configPath := fs.String("config", "", "config file to check")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *configPath == "" {
		fmt.Fprintln(stderr, "postern check: -config FILE is required")
		return 2
	}
	cfg, err := proxy.LoadFile(*configPath, proxy.LoadOptions{})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprintln(stdout, cfg.Summary())
	if msg, problem := cfg.InterceptCAReport(); problem {
		fmt.Fprintln(stderr, msg)
		return 1
	} else if msg != "" {
		fmt.Fprintln(stdout, msg)
	}
	return 0
}

func translate(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("translate", stderr)
	configPath := fs.String("config", "", "config file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *configPath == "" || fs.NArg() != 1 {
		fmt.Fprintln(stderr, "usage: postern translate -config FILE URL")
		return 2
	}
	cfg, err := proxy.LoadFile(*configPath, proxy.LoadOptions{})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	out, err := cfg.Translate(context.Background(), fs.Arg(0))
	if err != nil {
		fmt.Fprintf(stderr, "postern translate: %v\n", err)
		return 1
	}
	fmt.Fprint(stdout, out)
	return 0
}

// trustCmd connects to a provider as the proxy would and explains the
// outcome. Exit 0 when postern would send there, 1 when not.
func trustCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("trust", stderr)
	configPath := fs.String("config", "", "config whose [trust] settings to use (default: ./config.toml if present, else defaults)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "usage: postern trust [-config FILE] HOST[:PORT]")
		return 2
	}
	roots, err := trustRoots(*configPath)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	d, err := trust.Diagnose(context.Background(), roots, fs.Arg(0), nil, time.Now())
	if err != nil {
		fmt.Fprintf(stderr, "postern trust: %v\n", err)
		return 2
	}
	d.Write(stdout)
	if !d.Trusted() {
		return 1
	}
	return 0
}

// trustRoots returns the upstream trust of -config, else of ./config.toml,
// else the defaults (system or embedded roots, AIA on, no pins).
func trustRoots(path string) (*trust.Roots, error) {
	if path == "" {
		if _, err := os.Stat("config.toml"); err != nil {
			roots, err := trust.LoadRoots(nil)
			if err != nil {
				return nil, err
			}
			return roots.WithPolicy(trust.Policy{AIA: true}), nil
		}
		path = "config.toml"
	}
	// Only [trust] matters here and nothing is sent: route tokens from the
	// environment need not be set for a diagnosis.
	cfg, err := proxy.LoadFile(path, proxy.LoadOptions{LookupEnv: func(string) (string, bool) { return "unused", true }})
	if err != nil {
		return nil, err
	}
	return cfg.Roots, nil
}

// report summarises audit logs: messages by outcome, route and provider,
// refusals by reason, upstream TLS versions and certificates, and whether
// any message left without verified TLS.
func report(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("report", stderr)
	sinceFlag := fs.String("since", "", "count only lines at or after this date (2006-01-02) or RFC 3339 time")
	asJSON := fs.Bool("json", false, "print JSON instead of text")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "usage: postern report [-since DATE] [-json] AUDIT_FILE...")
		return 2
	}
	var since time.Time
	if *sinceFlag != "" {
		t, err := proxy.ParseReportSince(*sinceFlag)
		if err != nil {
			fmt.Fprintf(stderr, "postern report: %v\n", err)
			return 2
		}
		since = t
	}
	logs := map[string]io.Reader{}
	for _, name := range fs.Args() {
		f, err := os.Open(name)
		if err != nil {
			fmt.Fprintf(stderr, "postern report: %v\n", err)
			return 1
		}
		defer f.Close()
		logs[name] = f
	}
	r, err := proxy.BuildAuditReport(logs, since)
	if err != nil {
		fmt.Fprintf(stderr, "postern report: %v\n", err)
		return 1
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(r); err != nil {
			return 1
		}
		return 0
	}
	fmt.Fprint(stdout, r.Text())
	return 0
}

func serve(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("serve", stderr)
	configPath := fs.String("config", "", "config file (default ./config.toml, else the embedded sandbox)")
	sandbox := fs.Bool("sandbox", false, "run the embedded sandbox configuration, which sends nothing")
	listen := fs.String("listen", "", "listen address, overriding [server] listen (e.g. 127.0.0.1:0 for any free port)")
	adminListen := fs.String("admin-listen", "", "admin listen address, overriding [server] admin_listen (\"off\" to disable)")
	grace := fs.Duration("grace", 0, "how long in-flight messages may finish after SIGTERM, overriding [server] shutdown_grace (default 15s)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	// Operational log to stderr, audit trail to the [audit] sinks (stdout
	// by default): each a JSON line, neither ever holding message text or
	// secrets.
	log := slog.New(slog.NewJSONHandler(stderr, nil))

	load, err := serveConfigLoader(*configPath, *sandbox, log)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	cfg, err := load()
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	sinks, err := proxy.OpenAuditSinks(cfg.Audit, stdout, stderr, log)
	if err != nil {
		log.Error("cannot open audit sinks", "err", err)
		return 1
	}
	defer sinks.Close()
	audit := slog.New(slog.NewJSONHandler(sinks, nil))
	addr := cfg.Listen
	if *listen != "" {
		addr = *listen
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Error("cannot listen", "listen", addr, "err", err)
		return 1
	}
	adminAddr := cfg.AdminListen
	if *adminListen != "" {
		adminAddr = *adminListen
	}
	var adminLn net.Listener
	if adminAddr != "" && adminAddr != proxy.AdminOff {
		if adminLn, err = net.Listen("tcp", adminAddr); err != nil {
			log.Error("cannot listen for admin", "admin_listen", adminAddr, "err", err)
			return 1
		}
	}
	if *grace <= 0 {
		*grace = cfg.ShutdownGrace
	}
	bi := buildInfo()
	opts := proxy.Options{Log: log, Audit: audit, Metrics: proxy.NewMetrics(bi)}
	if len(cfg.InterceptHosts) > 0 {
		ic, created, err := trust.LoadOrCreateInterceptCA(cfg.DataDir, cfg.InterceptHosts)
		if err != nil {
			log.Error("cannot load the interception CA", "err", err)
			return 1
		}
		if created {
			log.Warn("interception CA created: ISE must trust it to send HTTPS through postern", "ca_file", ic.CA().CertFile,
				"ca_sha256", ic.CA().Fingerprint(), "ca_pem", string(ic.CA().CertPEM()))
		}
		log.Info("intercepting CONNECT", "hosts", cfg.InterceptHosts, "ca_file", ic.CA().CertFile, "ca_sha256", ic.CA().Fingerprint())
		proxy.ReportInterceptCA(log, ic, cfg.InterceptHosts)
		opts.InterceptCA = ic
	}
	var tlsLn net.Listener
	var inbound *proxy.InboundTLS
	if cfg.ListenTLS != "" {
		if tlsLn, err = net.Listen("tcp", cfg.ListenTLS); err != nil {
			log.Error("cannot listen", "listen_tls", cfg.ListenTLS, "err", err)
			return 1
		}
		if inbound, err = proxy.OpenInboundTLS(cfg, log); err != nil {
			log.Error("cannot set up the HTTPS listener", "err", err)
			return 1
		}
		log.Info("postern listening with TLS", "listen_tls", tlsLn.Addr().String(), "tls", cfg.TLS.String())
	}
	srv := proxy.New(cfg, opts)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	adminCtx, stopAdmin := context.WithCancel(context.Background())
	adminDone := make(chan error, 1)
	adminAt := "off"
	if adminLn != nil {
		adminAt = adminLn.Addr().String()
		go func() { adminDone <- srv.ServeAdmin(adminCtx, adminLn, load) }()
	} else {
		adminDone <- nil
	}
	onSIGHUP(ctx, srv, load, sinks)
	log.Info("postern listening", "listen", ln.Addr().String(), "admin", adminAt, "config", cfg.Source,
		"routes", len(cfg.Routes), "upstream_roots", cfg.Roots.Report().String(), "version", bi.Version, "commit", bi.Commit)

	err = srv.ServeBoth(ctx, ln, tlsLn, inbound, *grace)
	stopAdmin()
	if aerr := <-adminDone; aerr != nil {
		log.Error("admin listener stopped", "err", aerr)
	}
	if err != nil {
		log.Error("server stopped", "err", err)
		return 1
	}
	log.Info("postern stopped")
	return 0
}

// serveConfigLoader picks the configuration: -sandbox, else -config, else
// ./config.toml, else the embedded sandbox, saying which. The loader it
// returns is called again on every reload.
func serveConfigLoader(path string, sandbox bool, log *slog.Logger) (func() (*proxy.Config, error), error) {
	if sandbox && path != "" {
		return nil, errors.New("postern: -sandbox and -config are mutually exclusive")
	}
	if !sandbox && path == "" {
		if _, err := os.Stat("config.toml"); err == nil {
			path = "config.toml"
		} else {
			sandbox = true
			log.Warn("no -config given and no ./config.toml: running the embedded sandbox configuration; messages are NOT sent")
		}
	}
	if sandbox {
		log.Warn("sandbox mode: requests are answered \"ID: sandbox-<n>\" and nothing is sent to any provider")
		return proxy.LoadSandbox, nil
	}
	return func() (*proxy.Config, error) { return proxy.LoadFile(path, proxy.LoadOptions{}) }, nil
}
