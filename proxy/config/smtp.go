package config

import (
	"net"
	"strconv"
	"strings"
)

// smtpFile mirrors [smtp].
type smtpFile struct {
	Listen          string `toml:"listen"`
	Hostname        string `toml:"hostname"`
	MaxMessageBytes int    `toml:"max_message_bytes"`
	RequireTLS      bool   `toml:"require_tls"`
	AuthUser        string `toml:"auth_user"`
	AuthPassword    Secret `toml:"auth_password"`
	Relay           string `toml:"relay"`
}

// SMTPSettings is [smtp] turned into runtime values: the SMTP listener
// that takes ISE's "SMS Email Gateway" mail. Listen "" means no listener.
type SMTPSettings struct {
	Listen          string
	Hostname        string // greeting and EHLO name
	MaxMessageBytes int    // SIZE; larger is 552
	RequireTLS      bool   // refuse MAIL before STARTTLS
	AuthUser        string // "" = no AUTH
	authPassword    string
	Relay           string // host:port for mail no route takes; "" = refuse it (550 5.7.1)
}

// AuthMatch reports whether user and password are [smtp]'s auth_user and
// auth_password, in constant time.
func (s *SMTPSettings) AuthMatch(user, password string) bool {
	return s.AuthUser != "" && equalSecret(user, s.AuthUser)&equalSecret(password, s.authPassword) == 1
}

// buildSMTP validates [smtp].
func (v *validator) buildSMTP(sf *smtpFile, cfg *Config) {
	s := SMTPSettings{Listen: sf.Listen, Hostname: sf.Hostname, MaxMessageBytes: sf.MaxMessageBytes,
		RequireTLS: sf.RequireTLS, AuthUser: sf.AuthUser, Relay: sf.Relay}
	if s.Listen == "" {
		for key, set := range map[string]bool{"hostname": sf.Hostname != "", "max_message_bytes": sf.MaxMessageBytes != 0,
			"require_tls": sf.RequireTLS, "auth_user": sf.AuthUser != "", "auth_password": sf.AuthPassword.IsSet(), "relay": sf.Relay != ""} {
			if set {
				v.at("smtp."+key, "[smtp] %s is set but [smtp] listen is not, so no SMTP listener would use it", key)
			}
		}
		cfg.SMTP = s
		return
	}
	if _, port, err := net.SplitHostPort(s.Listen); err != nil {
		v.at("smtp.listen", "[smtp] listen %q: want host:port, e.g. \"0.0.0.0:25\"", s.Listen)
	} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		v.at("smtp.listen", "[smtp] listen %q: invalid port", s.Listen)
	}
	if s.Hostname == "" {
		s.Hostname = defaultSMTPHostname
	} else if !bareHost(s.Hostname) || strings.ContainsAny(s.Hostname, "\r\n") {
		v.at("smtp.hostname", "[smtp] hostname %q must be a bare host name", s.Hostname)
	}
	switch {
	case s.MaxMessageBytes == 0:
		s.MaxMessageBytes = defaultSMTPMaxMessageBytes
	case s.MaxMessageBytes < 1024 || s.MaxMessageBytes > 10<<20:
		v.at("smtp.max_message_bytes", "[smtp] max_message_bytes must be between 1024 and %d", 10<<20)
	}
	if s.RequireTLS && cfg.TLS.Mode == "" {
		v.at("smtp.require_tls", "[smtp] require_tls needs a certificate for STARTTLS: set [server] listen_tls and [tls]")
	}
	switch {
	case s.AuthUser != "" && !sf.AuthPassword.IsSet():
		v.at("smtp.auth_user", "[smtp] auth_user needs auth_password")
	case s.AuthUser == "" && sf.AuthPassword.IsSet():
		v.at("smtp.auth_password", "[smtp] auth_password needs auth_user")
	case s.AuthUser != "" && cfg.TLS.Mode == "":
		v.at("smtp.auth_user", "[smtp] AUTH is only offered after STARTTLS, which needs [server] listen_tls and [tls]")
	case s.AuthUser != "":
		v.later(func() {
			pw, err := v.secret(sf.AuthPassword)
			if err != nil {
				v.at("smtp.auth_password", "[smtp] auth_password: %v", err)
				return
			}
			cfg.SMTP.authPassword = pw
			cfg.secrets = append(cfg.secrets, pw)
		})
	}
	if s.Relay != "" {
		if host, port, err := net.SplitHostPort(s.Relay); err != nil || host == "" {
			v.at("smtp.relay", "[smtp] relay %q: want host:port, e.g. \"mail.example.org:25\"", s.Relay)
		} else if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			v.at("smtp.relay", "[smtp] relay %q: invalid port", s.Relay)
		}
	}
	cfg.SMTP = s
}

// MatchMail returns the first mail route, in file order, that takes mail
// for domain, or nil.
func (c *Config) MatchMail(domain string) *Route {
	for _, r := range c.Routes {
		if r.Mail != nil && (r.MatchDomain == "*" || strings.EqualFold(r.MatchDomain, domain)) {
			return r
		}
	}
	return nil
}
