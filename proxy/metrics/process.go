package metrics

import (
	"bytes"
	"os"
	"strconv"
	"strings"
)

// The process's metrics, as client_golang's process collector exports
// them on Linux, read from /proc at each scrape. A file that cannot be read
// (another OS, a /proc without it) leaves its metrics out, as there.

// userHZ is the unit of the times in /proc/PID/stat (USER_HZ, 100 on every
// Linux architecture Go supports), as procfs assumes.
const userHZ = 100

// procStat is what a scrape reads from /proc/self/stat.
type procStat struct {
	cpuSeconds float64 // utime + stime
	vsize, rss float64 // bytes
	startTicks float64 // since boot, in userHZ
}

func readProcStat() (procStat, bool) {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return procStat{}, false
	}
	// The command name (field 2) is in parentheses and may hold anything,
	// spaces and parentheses included: the fields after it follow the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, false
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state): utime is field 14, stime 15, starttime 22,
	// vsize 23, rss 24 (in pages).
	if len(f) < 22 {
		return procStat{}, false
	}
	num := func(i int) float64 {
		v, _ := strconv.ParseUint(f[i], 10, 64)
		return float64(v)
	}
	rss, _ := strconv.ParseInt(f[21], 10, 64)
	return procStat{
		cpuSeconds: float64(uint64(num(11))+uint64(num(12))) / userHZ,
		vsize:      num(20),
		rss:        float64(rss * int64(os.Getpagesize())),
		startTicks: num(19),
	}, true
}

// processStartTime is process_start_time_seconds: boot time (/proc/stat
// btime) plus the process's start in ticks since boot; 0 when unknown.
func processStartTime() float64 {
	st, ok := readProcStat()
	if !ok {
		return 0
	}
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "btime "); ok {
			boot, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return 0
			}
			return float64(boot) + st.startTicks/userHZ
		}
	}
	return 0
}

// openFDs counts /proc/self/fd: its size where the kernel reports it
// (Linux 6.2 and later), else its entries.
func openFDs() (int, bool) {
	if st, err := os.Stat("/proc/self/fd"); err == nil && st.Size() > 0 {
		return int(st.Size()), true
	}
	d, err := os.Open("/proc/self/fd")
	if err != nil {
		return 0, false
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return 0, false
	}
	return len(names), true
}

// limits returns the soft limits on open files and address space from
// /proc/self/limits ("unlimited" is the largest uint64, as procfs has it).
func limits() (files, addressSpace float64, ok bool) {
	b, err := os.ReadFile("/proc/self/limits")
	if err != nil {
		return 0, 0, false
	}
	soft := func(line, name string) (float64, bool) {
		rest, found := strings.CutPrefix(line, name)
		if !found {
			return 0, false
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			return 0, false
		}
		if f[0] == "unlimited" {
			return float64(^uint64(0)), true
		}
		v, err := strconv.ParseUint(f[0], 10, 64)
		return float64(v), err == nil
	}
	var haveFiles, haveAS bool
	for line := range strings.Lines(string(b)) {
		if v, found := soft(line, "Max open files "); found {
			files, haveFiles = v, true
		} else if v, found := soft(line, "Max address space "); found {
			addressSpace, haveAS = v, true
		}
	}
	return files, addressSpace, haveFiles && haveAS
}

// netOctets returns IpExt's InOctets and OutOctets from
// /proc/self/net/netstat: the bytes of the process's network namespace.
func netOctets() (in, out float64, ok bool) {
	b, err := os.ReadFile("/proc/self/net/netstat")
	if err != nil {
		return 0, 0, false
	}
	var names []string
	for line := range strings.Lines(string(b)) {
		rest, found := strings.CutPrefix(line, "IpExt:")
		if !found {
			continue
		}
		if names == nil {
			names = strings.Fields(rest)
			continue
		}
		for i, v := range strings.Fields(rest) {
			if i >= len(names) {
				break
			}
			switch names[i] {
			case "InOctets":
				in, _ = strconv.ParseFloat(v, 64)
			case "OutOctets":
				out, _ = strconv.ParseFloat(v, 64)
			}
		}
		return in, out, true
	}
	return 0, 0, true // no IpExt: client_golang reports 0 then
}

// processFamilies appends the process's families to fs.
func (m *Metrics) processFamilies(fs []family) []family {
	if st, ok := readProcStat(); ok {
		fs = append(fs,
			family{name: "process_cpu_seconds_total", help: "Total user and system CPU time spent in seconds.", typ: typeCounter, value: st.cpuSeconds},
			family{name: "process_virtual_memory_bytes", help: "Virtual memory size in bytes.", typ: typeGauge, value: st.vsize},
			family{name: "process_resident_memory_bytes", help: "Resident memory size in bytes.", typ: typeGauge, value: st.rss})
		if m.start != 0 {
			fs = append(fs, family{name: "process_start_time_seconds", help: "Start time of the process since unix epoch in seconds.", typ: typeGauge, value: m.start})
		}
	}
	if n, ok := openFDs(); ok {
		fs = append(fs, family{name: "process_open_fds", help: "Number of open file descriptors.", typ: typeGauge, value: float64(n)})
	}
	if files, as, ok := limits(); ok {
		fs = append(fs,
			family{name: "process_max_fds", help: "Maximum number of open file descriptors.", typ: typeGauge, value: files},
			family{name: "process_virtual_memory_max_bytes", help: "Maximum amount of virtual memory available in bytes.", typ: typeGauge, value: as})
	}
	if in, out, ok := netOctets(); ok {
		fs = append(fs,
			family{name: "process_network_receive_bytes_total", help: "Number of bytes received by the process over the network.", typ: typeCounter, value: in},
			family{name: "process_network_transmit_bytes_total", help: "Number of bytes sent by the process over the network.", typ: typeCounter, value: out})
	}
	return fs
}
