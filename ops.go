package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/postern/postern/proxy"
	"github.com/postern/postern/proxy/config"
)

// hangups delivers each SIGHUP until ctx ends. postern does what
// operators and logrotate expect of it: reopen the audit file (it may have
// been rotated) and re-read the configuration. A config that fails to load
// is logged and counted, and the old one keeps serving. [audit] sinks are
// opened at start-up only: a changed [audit] table takes effect after a
// restart.
func hangups(ctx context.Context) <-chan struct{} {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	out := make(chan struct{})
	go func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				select {
				case out <- struct{}{}:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out
}

// reloadFlags: `postern reload` asks a running postern, through its admin
// listener, to re-read its configuration. Exit 0 when all of the new config
// serves, 3 when it serves but some changes wait for a restart, 1 when it
// was rejected (the reason is printed) or postern could not be reached.
func reloadFlags(fs *flag.FlagSet) func([]string, io.Writer, io.Writer) int {
	configPath := fs.String("config", "", "config `FILE` whose [server] admin_listen locates postern (default ./config.toml)")
	u := fs.String("url", "", "postern's admin reload `URL` (default: from admin_listen, else http://"+config.DefaultAdminListen+"/-/reload)")
	return func(args []string, stdout, stderr io.Writer) int {
		if len(args) > 0 {
			return usageError(stderr, "reload", "takes no arguments, got %q", args[0])
		}
		target, err := adminURL(*u, *configPath, "/-/reload")
		if err != nil {
			fmt.Fprintf(stderr, "postern reload: %v\n", err)
			return exitFailure
		}
		resp, err := adminCall(http.MethodPost, target)
		if err != nil {
			fmt.Fprintf(stderr, "postern reload: %v\n", err)
			return exitFailure
		}
		if resp.status != http.StatusOK {
			fmt.Fprintf(stderr, "postern reload: %s", resp.body)
			return exitFailure
		}
		fmt.Fprint(stdout, resp.body)
		if resp.header.Get(proxy.ReloadResultHeader) == proxy.ReloadNeedsRestart {
			return exitRestartNeeded
		}
		return exitOK
	}
}

// healthFlags: `postern health` exits 0 when postern's /healthz answers 200.
// It exists because the container image has no shell or curl for a
// HEALTHCHECK.
func healthFlags(fs *flag.FlagSet) func([]string, io.Writer, io.Writer) int {
	configPath := fs.String("config", "", "config `FILE` whose [server] admin_listen locates postern (default ./config.toml)")
	u := fs.String("url", "", "postern's admin health `URL`, /healthz or /readyz (default: from admin_listen, else http://"+config.DefaultAdminListen+"/healthz)")
	return func(args []string, stdout, stderr io.Writer) int {
		if len(args) > 0 {
			return usageError(stderr, "health", "takes no arguments, got %q", args[0])
		}
		target, err := adminURL(*u, *configPath, "/healthz")
		if err != nil {
			fmt.Fprintf(stderr, "postern health: %v\n", err)
			return exitFailure
		}
		resp, err := adminCall(http.MethodGet, target)
		if err != nil {
			fmt.Fprintf(stderr, "postern health: %v\n", err)
			return exitFailure
		}
		if resp.status != http.StatusOK {
			fmt.Fprintf(stderr, "postern health: %d %s", resp.status, resp.body)
			return exitFailure
		}
		fmt.Fprint(stdout, resp.body)
		return exitOK
	}
}

// adminURL is where reload and health find postern: -url, else the
// admin_listen of the config (-config, else ./config.toml), else the
// default admin address. A wildcard listen address is reached on loopback.
func adminURL(flagURL, configPath, path string) (string, error) {
	if flagURL != "" {
		return flagURL, nil
	}
	addr := config.DefaultAdminListen
	if file := configFile(configPath); file != "" {
		a, err := config.ReadAdminListen(file)
		if err != nil {
			return "", err
		}
		if a == config.AdminOff {
			return "", fmt.Errorf("%s: admin_listen = \"off\": the admin listener is disabled, so there is nothing to ask (pass -url, or send postern SIGHUP to reload)", file)
		}
		addr = a
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("admin_listen %q: want host:port: %w", addr, err)
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
		if ip != nil && ip.To4() == nil {
			host = "::1"
		}
	}
	return "http://" + net.JoinHostPort(host, port) + path, nil
}

// adminReply is an admin listener's answer.
type adminReply struct {
	status int
	header http.Header
	body   string // ends in a newline
}

func adminCall(method, u string) (adminReply, error) {
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		return adminReply{}, fmt.Errorf("bad -url: %w", err)
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil}}
	resp, err := client.Do(req)
	if err != nil {
		return adminReply{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return adminReply{}, fmt.Errorf("reading reply: %w", err)
	}
	s := string(b)
	if !strings.HasSuffix(s, "\n") {
		s += "\n"
	}
	return adminReply{status: resp.StatusCode, header: resp.Header, body: s}, nil
}
