package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The servers under measurement (postern, the relays, nginx and its
// workers) are processes: their CPU time and peak memory come from /proc,
// and they are stopped by a signal.

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
