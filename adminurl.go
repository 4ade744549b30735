package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/postern/postern/proxy"
)

// adminURL is where `postern health` and `postern reload` reach a running
// postern: -url when given, else the admin_listen of -config (default
// ./config.toml when it exists), else the default admin address. A
// container's HEALTHCHECK and systemd's ExecReload name the config, so they
// follow whatever admin_listen the operator configured.
func adminURL(explicit, configPath, path string) (string, error) {
	if explicit != "" {
		return explicit, nil
	}
	if configPath == "" {
		if _, err := os.Stat("config.toml"); err != nil {
			return "http://" + proxy.DefaultAdminListen + path, nil
		}
		configPath = "config.toml"
	}
	listen, err := configuredAdminListen(configPath)
	if err != nil {
		return "", err
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("%s: admin_listen %q: %w", configPath, listen, err)
	}
	// A wildcard listener is reached on loopback, from the same machine or
	// container.
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return "http://" + net.JoinHostPort(host, port) + path, nil
}

// configuredAdminListen reads only [server] admin_listen. It does not load
// the whole config: a health probe or a reload must not need the route
// secrets, and must still reach the running server when the file on disk
// has just been edited into something invalid (the reload then says why).
func configuredAdminListen(configPath string) (string, error) {
	var fc struct {
		Server struct {
			AdminListen string `toml:"admin_listen"`
		} `toml:"server"`
	}
	if _, err := toml.DecodeFile(configPath, &fc); err != nil {
		return "", fmt.Errorf("reading admin_listen from %s: %w", configPath, err)
	}
	switch listen := strings.TrimSpace(fc.Server.AdminListen); listen {
	case "":
		return proxy.DefaultAdminListen, nil
	case proxy.AdminOff:
		return "", errors.New(configPath + `: admin_listen = "off": the admin listener is disabled, so there is nothing to ask (use -url, or SIGHUP to reload)`)
	default:
		return listen, nil
	}
}
