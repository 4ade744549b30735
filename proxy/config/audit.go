package config

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"

	"github.com/BurntSushi/toml"

	"github.com/postern/postern/proxy/audit"
)

// auditFile mirrors [audit].
type auditFile struct {
	Console        string   `toml:"console"`
	File           string   `toml:"file"`
	Syslog         string   `toml:"syslog"`
	SyslogCAFiles  []string `toml:"syslog_ca_files"`
	SyslogFacility string   `toml:"syslog_facility"`
	Queue          int      `toml:"queue"`
	ChainKey       Secret   `toml:"chain_key"`
}

// syslogFacilities are the RFC 5424 facility names an operator may choose.
var syslogFacilities = map[string]int{
	"user": 1, "daemon": 3, "auth": 4, "authpriv": 10,
	"local0": 16, "local1": 17, "local2": 18, "local3": 19,
	"local4": 20, "local5": 21, "local6": 22, "local7": 23,
}

func (v *validator) buildAudit(af *auditFile, cfg *Config) {
	a := audit.Config{Console: af.Console, File: af.File, Queue: orInt(af.Queue, defaultAuditQueue), SyslogFacility: 16}
	switch a.Console {
	case "":
		a.Console = "stdout"
	case "stdout", "stderr", "off":
	default:
		v.at("audit.console", "console must be \"stdout\", \"stderr\" or \"off\", not %q", af.Console)
	}
	if a.Queue < 1 || a.Queue > 1_000_000 {
		v.at("audit.queue", "queue must be between 1 and 1000000")
	}
	if af.SyslogFacility != "" {
		f, ok := syslogFacilities[af.SyslogFacility]
		if !ok {
			v.at("audit.syslog_facility", "syslog_facility %q: want user, daemon, auth, authpriv or local0..local7", af.SyslogFacility)
		}
		a.SyslogFacility = f
	}
	if af.Syslog != "" {
		u, err := parseSyslogURL(af.Syslog)
		if err != nil {
			v.at("audit.syslog", "syslog: %v", err)
		}
		a.Syslog = u
	}
	if len(af.SyslogCAFiles) > 0 || (a.Syslog != nil && a.Syslog.Scheme == "tls") {
		v.later(func() {
			if roots, ok := v.loadRoots("audit.syslog_ca_files", "syslog_ca_files: ", af.SyslogCAFiles); ok {
				cfg.Audit.SyslogRoots = roots.Pool()
			}
		})
	}
	if af.ChainKey.IsSet() {
		v.later(func() {
			key, err := v.secret(af.ChainKey)
			switch {
			case err != nil:
				v.at("audit.chain_key", "chain_key: %v", err)
			case len(key) < minChainKey:
				v.at("audit.chain_key", "chain_key must be at least %d characters (a random secret, e.g. openssl rand -hex 32)", minChainKey)
			default:
				cfg.Audit.ChainKey = audit.ChainKey(key)
				cfg.secrets = append(cfg.secrets, key)
				if !v.opts.SkipSecrets {
					cfg.auditChainKeyFP = audit.KeyFingerprint(cfg.Audit.ChainKey)
				}
			}
		})
	}
	cfg.Audit = a
	cfg.AuditChainKeySource = af.ChainKey.Source()
}

// minChainKey is the shortest chain_key accepted: a key a person could
// guess would let a forger recompute the chain.
const minChainKey = 16

// ReadChainKey returns [audit] chain_key of the config file at path,
// resolved (nil when unset), without validating the rest of the file:
// `postern report` verifies the audit trail with it, and needs neither the
// routes nor their tokens.
func ReadChainKey(path string) (audit.ChainKey, error) {
	var fc struct {
		Audit struct {
			ChainKey Secret `toml:"chain_key"`
		} `toml:"audit"`
	}
	if _, err := toml.DecodeFile(path, &fc); err != nil {
		return nil, fmt.Errorf("reading chain_key from %s: %w", path, err)
	}
	if !fc.Audit.ChainKey.IsSet() {
		return nil, nil
	}
	key, err := fc.Audit.ChainKey.resolve(os.LookupEnv)
	if err != nil {
		return nil, fmt.Errorf("%s: [audit] chain_key: %w", path, err)
	}
	return audit.ChainKey(key), nil
}

// parseSyslogURL accepts udp://host:port, tcp://host:port and
// tls://host:port (RFC 5425, usually port 6514).
func parseSyslogURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil || u.Opaque != "" {
		return nil, fmt.Errorf("%q is not a URL like \"udp://siem.example.org:514\"", s)
	}
	switch u.Scheme {
	case "udp", "tcp", "tls":
	default:
		return nil, fmt.Errorf("%q: scheme must be udp, tcp or tls", s)
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil || host == "" {
		return nil, fmt.Errorf("%q: want %s://host:port", s, u.Scheme)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return nil, fmt.Errorf("%q: invalid port", s)
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return nil, fmt.Errorf("%q: only scheme, host and port are allowed", s)
	}
	return u, nil
}
