package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/postern/postern/proxy"
)

// onSIGHUP does what operators and logrotate expect of SIGHUP, until ctx
// ends: reopen the audit file (it may have been rotated) and re-read the
// configuration. A config that fails to load is logged and counted, and the
// old one keeps serving. [audit] sinks are opened at start-up only: a
// changed [audit] table takes effect after a restart.
func onSIGHUP(ctx context.Context, srv *proxy.Server, load func() (*proxy.Config, error), sinks *proxy.AuditSinks) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				sinks.Reopen()
				srv.ReloadFrom(load) // logs its own outcome
			}
		}
	}()
}

// Default admin URLs for `postern reload` and `postern health`, matching the
// default [server] admin_listen.
const (
	defaultReloadURL = "http://" + proxy.DefaultAdminListen + "/-/reload"
	defaultHealthURL = "http://" + proxy.DefaultAdminListen + "/healthz"
)

// reloadCmd asks a running postern, through its admin listener, to re-read
// its configuration; exit 0 when the new config is serving, 1 when it was
// rejected (the reason is printed) or postern could not be reached.
func reloadCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("reload", stderr)
	u := fs.String("url", "", "postern's admin reload URL (default: from -config's admin_listen, else "+defaultReloadURL+")")
	configPath := fs.String("config", "", "config whose admin_listen to reach (default ./config.toml if present)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	target, err := adminURL(*u, *configPath, "/-/reload")
	if err != nil {
		fmt.Fprintf(stderr, "postern reload: %v\n", err)
		return 1
	}
	status, body, err := adminCall(http.MethodPost, target)
	if err != nil {
		fmt.Fprintf(stderr, "postern reload: %v\n", err)
		return 1
	}
	if status != http.StatusOK {
		fmt.Fprintf(stderr, "postern reload: %s", body)
		return 1
	}
	fmt.Fprint(stdout, body)
	return 0
}

// healthCmd exits 0 when postern's /healthz answers 200. It exists because
// the container image has no shell or curl for a HEALTHCHECK.
func healthCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("health", stderr)
	u := fs.String("url", "", "postern's admin health URL, /healthz or /readyz (default: from -config's admin_listen, else "+defaultHealthURL+")")
	configPath := fs.String("config", "", "config whose admin_listen to reach (default ./config.toml if present)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	target, err := adminURL(*u, *configPath, "/healthz")
	if err != nil {
		fmt.Fprintf(stderr, "postern health: %v\n", err)
		return 1
	}
	status, body, err := adminCall(http.MethodGet, target)
	if err != nil {
		fmt.Fprintf(stderr, "postern health: %v\n", err)
		return 1
	}
	if status != http.StatusOK {
		fmt.Fprintf(stderr, "postern health: %d %s", status, body)
		return 1
	}
	fmt.Fprint(stdout, body)
	return 0
}

func adminCall(method, u string) (int, string, error) {
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		return 0, "", fmt.Errorf("bad -url: %w", err)
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil}}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return 0, "", fmt.Errorf("reading reply: %w", err)
	}
	s := string(b)
	if !strings.HasSuffix(s, "\n") {
		s += "\n"
	}
	return resp.StatusCode, s, nil
}
