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

func (p *posternProc) stop() {
	if dir := os.Getenv("BENCH_MEMDUMP"); dir != "" {
		dumpMemory(dir, p.cmd.Process.Pid)
	}
	stopProcess(p.cmd, os.Interrupt)
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
