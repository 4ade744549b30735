package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The wrk load generator (-load wrk) is the one issue 13 measured its table
// with: a C event loop in one thread, which leaves more of the two cores to
// the processes under test than the Go load generator does. The messages are
// the same kinds as the Go generator's — ISE's legacy GET to the relays and
// postern, the provider's JSON POST straight to the provider — every one
// different, over keep-alive connections. wrk's Lua script numbers the
// messages and prints the figures the report needs in one machine-readable
// line from its done() hook.

// wrkResultPrefix starts the line the scripts' done() hook prints.
const wrkResultPrefix = "POSTERN-BENCH"

// wrkDone prints requests, the measured duration (µs), the p50 and p99
// latencies (µs) and every kind of error wrk counts (non-2xx included).
const wrkDone = `
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("` + wrkResultPrefix + ` %d %d %d %d %d\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), e.connect + e.read + e.write + e.status + e.timeout))
end
`

// wrkLegacyScript is ISE's GET, one new message per request: the recipient
// and the text's number change with a counter of the wrk thread.
const wrkLegacyScript = `
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", string.format(
    "/http/sendmsg?user=ise&password=legacy&api_id=1&to=1201555%04d&text=Your+password+is+%d-%d", n % 50, n % 50, n))
end
` + wrkDone

// wrkDirectScript is the provider request itself, as if ISE could send it.
const wrkDirectScript = `
local n = 0
local headers = {["Content-Type"] = "application/json", ["Accept"] = "application/json", ["Authorization"] = "tok-bench"}
request = function()
  n = n + 1
  return wrk.format("POST", "/v1/message", headers, string.format(
    '{"messages":[{"channel":"sms","to":"1201555%04d","content":"Your password is %d-%d"}]}', n % 50, n % 50, n))
end
` + wrkDone

// wrkScripts writes the two scripts into dir.
func wrkScripts(dir string) (legacy, direct string, err error) {
	legacy, direct = filepath.Join(dir, "legacy.lua"), filepath.Join(dir, "direct.lua")
	if err := os.WriteFile(legacy, []byte(wrkLegacyScript), 0o600); err != nil {
		return "", "", err
	}
	return legacy, direct, os.WriteFile(direct, []byte(wrkDirectScript), 0o600)
}

// driveWrk runs wrk on conns connections against url with script: a
// warm-up of duration/10, then the measured run. pid, when not 0, is the
// server process whose CPU time over the measured run is added.
func driveWrk(threads, pid, conns int, duration time.Duration, url, script string) (result, error) {
	if _, err := runWrk(threads, conns, max(duration/10, time.Second), url, script); err != nil {
		return result{}, fmt.Errorf("warm-up: %w", err)
	}
	var cpu0 time.Duration
	if pid != 0 {
		var err error
		if cpu0, err = processCPU(pid); err != nil {
			return result{}, err
		}
	}
	r, err := runWrk(threads, conns, duration, url, script)
	if err != nil {
		return result{}, err
	}
	if pid != 0 {
		cpu1, err := processCPU(pid)
		if err != nil {
			return result{}, err
		}
		r.cpu = cpu1 - cpu0
		if r.peakRSS, err = peakRSS(pid); err != nil {
			return result{}, err
		}
	}
	return r, nil
}

// runWrk runs wrk once with threads threads (never more than conns) and
// reads its done() line.
func runWrk(threads, conns int, duration time.Duration, url, script string) (result, error) {
	secs := max(int(duration.Round(time.Second)/time.Second), 1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(secs)*time.Second+30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "wrk", "-t"+strconv.Itoa(min(threads, conns)), "-c"+strconv.Itoa(conns), "-d"+strconv.Itoa(secs)+"s",
		"--timeout", "10s", "-s", script, url)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			return result{}, errors.New("wrk is not installed (apt-get install wrk)")
		}
		return result{}, fmt.Errorf("wrk: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	return parseWrk(out.String())
}

// parseWrk reads the done() line out of wrk's output.
func parseWrk(out string) (result, error) {
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), wrkResultPrefix+" ")
		if !ok {
			continue
		}
		var requests, durUS, p50, p99, errs int64
		if _, err := fmt.Sscan(rest, &requests, &durUS, &p50, &p99, &errs); err != nil {
			return result{}, fmt.Errorf("wrk result line %q: %w", rest, err)
		}
		if errs > 0 {
			return result{}, fmt.Errorf("%d of %d requests failed", errs, requests)
		}
		if requests == 0 {
			return result{}, errors.New("wrk: no request succeeded")
		}
		return result{requests: int(requests), total: int(requests), elapsed: time.Duration(durUS) * time.Microsecond,
			p50: time.Duration(p50) * time.Microsecond, p99: time.Duration(p99) * time.Microsecond}, nil
	}
	return result{}, fmt.Errorf("wrk printed no result line:\n%s", out)
}
