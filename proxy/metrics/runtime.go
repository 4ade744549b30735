package metrics

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// The Go runtime's metrics, as client_golang's default Go collector
// (collectors.NewGoCollector) exports them: the same names, help texts and
// values, so dashboards built on it keep working. The memstats-like ones
// come from runtime/metrics (no stop-the-world ReadMemStats), as there.

// Runtime metric names read at each scrape.
const (
	rmGCTinyAllocs   = "/gc/heap/tiny/allocs:objects"
	rmGCAllocs       = "/gc/heap/allocs:objects"
	rmGCFrees        = "/gc/heap/frees:objects"
	rmGCAllocBytes   = "/gc/heap/allocs:bytes"
	rmGCObjects      = "/gc/heap/objects:objects"
	rmGCGoal         = "/gc/heap/goal:bytes"
	rmTotal          = "/memory/classes/total:bytes"
	rmHeapObjects    = "/memory/classes/heap/objects:bytes"
	rmHeapUnused     = "/memory/classes/heap/unused:bytes"
	rmHeapReleased   = "/memory/classes/heap/released:bytes"
	rmHeapFree       = "/memory/classes/heap/free:bytes"
	rmHeapStacks     = "/memory/classes/heap/stacks:bytes"
	rmOSStacks       = "/memory/classes/os-stacks:bytes"
	rmMSpanInuse     = "/memory/classes/metadata/mspan/inuse:bytes"
	rmMSpanFree      = "/memory/classes/metadata/mspan/free:bytes"
	rmMCacheInuse    = "/memory/classes/metadata/mcache/inuse:bytes"
	rmMCacheFree     = "/memory/classes/metadata/mcache/free:bytes"
	rmProfBuckets    = "/memory/classes/profiling/buckets:bytes"
	rmMetadataOther  = "/memory/classes/metadata/other:bytes"
	rmOther          = "/memory/classes/other:bytes"
	rmGOGC           = "/gc/gogc:percent"
	rmGOMEMLIMIT     = "/gc/gomemlimit:bytes"
	rmGOMAXPROCS     = "/sched/gomaxprocs:threads"
	runtimeSampleLen = 23
)

// runtimeSampleNames is every runtime metric a scrape reads, in the order
// of the sample slice.
var runtimeSampleNames = [runtimeSampleLen]string{rmGCTinyAllocs, rmGCAllocs, rmGCFrees, rmGCAllocBytes,
	rmGCObjects, rmGCGoal, rmTotal, rmHeapObjects, rmHeapUnused, rmHeapReleased, rmHeapFree, rmHeapStacks,
	rmOSStacks, rmMSpanInuse, rmMSpanFree, rmMCacheInuse, rmMCacheFree, rmProfBuckets, rmMetadataOther,
	rmOther, rmGOGC, rmGOMEMLIMIT, rmGOMAXPROCS}

// runtimeGauge is one of the runtime metrics client_golang exports under a
// name derived from the runtime's ("/gc/gogc:percent" is
// go_gc_gogc_percent), with the runtime's own description.
type runtimeGauge struct {
	name, help, rm string
}

// runtimeMetrics is what a Metrics knows of the runtime's metrics: which of
// the exported ones this Go version has, and their descriptions.
type runtimeMetrics struct {
	gauges []runtimeGauge
	have   map[string]bool // runtime metric names this Go version supports
}

func newRuntimeMetrics() runtimeMetrics {
	r := runtimeMetrics{have: map[string]bool{}}
	desc := map[string]string{}
	for _, d := range metrics.All() {
		r.have[d.Name] = true
		desc[d.Name] = d.Description
	}
	for _, g := range []runtimeGauge{
		{name: "go_gc_gogc_percent", rm: rmGOGC},
		{name: "go_gc_gomemlimit_bytes", rm: rmGOMEMLIMIT},
		{name: "go_sched_gomaxprocs_threads", rm: rmGOMAXPROCS},
	} {
		if d, ok := desc[g.rm]; ok {
			g.help = d + " Sourced from " + g.rm + "."
			r.gauges = append(r.gauges, g)
		}
	}
	return r
}

// memStat is one go_memstats_* family.
type memStat struct {
	name, help, typ string
	value           func(v func(string) uint64) float64
}

var memStats = []memStat{
	{"go_memstats_alloc_bytes", "Number of bytes allocated in heap and currently in use. Equals to /memory/classes/heap/objects:bytes.", typeGauge,
		func(v func(string) uint64) float64 { return float64(v(rmHeapObjects)) }},
	{"go_memstats_alloc_bytes_total", "Total number of bytes allocated in heap until now, even if released already. Equals to /gc/heap/allocs:bytes.", typeCounter,
		func(v func(string) uint64) float64 { return float64(v(rmGCAllocBytes)) }},
	{"go_memstats_sys_bytes", "Number of bytes obtained from system. Equals to /memory/classes/total:byte.", typeGauge,
		func(v func(string) uint64) float64 { return float64(v(rmTotal)) }},
	{"go_memstats_mallocs_total", "Total number of heap objects allocated, both live and gc-ed. Semantically a counter version for go_memstats_heap_objects gauge. Equals to /gc/heap/allocs:objects + /gc/heap/tiny/allocs:objects.", typeCounter,
		func(v func(string) uint64) float64 { return float64(v(rmGCAllocs) + v(rmGCTinyAllocs)) }},
	{"go_memstats_frees_total", "Total number of heap objects frees. Equals to /gc/heap/frees:objects + /gc/heap/tiny/allocs:objects.", typeCounter,
		func(v func(string) uint64) float64 { return float64(v(rmGCFrees) + v(rmGCTinyAllocs)) }},
	{"go_memstats_heap_alloc_bytes", "Number of heap bytes allocated and currently in use, same as go_memstats_alloc_bytes. Equals to /memory/classes/heap/objects:bytes.", typeGauge,
		func(v func(string) uint64) float64 { return float64(v(rmHeapObjects)) }},
	{"go_memstats_heap_sys_bytes", "Number of heap bytes obtained from system. Equals to /memory/classes/heap/objects:bytes + /memory/classes/heap/unused:bytes + /memory/classes/heap/released:bytes + /memory/classes/heap/free:bytes.", typeGauge,
		func(v func(string) uint64) float64 {
			return float64(v(rmHeapObjects) + v(rmHeapUnused) + v(rmHeapReleased) + v(rmHeapFree))
		}},
	{"go_memstats_heap_idle_bytes", "Number of heap bytes waiting to be used. Equals to /memory/classes/heap/released:bytes + /memory/classes/heap/free:bytes.", typeGauge,
		func(v func(string) uint64) float64 { return float64(v(rmHeapReleased) + v(rmHeapFree)) }},
	{"go_memstats_heap_inuse_bytes", "Number of heap bytes that are in use. Equals to /memory/classes/heap/objects:bytes + /memory/classes/heap/unused:bytes", typeGauge,
		func(v func(string) uint64) float64 { return float64(v(rmHeapObjects) + v(rmHeapUnused)) }},
	{"go_memstats_heap_released_bytes", "Number of heap bytes released to OS. Equals to /memory/classes/heap/released:bytes.", typeGauge,
		func(v func(string) uint64) float64 { return float64(v(rmHeapReleased)) }},
	{"go_memstats_heap_objects", "Number of currently allocated objects. Equals to /gc/heap/objects:objects.", typeGauge,
		func(v func(string) uint64) float64 { return float64(v(rmGCObjects)) }},
	{"go_memstats_stack_inuse_bytes", "Number of bytes obtained from system for stack allocator in non-CGO environments. Equals to /memory/classes/heap/stacks:bytes.", typeGauge,
		func(v func(string) uint64) float64 { return float64(v(rmHeapStacks)) }},
	{"go_memstats_stack_sys_bytes", "Number of bytes obtained from system for stack allocator. Equals to /memory/classes/heap/stacks:bytes + /memory/classes/os-stacks:bytes.", typeGauge,
		func(v func(string) uint64) float64 { return float64(v(rmHeapStacks) + v(rmOSStacks)) }},
	{"go_memstats_mspan_inuse_bytes", "Number of bytes in use by mspan structures. Equals to /memory/classes/metadata/mspan/inuse:bytes.", typeGauge,
		func(v func(string) uint64) float64 { return float64(v(rmMSpanInuse)) }},
	{"go_memstats_mspan_sys_bytes", "Number of bytes used for mspan structures obtained from system. Equals to /memory/classes/metadata/mspan/inuse:bytes + /memory/classes/metadata/mspan/free:bytes.", typeGauge,
		func(v func(string) uint64) float64 { return float64(v(rmMSpanInuse) + v(rmMSpanFree)) }},
	{"go_memstats_mcache_inuse_bytes", "Number of bytes in use by mcache structures. Equals to /memory/classes/metadata/mcache/inuse:bytes.", typeGauge,
		func(v func(string) uint64) float64 { return float64(v(rmMCacheInuse)) }},
	{"go_memstats_mcache_sys_bytes", "Number of bytes used for mcache structures obtained from system. Equals to /memory/classes/metadata/mcache/inuse:bytes + /memory/classes/metadata/mcache/free:bytes.", typeGauge,
		func(v func(string) uint64) float64 { return float64(v(rmMCacheInuse) + v(rmMCacheFree)) }},
	{"go_memstats_buck_hash_sys_bytes", "Number of bytes used by the profiling bucket hash table. Equals to /memory/classes/profiling/buckets:bytes.", typeGauge,
		func(v func(string) uint64) float64 { return float64(v(rmProfBuckets)) }},
	{"go_memstats_gc_sys_bytes", "Number of bytes used for garbage collection system metadata. Equals to /memory/classes/metadata/other:bytes.", typeGauge,
		func(v func(string) uint64) float64 { return float64(v(rmMetadataOther)) }},
	{"go_memstats_other_sys_bytes", "Number of bytes used for other system allocations. Equals to /memory/classes/other:bytes.", typeGauge,
		func(v func(string) uint64) float64 { return float64(v(rmOther)) }},
	{"go_memstats_next_gc_bytes", "Number of heap bytes when next garbage collection will take place. Equals to /gc/heap/goal:bytes.", typeGauge,
		func(v func(string) uint64) float64 { return float64(v(rmGCGoal)) }},
}

// writeRuntime writes the Go runtime's families into fs.
func (r *runtimeMetrics) families(fs []family) []family {
	var samples [runtimeSampleLen]metrics.Sample
	n := 0
	for _, name := range runtimeSampleNames {
		if r.have[name] {
			samples[n].Name = name
			n++
		}
	}
	metrics.Read(samples[:n])
	value := func(name string) uint64 {
		for i := range samples[:n] {
			if samples[i].Name == name && samples[i].Value.Kind() == metrics.KindUint64 {
				return samples[i].Value.Uint64()
			}
		}
		return 0
	}
	for _, s := range memStats {
		fs = append(fs, family{name: s.name, help: s.help, typ: s.typ, value: s.value(value)})
	}
	for _, g := range r.gauges {
		fs = append(fs, family{name: g.name, help: g.help, typ: typeGauge, value: float64(value(g.rm))})
	}

	threads, _ := runtime.ThreadCreateProfile(nil)
	fs = append(fs,
		family{name: "go_goroutines", help: "Number of goroutines that currently exist.", typ: typeGauge, value: float64(runtime.NumGoroutine())},
		family{name: "go_threads", help: "Number of OS threads created.", typ: typeGauge, value: float64(threads)},
		family{name: "go_info", help: "Information about the Go environment.", typ: typeGauge, value: 1,
			labels: []label{{"version", runtime.Version()}}})

	var gc debug.GCStats
	gc.PauseQuantiles = make([]time.Duration, 5)
	debug.ReadGCStats(&gc)
	fs = append(fs,
		family{name: "go_memstats_last_gc_time_seconds", help: "Number of seconds since 1970 of last garbage collection.", typ: typeGauge,
			value: float64(gc.LastGC.UnixNano()) / 1e9},
		family{name: "go_gc_duration_seconds", help: "A summary of the wall-time pause (stop-the-world) duration in garbage collection cycles.", typ: typeSummary,
			emit: func(w *expo) {
				for i, q := range gc.PauseQuantiles {
					w.sample("go_gc_duration_seconds", "", nil, "quantile", float64(i)/4, q.Seconds())
				}
				w.sample("go_gc_duration_seconds", "_sum", nil, "", 0, gc.PauseTotal.Seconds())
				w.sample("go_gc_duration_seconds", "_count", nil, "", 0, float64(gc.NumGC))
			}})
	return fs
}
