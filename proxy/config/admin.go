package config

import (
	"net"
	"strconv"
)

// AdminOff is the admin_listen value that turns the admin listener off.
const AdminOff = "off"

// buildAdmin validates the operational [server] keys: admin_listen and
// shutdown_grace.
func (v *validator) buildAdmin(sf serverFile, cfg *Config) {
	switch sf.AdminListen {
	case "":
		cfg.AdminListen = DefaultAdminListen
	case AdminOff:
		cfg.AdminListen = ""
	default:
		cfg.AdminListen = sf.AdminListen
		if _, port, err := net.SplitHostPort(sf.AdminListen); err != nil {
			v.at("server.admin_listen", "admin_listen %q: want host:port, e.g. \"127.0.0.1:9090\", or \"off\"", sf.AdminListen)
		} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			v.at("server.admin_listen", "admin_listen %q: invalid port", sf.AdminListen)
		}
	}
	cfg.ShutdownGrace = sf.ShutdownGrace.Duration
	if cfg.ShutdownGrace == 0 {
		cfg.ShutdownGrace = defaultShutdownGrace
	}
}
