package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/postern/postern/proxy"
	"github.com/postern/postern/proxy/audit"
	"github.com/postern/postern/proxy/config"
	"github.com/postern/postern/proxy/deliver"
	"github.com/postern/postern/trust"
)

func checkFlags(fs *flag.FlagSet) func([]string, io.Writer, io.Writer) int {
	configPath := fs.String("config", "", configFlagHelp)
	skipSecrets := fs.Bool("skip-secrets", false, "validate everything but resolve no env: or file: secret (for CI, which has no tokens)")
	return func(args []string, stdout, stderr io.Writer) int {
		switch {
		case len(args) > 1:
			return usageError(stderr, "check", "takes one config file, got %d arguments", len(args))
		case len(args) == 1 && *configPath != "":
			return usageError(stderr, "check", "give the config file either as -config FILE or as the argument, not both")
		case len(args) == 1:
			*configPath = args[0]
		}
		path, ok := requireConfig("check", *configPath, stderr)
		if !ok {
			return exitFailure
		}
		cfg, err := config.LoadFile(path, config.LoadOptions{SkipSecrets: *skipSecrets})
		if err != nil {
			fmt.Fprintln(stderr, err)
			return exitFailure
		}
		fmt.Fprintln(stdout, cfg.Summary())
		fmt.Fprintln(stdout, cfg.AuditChainSummary())
		if msg, problem := proxy.InterceptCAReport(cfg); problem {
			fmt.Fprintln(stderr, msg)
			return exitFailure
		} else if msg != "" {
			fmt.Fprintln(stdout, msg)
		}
		if *skipSecrets {
			fmt.Fprintln(stdout, "Secrets were not resolved (-skip-secrets): env: and file: references were checked for form only.")
		}
		return exitOK
	}
}

func translateFlags(fs *flag.FlagSet) func([]string, io.Writer, io.Writer) int {
	configPath := fs.String("config", "", configFlagHelp)
	return func(args []string, stdout, stderr io.Writer) int {
		if len(args) != 1 {
			return usageError(stderr, "translate", "takes one URL, got %d arguments", len(args))
		}
		path, ok := requireConfig("translate", *configPath, stderr)
		if !ok {
			return exitFailure
		}
		cfg, err := config.LoadFile(path, config.LoadOptions{MaskTokens: true})
		if err != nil {
			fmt.Fprintln(stderr, err)
			return exitFailure
		}
		out, err := proxy.Translate(context.Background(), cfg, args[0], deliver.UserAgent(buildInfo().Version))
		if err != nil {
			fmt.Fprintf(stderr, "postern translate: %v\n", err)
			return exitFailure
		}
		fmt.Fprint(stdout, out)
		return exitOK
	}
}

// trustFlags: `postern trust` connects to a provider as the proxy would and
// explains the outcome. Exit 0 when postern would send there, 1 when not.
func trustFlags(fs *flag.FlagSet) func([]string, io.Writer, io.Writer) int {
	configPath := fs.String("config", "", "config `FILE` whose [trust] settings to use (default ./config.toml if present, else the defaults)")
	return func(args []string, stdout, stderr io.Writer) int {
		if len(args) != 1 {
			return usageError(stderr, "trust", "takes one HOST[:PORT], got %d arguments", len(args))
		}
		roots, err := trustRoots(configFile(*configPath))
		if err != nil {
			fmt.Fprintln(stderr, err)
			return exitFailure
		}
		d, err := trust.Diagnose(context.Background(), roots, args[0], nil, time.Now())
		if err != nil {
			return usageError(stderr, "trust", "%v", err)
		}
		d.Write(stdout)
		if !d.Trusted() {
			return exitFailure
		}
		return exitOK
	}
}

// trustRoots returns the upstream trust of the config at path, or the
// defaults (system or embedded roots, AIA on, no pins) when path is "".
func trustRoots(path string) (*trust.Roots, error) {
	if path == "" {
		roots, err := trust.LoadRoots(nil)
		if err != nil {
			return nil, err
		}
		return roots.WithPolicy(trust.Policy{AIA: true}), nil
	}
	// Only [trust] matters here and nothing is sent: the file may have no
	// routes, and their tokens need not be at hand for a diagnosis.
	cfg, err := config.LoadFile(path, config.LoadOptions{SkipSecrets: true, AllowNoRoutes: true})
	if err != nil {
		return nil, err
	}
	return cfg.Roots, nil
}

// reportFlags: `postern report` summarises audit logs: messages by outcome,
// route and provider, refusals by reason, upstream TLS versions and
// certificates, whether any message left without verified TLS, and
// whether the audit chain is intact (with -verify, as the exit code);
// -html writes the auditor's page.
func reportFlags(fs *flag.FlagSet) func([]string, io.Writer, io.Writer) int {
	sinceFlag := fs.String("since", "", "count only lines at or after this `DATE` (2006-01-02) or RFC 3339 time")
	asJSON := fs.Bool("json", false, "print JSON instead of text")
	htmlOut := fs.String("html", "", "also write the report as one self-contained HTML page to `OUT.html`")
	verify := fs.Bool("verify", false, "print only the chain's verification; exit 1 on any problem")
	var configs configList
	fs.Var(&configs, "config", "config `FILE` whose [audit] chain_key verifies the HMACs (default ./config.toml if present; repeat it to give the keys used before a chain_key change)")
	return func(args []string, stdout, stderr io.Writer) int {
		if len(args) == 0 {
			return usageError(stderr, "report", "needs at least one audit file")
		}
		var since time.Time
		if *sinceFlag != "" {
			t, err := audit.ParseReportSince(*sinceFlag)
			if err != nil {
				return usageError(stderr, "report", "%v", err)
			}
			since = t
		}
		if len(configs) == 0 {
			if path := configFile(""); path != "" {
				configs = append(configs, path)
			}
		}
		var keys [][]byte
		for _, path := range configs {
			key, err := config.ReadChainKey(path)
			if err != nil {
				fmt.Fprintf(stderr, "postern report: %v\n", err)
				return exitFailure
			}
			if key != nil {
				keys = append(keys, key)
			}
		}
		r, err := audit.ReportFiles(args, since, keys...)
		if err != nil {
			fmt.Fprintf(stderr, "postern report: %v\n", err)
			return exitFailure
		}
		if *htmlOut != "" {
			if err := writeHTMLReport(*htmlOut, r); err != nil {
				fmt.Fprintf(stderr, "postern report: %v\n", err)
				return exitFailure
			}
		}
		switch {
		case *asJSON:
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			if err := enc.Encode(r); err != nil {
				return exitFailure
			}
		case *verify:
			fmt.Fprint(stdout, r.Chain.Text())
		case *htmlOut != "":
			fmt.Fprintf(stdout, "wrote %s: %s\n", *htmlOut, r.Closing)
		default:
			fmt.Fprint(stdout, r.Text())
		}
		if *verify && !r.Chain.Intact {
			return exitFailure
		}
		return exitOK
	}
}

// configList is a repeatable -config.
type configList []string

func (c *configList) String() string     { return strings.Join(*c, ",") }
func (c *configList) Set(s string) error { *c = append(*c, s); return nil }

// writeHTMLReport writes the page to a temporary file first, so that a
// failure never leaves half a report under the name asked for.
func writeHTMLReport(path string, r *audit.Report) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".postern-report-*.html")
	if err != nil {
		return fmt.Errorf("writing the HTML report: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := r.HTML(tmp); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("writing the HTML report: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing the HTML report: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("writing the HTML report: %w", err)
	}
	return nil
}
