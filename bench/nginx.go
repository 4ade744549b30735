package main

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The nginx+Lua reference is the program issue 13 set postern's throughput
// target by ("nginx 1.22 + Lua: rewrite in Lua, subrequest to an upstream
// proxy_pass pool with keepalive 256"), run in the same rounds as the rest
// so that "as fast as nginx with Lua" is measured on the machine of the
// day rather than quoted from another. Like the relays it does the job
// without postern's checks: Lua reads the legacy GET's to and text, builds
// the One API JSON, an internal subrequest POSTs it over a keep-alive TLS
// pool that verifies the provider's certificate, and Lua answers
// "ID: <apiMessageId>". No access log (the relays write none either). It
// runs when nginx and its Lua module are installed (Debian: nginx,
// libnginx-mod-http-lua); the row is left out otherwise.

// nginxModules are the dynamic modules the reference loads, in order (the
// Lua module needs the development kit first).
var nginxModules = []string{"/usr/lib/nginx/modules/ndk_http_module.so", "/usr/lib/nginx/modules/ngx_http_lua_module.so"}

// nginxAvailable reports whether the nginx+Lua reference can run here.
func nginxAvailable() bool {
	if _, err := exec.LookPath("nginx"); err != nil {
		return false
	}
	for _, m := range nginxModules {
		if _, err := os.Stat(m); err != nil {
			return false
		}
	}
	return true
}

// nginxConfig is the reference's configuration: listen on listenPort, send
// to the provider at providerURL, trusting caFile for it (the provider's
// certificate names example.com, as httptest's does, and proxy_ssl_verify
// checks a name, not an address).
func nginxConfig(dir string, listenPort int, providerURL, caFile string) (string, error) {
	u, err := url.Parse(providerURL)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, m := range nginxModules {
		fmt.Fprintf(&b, "load_module %s;\n", m)
	}
	fmt.Fprintf(&b, `daemon off;
master_process on;
worker_processes auto;
pid %[1]s/nginx.pid;
error_log stderr warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path %[1]s/client_body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    keepalive_requests 1000000;
    upstream provider {
        server %[2]s;
        keepalive 256;
    }
    server {
        listen 127.0.0.1:%[3]d;
        location = /http/sendmsg {
            content_by_lua_block {
                local args = ngx.req.get_uri_args()
                local to, text = args.to, args.text
                if type(to) ~= "string" or type(text) ~= "string" then
                    ngx.status = 400
                    ngx.print("ERR: 101, Invalid or missing parameters")
                    return
                end
                local function esc(s)
                    return (s:gsub('[%%c"\\]', function(c)
                        if c == '"' then return '\\"' end
                        if c == '\\' then return '\\\\' end
                        return string.format('\\u%%04x', c:byte())
                    end))
                end
                local body = '{"messages":[{"channel":"sms","to":"' .. esc(to) .. '","content":"' .. esc(text) .. '"}]}'
                local res = ngx.location.capture("/upstream", {method = ngx.HTTP_POST, body = body})
                local id = (res.status == 200 or res.status == 202) and res.body:match('"apiMessageId":"([^"]*)"')
                if not id then
                    ngx.status = 502
                    ngx.print("ERR: 105, Upstream failure")
                    return
                end
                ngx.header["Content-Type"] = "text/plain; charset=utf-8"
                ngx.print("ID: " .. id)
            }
        }
        location = /upstream {
            internal;
            proxy_pass https://provider%[4]s;
            proxy_http_version 1.1;
            proxy_pass_request_headers off;
            proxy_set_header Connection "";
            proxy_set_header Host example.com;
            proxy_set_header Content-Type application/json;
            proxy_set_header Accept application/json;
            proxy_set_header Authorization tok-bench;
            proxy_ssl_verify on;
            proxy_ssl_trusted_certificate %[5]s;
            proxy_ssl_name example.com;
            proxy_ssl_session_reuse on;
        }
    }
}
`, dir, u.Host, listenPort, "/v1/message", caFile)
	path := filepath.Join(dir, "nginx.conf")
	return path, os.WriteFile(path, []byte(b.String()), 0o600)
}

// startNginx runs the reference in its own directory under dir and waits
// until it accepts connections. Its process is the master; the workers are
// its children, whose CPU and memory processCPU and peakRSS add.
func startNginx(dir, providerURL, caFile string) (*nginxProc, error) {
	dir = filepath.Join(dir, "nginx")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	port, err := freeLoopbackPort()
	if err != nil {
		return nil, err
	}
	conf, err := nginxConfig(dir, port, providerURL, caFile)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("nginx", "-p", dir, "-e", "stderr", "-c", conf)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	var log strings.Builder
	logged := make(chan struct{})
	go func() {
		defer close(logged)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if log.Len() < 4<<10 {
				log.WriteString(sc.Text() + "\n")
			}
		}
	}()
	addr := "127.0.0.1:" + strconv.Itoa(port)
wait:
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return &nginxProc{relayProc{cmd: cmd, addr: addr}}, nil
		}
		select {
		case <-logged: // stderr closed: nginx ended (a bad configuration)
			break wait
		default:
		}
	}
	cmd.Process.Kill()
	cmd.Wait()
	<-logged
	return nil, fmt.Errorf("nginx did not start listening: %s", strings.TrimSpace(log.String()))
}

// nginxProc is the reference's master process.
type nginxProc struct{ relayProc }

// stop shuts nginx down as its TERM signal does (workers first), so that
// no worker outlives the run; a master that does not end in time is killed.
func (p *nginxProc) stop() { stopProcess(p.cmd, syscall.SIGTERM) }

// freeLoopbackPort is a port nothing listens on right now (nginx takes a
// port number, not a listener).
func freeLoopbackPort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	tcp, ok := ln.Addr().(*net.TCPAddr)
	if !ok {
		return 0, errors.New("not a TCP address")
	}
	return tcp.Port, nil
}
