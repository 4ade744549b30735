package config

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// serverFile mirrors [server].
type serverFile struct {
	Listen         string   `toml:"listen"`
	AllowClients   []string `toml:"allow_clients"`
	RequestTimeout Duration `toml:"request_timeout"`
	ListenTLS      string   `toml:"listen_tls"`
	DataDir        string   `toml:"data_dir"`
	// Guardrails (limits.go).
	ProxyUser             string   `toml:"proxy_user"`
	ProxyPassword         Secret   `toml:"proxy_password"`
	HeaderReadTimeout     Duration `toml:"header_read_timeout"`
	MaxURLBytes           int      `toml:"max_url_bytes"`
	MaxBodyBytes          int      `toml:"max_body_bytes"`
	MaxConcurrentUpstream int      `toml:"max_concurrent_upstream"`
	UpstreamQueueWait     Duration `toml:"upstream_queue_wait"`
	AdminListen           string   `toml:"admin_listen"`
	ShutdownGrace         Duration `toml:"shutdown_grace"`
	UpstreamRetries       *int     `toml:"upstream_retries"`
}

// buildServer validates the [server] keys that say where postern listens
// and whom it serves.
func (v *validator) buildServer(sf serverFile, cfg *Config) {
	if cfg.Listen == "" {
		cfg.Listen = defaultListen
	}
	if _, port, err := net.SplitHostPort(cfg.Listen); err != nil {
		v.at("server.listen", "listen %q: want host:port, e.g. \"127.0.0.1:8080\"", cfg.Listen)
	} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		v.at("server.listen", "listen %q: invalid port", cfg.Listen)
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = defaultRequestTimeout
	}
	v.buildAdmin(sf, cfg)
	v.buildRetries(sf, cfg)
	clients := sf.AllowClients
	if clients == nil {
		clients = defaultAllowClients
	}
	for _, s := range clients {
		p, err := parseClient(s)
		if err != nil {
			v.at("server.allow_clients", "allow_clients: %v", err)
			continue
		}
		cfg.AllowClients = append(cfg.AllowClients, p)
	}
}

func parseClient(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not a CIDR", s)
		}
		if p != p.Masked() {
			return netip.Prefix{}, fmt.Errorf("%q has host bits set (did you mean %s?)", s, p.Masked())
		}
		return p, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is neither an address nor a CIDR", s)
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}
