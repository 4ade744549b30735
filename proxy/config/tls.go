package config

import (
	"crypto/x509"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// TLS modes for the HTTPS listener ([tls] mode).
const (
	TLSModeACME       = "acme"
	TLSModeFiles      = "files"
	TLSModeSelfSigned = "self-signed"
)

// ACME challenge types ([tls] acme_challenge).
const (
	challengeTLSALPN = "tls-alpn-01"
	challengeHTTP    = "http-01"
)

type tlsFile struct {
	Mode           string   `toml:"mode"`
	CertFile       string   `toml:"cert_file"`
	KeyFile        string   `toml:"key_file"`
	Names          []string `toml:"names"`
	ACMEDirectory  string   `toml:"acme_directory"`
	ACMECAFiles    []string `toml:"acme_ca_files"`
	ACMEEmail      string   `toml:"acme_email"`
	ACMEChallenge  string   `toml:"acme_challenge"`
	ACMEHTTPListen string   `toml:"acme_http_listen"`
}

type interceptFile struct {
	Hosts []string `toml:"hosts"`
}

// TLSSettings is the [tls] table turned into runtime values: where the
// HTTPS listener's certificate comes from.
type TLSSettings struct {
	Mode     string   // TLSModeACME, TLSModeFiles or TLSModeSelfSigned; "" when listen_tls is unset
	CertFile string   // files
	KeyFile  string   // files
	Names    []string // acme, self-signed: the names the certificate covers

	ACMEDirectory  string
	ACMERoots      *x509.CertPool // roots for talking to the ACME CA: system (or embedded) + acme_ca_files
	ACMEEmail      string
	ACMEChallenge  string
	ACMEHTTPListen string
}

// bareHost reports whether s is a host name or IP without scheme, port,
// path or spaces.
func bareHost(s string) bool {
	return s != "" && !strings.ContainsAny(s, "/:@ \t") || net.ParseIP(s) != nil
}

// buildTLS validates listen_tls, data_dir, [tls] and [intercept].
func (v *validator) buildTLS(fc *fileConfig, cfg *Config) {
	tf := &fc.TLS
	cfg.ListenTLS = fc.Server.ListenTLS
	cfg.DataDir = fc.Server.DataDir
	if cfg.ListenTLS != "" {
		if _, port, err := net.SplitHostPort(cfg.ListenTLS); err != nil {
			v.at("server.listen_tls", "listen_tls %q: want host:port, e.g. \"0.0.0.0:8443\"", cfg.ListenTLS)
		} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			v.at("server.listen_tls", "listen_tls %q: invalid port", cfg.ListenTLS)
		}
	}
	for _, h := range fc.Intercept.Hosts {
		if !bareHost(h) {
			v.at("intercept.hosts", "intercept: %q must be a bare host name, without scheme, port or path", h)
			continue
		}
		cfg.InterceptHosts = append(cfg.InterceptHosts, strings.ToLower(h))
	}
	needDir := len(cfg.InterceptHosts) > 0 || (cfg.ListenTLS != "" && tf.Mode != TLSModeFiles)
	if needDir && cfg.DataDir == "" {
		v.at("server", "data_dir is required for [intercept] hosts and for [tls] mode %q: postern keeps its CA and certificates there", tf.Mode)
	}

	if cfg.ListenTLS == "" {
		if tf.Mode != "" {
			v.at("tls.mode", "[tls] is configured but [server] listen_tls is not set, so no HTTPS listener would use it")
		}
		return
	}
	s := TLSSettings{Mode: tf.Mode, Names: tf.Names}
	only := func(key, mode string, set bool) {
		if set && tf.Mode != mode {
			v.at("tls."+key, "[tls] %s applies only to mode %q", key, mode)
		}
	}
	only("cert_file", TLSModeFiles, tf.CertFile != "")
	only("key_file", TLSModeFiles, tf.KeyFile != "")
	only("acme_directory", TLSModeACME, tf.ACMEDirectory != "")
	only("acme_ca_files", TLSModeACME, tf.ACMECAFiles != nil)
	only("acme_email", TLSModeACME, tf.ACMEEmail != "")
	only("acme_challenge", TLSModeACME, tf.ACMEChallenge != "")
	only("acme_http_listen", TLSModeACME, tf.ACMEHTTPListen != "")
	if tf.Mode == TLSModeFiles && tf.Names != nil {
		v.at("tls.names", "[tls] names does not apply to mode %q: the names are those of cert_file", TLSModeFiles)
	}
	for _, n := range tf.Names {
		if !bareHost(n) {
			v.at("tls.names", "[tls] names: %q must be a bare host name or IP address", n)
		}
	}

	switch tf.Mode {
	case "":
		v.at("server.listen_tls", "listen_tls needs [tls] mode: %q, %q or %q", TLSModeACME, TLSModeFiles, TLSModeSelfSigned)
	case TLSModeFiles:
		s.CertFile, s.KeyFile = tf.CertFile, tf.KeyFile
		if s.CertFile == "" || s.KeyFile == "" {
			v.at("tls.mode", "[tls] mode %q needs cert_file and key_file", TLSModeFiles)
		} else {
			v.later(func() { v.checkKeyPair(tf.CertFile, tf.KeyFile) })
		}
	case TLSModeSelfSigned:
		if len(s.Names) == 0 {
			s.Names = defaultSelfSignedNames(cfg.ListenTLS)
		}
	case TLSModeACME:
		v.buildACME(tf, &s, cfg)
	default:
		v.at("tls.mode", "[tls] mode %q: want %q, %q or %q", tf.Mode, TLSModeACME, TLSModeFiles, TLSModeSelfSigned)
	}
	cfg.TLS = s
}

func (v *validator) buildACME(tf *tlsFile, s *TLSSettings, cfg *Config) {
	if len(s.Names) == 0 {
		v.at("tls.mode", "[tls] mode %q needs names: the host names ISE uses to reach postern", TLSModeACME)
	}
	s.ACMEDirectory = tf.ACMEDirectory
	if s.ACMEDirectory == "" {
		s.ACMEDirectory = defaultACMEDirectory
	} else if u, err := url.Parse(s.ACMEDirectory); err != nil || u.Scheme != "https" || u.Host == "" {
		v.at("tls.acme_directory", "[tls] acme_directory %q must be an https:// URL", s.ACMEDirectory)
	}
	v.later(func() {
		if roots, ok := v.loadRoots("tls.acme_ca_files", "[tls] acme_", tf.ACMECAFiles); ok {
			cfg.TLS.ACMERoots = roots.Pool()
		}
	})
	s.ACMEEmail = tf.ACMEEmail
	if s.ACMEEmail != "" && (!strings.Contains(s.ACMEEmail, "@") || strings.ContainsAny(s.ACMEEmail, " \t<>")) {
		v.at("tls.acme_email", "[tls] acme_email %q is not an e-mail address", s.ACMEEmail)
	}
	s.ACMEChallenge = tf.ACMEChallenge
	if s.ACMEChallenge == "" {
		s.ACMEChallenge = defaultACMEChallenge
	}
	switch s.ACMEChallenge {
	case challengeTLSALPN:
		if tf.ACMEHTTPListen != "" {
			v.at("tls.acme_http_listen", "[tls] acme_http_listen is used only with acme_challenge = %q", challengeHTTP)
		}
	case challengeHTTP:
		s.ACMEHTTPListen = tf.ACMEHTTPListen
		if s.ACMEHTTPListen == "" {
			s.ACMEHTTPListen = defaultACMEHTTPListen
		}
		if _, port, err := net.SplitHostPort(s.ACMEHTTPListen); err != nil {
			v.at("tls.acme_http_listen", "[tls] acme_http_listen %q: want host:port, e.g. \":80\"", s.ACMEHTTPListen)
		} else if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			v.at("tls.acme_http_listen", "[tls] acme_http_listen %q: invalid port", s.ACMEHTTPListen)
		}
	default:
		v.at("tls.acme_challenge", "[tls] acme_challenge %q: want %q or %q", s.ACMEChallenge, challengeTLSALPN, challengeHTTP)
	}
}

// defaultSelfSignedNames covers the listen_tls host when it names one, and
// localhost.
func defaultSelfSignedNames(listen string) []string {
	names := []string{"localhost"}
	if h, _, err := net.SplitHostPort(listen); err == nil && h != "" && h != "localhost" {
		if ip := net.ParseIP(h); ip == nil || !ip.IsUnspecified() {
			names = append(names, h)
		}
	}
	return names
}

// interceptsHost reports whether CONNECT to host (with or without port) is
// terminated by postern.
func (c *Config) InterceptsHost(host string) bool {
	return slices.Contains(c.InterceptHosts, HostOnly(host))
}

func (s TLSSettings) String() string {
	switch s.Mode {
	case TLSModeFiles:
		return fmt.Sprintf("files %s", s.CertFile)
	case TLSModeACME:
		return fmt.Sprintf("acme %s for %s (%s)", s.ACMEDirectory, strings.Join(s.Names, ", "), s.ACMEChallenge)
	}
	return fmt.Sprintf("%s for %s", s.Mode, strings.Join(s.Names, ", "))
}
