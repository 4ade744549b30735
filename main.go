// Command postern takes Cisco ISE's plaintext SMS gateway requests and sends
// them on as authenticated, verified HTTPS REST calls.
//
//	postern [serve] [-config FILE] [-sandbox] [-listen ADDR] [-log-format json|text] [-log-level LEVEL] ...
//	postern check [-config FILE] [-skip-secrets] [FILE]
//	postern translate [-config FILE] URL
//	postern trust [-config FILE] HOST[:PORT]
//	postern report [-since DATE] [-json] [-html OUT.html] [-verify] [-config FILE] AUDIT_FILE...
//	postern reload [-config FILE] [-url URL]
//	postern health [-config FILE] [-url URL]
//	postern completion bash|zsh|fish
//	postern version
//	postern help [COMMAND]
//
// `postern help` lists the commands and `postern COMMAND -h` explains one.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/postern/postern/proxy/config"
	"github.com/postern/postern/proxy/metrics"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// Exit codes, the same for every command.
const (
	exitOK            = 0
	exitFailure       = 1 // the command ran and the answer is no: invalid config, untrusted provider, rejected reload...
	exitUsage         = 2 // the command line is wrong
	exitRestartNeeded = 3 // postern reload: applied, but some changes wait for a restart
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is main without the process: it returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "-h", "-help", "--help":
			usage(stdout)
			return exitOK
		case "-version", "--version":
			fmt.Fprintln(stdout, versionString())
			return exitOK
		}
	}
	name := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	}
	c, ok := lookupCommand(name)
	if !ok {
		fmt.Fprintf(stderr, "postern: unknown command %q\n\n", name)
		usage(stderr)
		return exitUsage
	}
	return c.run(args, stdout, stderr)
}

// command is one postern command: its help and how it runs.
type command struct {
	name    string
	args    string // what follows "postern NAME" in its synopsis
	summary string // one line for `postern help`
	about   string // what `postern NAME -h` says before the flags
	exits   string // its exit codes, for `postern NAME -h`
	// setup declares the command's flags on fs and returns what runs the
	// command once they are parsed, given the arguments that are not flags.
	setup func(fs *flag.FlagSet) func(args []string, stdout, stderr io.Writer) int
	// complete says what the arguments are, for shell completion:
	// "files", "commands", "shells" or "" (nothing to offer).
	complete string
}

// commands lists every command in the order `postern help` shows them.
func commands() []command {
	return []command{
		{name: "serve", args: "[-config FILE] [-sandbox] [-listen ADDR] [-admin-listen ADDR] [-grace DURATION] [-log-format json|text] [-log-level LEVEL]",
			summary: "run the server (the default command)",
			about: `Run postern. The config is -config FILE, else ./config.toml, else the embedded
sandbox configuration, which answers "ID: sandbox-<n>" and sends nothing.
SIGHUP reloads the config and reopens the audit file; SIGTERM and SIGINT shut
down gracefully. The operational log goes to stderr as -log-format says; the
audit trail goes to the [audit] sinks, always as JSON lines.`,
			exits: "0 after a clean shutdown, 1 when the config is invalid or a listener cannot open, 2 for usage errors",
			setup: serveFlags},
		{name: "check", args: "[-config FILE] [-skip-secrets] [FILE]",
			summary: "validate a config and summarise its routes",
			about: `Validate a config file (FILE, else -config FILE, else ./config.toml) and
print a one-paragraph summary of what postern would do with it, or every
problem in the file as FILE:LINE:COL: message, sorted by line.`,
			exits: "0 valid, 1 invalid or unreadable, 2 usage error",
			setup: checkFlags, complete: "files"},
		{name: "translate", args: "[-config FILE] URL",
			summary: "show the request a legacy URL would become, sending nothing",
			about: `Print the exact request(s) the matching route would send for a legacy
URL - method, URL, headers, body - with secrets <redacted>. Nothing is sent.`,
			exits: "0 translated, 1 no route matches, the request is invalid or the config is, 2 usage error",
			setup: translateFlags},
		{name: "trust", args: "[-config FILE] HOST[:PORT]",
			summary: "check a provider's certificate exactly as postern would",
			about: `Connect to a provider (port 443 by default) with the config's [trust]
settings (-config FILE, else ./config.toml, else the defaults) and print the
served and verified chains and a verdict. The config may have no routes, and
its secrets are not read.`,
			exits: "0 postern would send there, 1 it would not or cannot connect, 2 usage error",
			setup: trustFlags},
		{name: "report", args: "[-since DATE] [-json] [-html OUT.html] [-verify] [-config FILE] AUDIT_FILE...",
			summary: "summarise audit logs for an auditor and verify their chain",
			about: `Summarise audit files, given oldest first (rotated and gzipped ones too):
messages by outcome, route and provider, refusals by reason, upstream TLS
versions and certificates, whether any message left without verified TLS,
and whether the audit chain is intact. The chain's HMACs are verified with
[audit] chain_key of -config FILE (else ./config.toml if present); without
a key, its hashes and structure. -verify prints only the verification,
every problem as FILE:LINE: what. -html writes a self-contained page.`,
			exits: "0 reported (with -verify: the chain is intact), 1 a file cannot be read, or with -verify a chain problem or a wrong key, 2 usage error",
			setup: reportFlags, complete: "files"},
		{name: "reload", args: "[-config FILE] [-url URL]",
			summary: "make a running postern re-read its config",
			about: `Make a running postern re-read its config: POST to its admin listener,
found through -url, else [server] admin_listen of -config FILE or
./config.toml, else ` + config.DefaultAdminListen + `. Prints what serves now and each
change that only a restart applies ("listen changed: restart needed").`,
			exits: "0 all applied, 3 applied but some changes need a restart, 1 rejected (the old config keeps serving) or unreachable, 2 usage error",
			setup: reloadFlags},
		{name: "health", args: "[-config FILE] [-url URL]",
			summary: "exit 0 if a running postern is alive (for container health checks)",
			about: `GET the /healthz of a running postern's admin listener, found as for
postern reload; -url .../readyz checks readiness instead.`,
			exits: "0 alive, 1 not answering 200, 2 usage error",
			setup: healthFlags},
		{name: "completion", args: "bash|zsh|fish",
			summary: "print a shell completion script",
			about: `Print a completion script for postern's commands and flags:
  bash: source <(postern completion bash), or save it in /etc/bash_completion.d/postern
  zsh:  postern completion zsh > "${fpath[1]}/_postern", then restart zsh
  fish: postern completion fish > ~/.config/fish/completions/postern.fish`,
			exits: "0 printed, 2 unknown shell",
			setup: completionFlags, complete: "shells"},
		{name: "version", args: "",
			summary: "print version, commit and Go version (also -version, --version)",
			about:   "Print postern's version, the commit it was built from, and the Go version.",
			exits:   "0",
			setup:   versionFlags},
		{name: "help", args: "[COMMAND]",
			summary: "list the commands, or explain one (also -h, --help)",
			about:   "List postern's commands, or print the usage of COMMAND (as postern COMMAND -h does).",
			exits:   "0, 2 unknown command",
			setup: func(*flag.FlagSet) func([]string, io.Writer, io.Writer) int {
				return helpCmd
			}, complete: "commands"},
	}
}

func lookupCommand(name string) (command, bool) {
	for _, c := range commands() {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

func usage(w io.Writer) {
	fmt.Fprint(w, `postern takes Cisco ISE's plaintext SMS gateway requests and sends them on as
authenticated, verified HTTPS REST calls.

Usage: postern [COMMAND] [FLAGS] [ARGUMENTS]

Commands:
`)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-11s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, `
Every command that reads a config takes -config FILE (default ./config.toml).
Run "postern COMMAND -h" for a command's flags and arguments.
Exit codes: %d success, %d failure, %d usage error, %d reload applied but a restart is needed.
`, exitOK, exitFailure, exitUsage, exitRestartNeeded)
}

// helpCmd is `postern help [COMMAND]`.
func helpCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stdout)
		return exitOK
	}
	c, ok := lookupCommand(args[0])
	if len(args) > 1 || !ok {
		fmt.Fprintf(stderr, "postern help: unknown command %q\n", strings.Join(args, " "))
		return exitUsage
	}
	c.usage(stdout)
	return exitOK
}

func (c command) synopsis() string {
	return strings.TrimSpace("postern " + c.name + " " + c.args)
}

// flags returns the command's flag set, writing parse errors to w.
func (c command) flags(w io.Writer) (*flag.FlagSet, func([]string, io.Writer, io.Writer) int) {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	fs.SetOutput(w)
	fs.Usage = func() {} // run prints usage itself, to the right stream
	return fs, c.setup(fs)
}

// usage is what `postern NAME -h` prints.
func (c command) usage(w io.Writer) {
	fs, _ := c.flags(w)
	fmt.Fprintf(w, "Usage: %s\n\n%s\n", c.synopsis(), c.about)
	if hasFlags(fs) {
		fmt.Fprint(w, "\nFlags:\n")
		fs.PrintDefaults()
	}
	fmt.Fprintf(w, "\nExit codes: %s.\n", c.exits)
}

func hasFlags(fs *flag.FlagSet) bool {
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	return n > 0
}

// run parses the command line (flags may come before, between and after
// the arguments) and runs the command. -h prints its usage and exits 0.
func (c command) run(args []string, stdout, stderr io.Writer) int {
	fs, do := c.flags(stderr)
	rest, err := parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		c.usage(stdout)
		return exitOK
	}
	if err != nil {
		// The flag package has said what is wrong.
		fmt.Fprintf(stderr, "usage: %s\nRun \"postern %s -h\" for details.\n", c.synopsis(), c.name)
		return exitUsage
	}
	return do(rest, stdout, stderr)
}

// parseInterspersed parses flags wherever they are, as in
// `postern check config.toml -skip-secrets`, and returns the other
// arguments in order. After "--" everything is an argument.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var rest []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		left := fs.Args()
		if n := len(args) - len(left); n > 0 && args[n-1] == "--" {
			return append(rest, left...), nil
		}
		if len(left) == 0 {
			return rest, nil
		}
		rest, args = append(rest, left[0]), left[1:]
	}
}

// usageError reports a wrong command line the way the flag package does.
func usageError(stderr io.Writer, name, format string, args ...any) int {
	c, _ := lookupCommand(name)
	fmt.Fprintf(stderr, "postern %s: %s\nusage: %s\nRun \"postern %s -h\" for details.\n", name, fmt.Sprintf(format, args...), c.synopsis(), name)
	return exitUsage
}

// defaultConfig is the config file every command reads when -config is not
// given, in the working directory.
const defaultConfig = "config.toml"

// configFile returns the config file a command reads: -config, else
// ./config.toml if there is one, else "".
func configFile(flagValue string) string {
	if flagValue != "" {
		return flagValue
	}
	if _, err := os.Stat(defaultConfig); err == nil {
		return defaultConfig
	}
	return ""
}

const configFlagHelp = "config `FILE` to read (default ./config.toml)"

// requireConfig is configFile for commands that cannot go on without one.
func requireConfig(name, flagValue string, stderr io.Writer) (string, bool) {
	path := configFile(flagValue)
	if path == "" {
		fmt.Fprintf(stderr, "postern %s: no -config FILE given and no ./%s in the working directory\n", name, defaultConfig)
	}
	return path, path != ""
}

func versionFlags(*flag.FlagSet) func([]string, io.Writer, io.Writer) int {
	return func(args []string, stdout, stderr io.Writer) int {
		if len(args) > 0 {
			return usageError(stderr, "version", "takes no arguments")
		}
		fmt.Fprintln(stdout, versionString())
		return exitOK
	}
}

func versionString() string {
	bi := buildInfo()
	return fmt.Sprintf("postern %s (commit %s, %s)", bi.Version, bi.Commit, bi.GoVersion)
}

// buildInfo is the version set by -ldflags (the Dockerfile passes
// `git describe` that way), else the module version the go command stamps
// from git (a tag, or a pseudo-version with the commit, "+dirty" for
// uncommitted changes), with the VCS commit and Go version recorded in the
// binary. A commit built with uncommitted changes reads "<hash>-modified".
func buildInfo() metrics.BuildInfo {
	v, commit, goVersion := version, "unknown", runtime.Version()
	if bi, ok := debug.ReadBuildInfo(); ok {
		goVersion = bi.GoVersion
		if v == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
		modified := false
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				commit = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		if modified && commit != "unknown" {
			commit += "-modified"
		}
	}
	return metrics.BuildInfo{Version: v, Commit: commit, GoVersion: goVersion}
}
