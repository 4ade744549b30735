package config

import (
	"cmp"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"
)

// fileConfig mirrors config.toml. Field tags are the public contract; every
// key is documented in README.md.
type fileConfig struct {
	Server    serverFile    `toml:"server"`
	Trust     trustFile     `toml:"trust"`
	TLS       tlsFile       `toml:"tls"`
	Intercept interceptFile `toml:"intercept"`
	Limits    limitsFile    `toml:"limits"`
	Audit     auditFile     `toml:"audit"`
	SMTP      smtpFile      `toml:"smtp"`
	Cluster   clusterFile   `toml:"cluster"`
	Routes    []routeFile   `toml:"route"`
}

// ConfigError lists every problem found in a config file, each with its
// position, so that one run of `postern check` shows them all.
type ConfigError struct {
	File     string
	Problems []Problem
}

// Problem is one mistake in a config file.
type Problem struct {
	Pos Position // zero when no position is known
	Msg string
}

func (e *ConfigError) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteByte('\n')
		}
		if p.Pos.Line > 0 {
			fmt.Fprintf(&b, "%s:%d:%d: %s", e.File, p.Pos.Line, p.Pos.Col, p.Msg)
		} else {
			fmt.Fprintf(&b, "%s: %s", e.File, p.Msg)
		}
	}
	return b.String()
}

// LoadOptions are the outside inputs to Load; tests replace them.
type LoadOptions struct {
	// LookupEnv resolves env: secrets; nil means os.LookupEnv.
	LookupEnv func(string) (string, bool)
	// SkipSecrets validates everything but resolves no env: or file:
	// secret: only the form of each reference is checked, and a stand-in
	// takes its value. For `postern check -skip-secrets` (a CI pipeline
	// validates configs without holding the tokens) and `postern trust`;
	// such a Config must never serve.
	SkipSecrets bool
	// MaskTokens resolves every route token as usual (a missing one is
	// still an error) but builds each provider with TokenStandIn in its
	// place, so what the provider requests would carry shows where the
	// token stands without holding it. Message keys (and so client
	// message ids) are still derived from the real values. For `postern
	// translate`; such a Config must never serve.
	MaskTokens bool
	// AllowNoRoutes accepts a file without any [[route]], for commands
	// that need only part of it (`postern trust` reads [trust]).
	AllowNoRoutes bool
}

// Load decodes src strictly, validates all of it, and builds the runtime
// configuration. Errors are a *ConfigError listing every problem, sorted by
// line: syntax errors (only the first: the TOML parser cannot go on past
// one), wrong types, unknown keys and invalid values alike.
func Load(name string, src []byte, opts LoadOptions) (*Config, error) {
	if opts.LookupEnv == nil {
		opts.LookupEnv = os.LookupEnv
	}
	v := validator{file: name, idx: indexKeys(string(src)), lookupEnv: opts.LookupEnv, opts: opts}
	var fc fileConfig
	md, ok := v.decode(string(src), &fc)
	if !ok {
		return nil, &ConfigError{File: name, Problems: v.problems}
	}
	v.checkKeys(md)
	cfg := v.build(&fc)
	v.runProvisioning()
	if len(v.problems) > 0 {
		sortProblems(v.problems)
		return nil, &ConfigError{File: name, Problems: v.problems}
	}
	cfg.idKey = newIDKey(cfg.secrets)
	return cfg, nil
}

// sortProblems orders problems by line and column; those without a
// position concern the whole file and come last.
func sortProblems(ps []Problem) {
	slices.SortStableFunc(ps, func(a, b Problem) int {
		switch {
		case a.Pos.Line == 0 || b.Pos.Line == 0:
			return cmp.Compare(b.Pos.Line, a.Pos.Line) // nonzero first
		case a.Pos.Line != b.Pos.Line:
			return cmp.Compare(a.Pos.Line, b.Pos.Line)
		}
		return cmp.Compare(a.Pos.Col, b.Pos.Col)
	})
}

type validator struct {
	file      string
	idx       keyIndex
	lookupEnv func(string) (string, bool)
	opts      LoadOptions
	problems  []Problem
	badTypes  []string // paths whose values could not be decoded (configdecode.go)
	// provisioning are the steps validation left for provisioning, in
	// the order validation met them (provision.go).
	provisioning []func()
}

// at records a problem at the position of key path (e.g. "route.1.endpoint"),
// falling back to the nearest enclosing table that has a position. A key
// whose value had the wrong type has been reported already: a problem that
// follows from its zero value would only mislead.
func (v *validator) at(path string, format string, args ...any) {
	if path != "" && v.hadTypeError(path) {
		return
	}
	v.problems = append(v.problems, Problem{Pos: v.pos(path), Msg: fmt.Sprintf(format, args...)})
}

// pos is where key path, or the nearest table holding it, was written.
func (v *validator) pos(path string) Position {
	for p := path; p != ""; {
		if got, ok := v.idx[p]; ok {
			return got
		}
		i := strings.LastIndexByte(p, '.')
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return Position{}
}

// required records that table lacks key, unless key was written with a
// value of the wrong type (already reported).
func (v *validator) required(table, key, format string, args ...any) {
	if v.hadTypeError(table + "." + key) {
		return
	}
	v.at(table, format, args...)
}

// build validates fc and turns it into runtime values, recording problems.
func (v *validator) build(fc *fileConfig) *Config {
	cfg := &Config{
		Source:         v.file,
		Listen:         fc.Server.Listen,
		RequestTimeout: fc.Server.RequestTimeout.Duration,
		CAFiles:        fc.Trust.CAFiles,
	}
	v.buildServer(fc.Server, cfg)
	v.buildTrust(&fc.Trust, cfg)
	v.buildTLS(fc, cfg)
	v.buildGuards(fc, cfg)
	v.buildAudit(&fc.Audit, cfg)
	v.buildSMTP(&fc.SMTP, cfg)
	v.buildCluster(&fc.Cluster, cfg)
	v.buildRoutes(fc, cfg)
	return cfg
}

// Duration is a TOML string such as "10s" or "1m30s". Unlike toml's native
// time.Duration handling it refuses bare integers, which would silently mean
// nanoseconds, and values that are not positive.
type Duration struct{ time.Duration }

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("invalid duration %q (write it with a unit, e.g. \"10s\")", b)
	}
	if v <= 0 {
		return fmt.Errorf("duration %q must be positive", b)
	}
	d.Duration = v
	return nil
}
