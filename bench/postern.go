package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// posternProc is the postern binary running under the benchmark.
type posternProc struct {
	cmd     *exec.Cmd
	addr    string
	startup time.Duration // exec to "postern listening"
}

// buildPostern compiles the module's main package into dir.
func buildPostern(dir string) (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, "postern")
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, ".")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, b)
	}
	return out, nil
}

// moduleRoot finds the directory holding postern's go.mod from here upwards.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && strings.Contains(string(b), "module github.com/postern/postern\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run from inside the postern module (no go.mod found)")
		}
		dir = parent
	}
}

// startPostern runs bin with configPath and waits for its listening line.
// The audit trail (stdout) is discarded but still written, as in production.
func startPostern(bin, configPath string) (*posternProc, error) {
	cmd := exec.Command(bin, "serve", "-config", configPath, "-listen", "127.0.0.1:0", "-admin-listen", "off")
	cmd.Stdout = io.Discard
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &posternProc{cmd: cmd}
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		var line struct {
			Msg    string `json:"msg"`
			Listen string `json:"listen"`
		}
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "postern listening" {
			p.startup, p.addr = time.Since(start), line.Listen
			go io.Copy(io.Discard, stderr)
			return p, nil
		}
	}
	cmd.Process.Kill()
	cmd.Wait()
	return nil, errors.New("postern exited before listening")
}

// peakRSS is the high-water resident set size (VmHWM) of process pid and
// its children (nginx's workers; postern and the relays have none), in
// bytes: summed, so for several processes an upper bound of their peak.
func peakRSS(pid int) (int64, error) { return sumWithChildren(pid, processPeakRSS) }

// processPeakRSS is one process's VmHWM.
func processPeakRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmHWM in /proc status")
}

// withChildren is pid and its child processes, from /proc/PID/task/*/children.
func withChildren(pid int) []int {
	pids := []int{pid}
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if c, err := strconv.Atoi(f); err == nil {
				pids = append(pids, c)
			}
		}
	}
	return pids
}

func (p *posternProc) stop() {
	if dir := os.Getenv("BENCH_MEMDUMP"); dir != "" {
		dumpMemory(dir, p.cmd.Process.Pid)
	}
	stopProcess(p.cmd, os.Interrupt)
}

// stopProcess sends cmd's process sig and waits for it to end, killing it
// if it has not ended within ten seconds.
func stopProcess(cmd *exec.Cmd, sig os.Signal) {
	cmd.Process.Signal(sig)
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-done
	}
}

// processCPU is the user plus system CPU time process pid and its
// children (nginx's workers) have used, from /proc/PID/stat (fields 14 and
// 15, in clock ticks of 1/100 s, the value of USER_HZ on Linux).
func processCPU(pid int) (time.Duration, error) { return sumWithChildren(pid, oneProcessCPU) }

// sumWithChildren is the sum of of(p) over pid and its children.
func sumWithChildren[T int64 | time.Duration](pid int, of func(int) (T, error)) (T, error) {
	var sum T
	for _, p := range withChildren(pid) {
		v, err := of(p)
		if err != nil {
			return 0, err
		}
		sum += v
	}
	return sum, nil
}

// oneProcessCPU is processCPU of one process.
func oneProcessCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; fields count from after it.
	_, rest, ok := strings.Cut(string(b), ") ")
	f := strings.Fields(rest)
	if !ok || len(f) < 13 {
		return 0, errors.New("unreadable /proc stat")
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond, nil
}

// dumpMemory copies the kernel's account of pid's memory (status with VmHWM,
// smaps_rollup's file-backed/anonymous split, smaps per mapping) into dir,
// for docs/benchmarks.md's RSS breakdown: BENCH_MEMDUMP=dir go run ./bench.
func dumpMemory(dir string, pid int) {
	for _, name := range []string{"status", "smaps_rollup", "smaps"} {
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, name)); err == nil {
			os.WriteFile(filepath.Join(dir, fmt.Sprintf("postern-%d.%s", pid, name)), b, 0o644)
		}
	}
}
