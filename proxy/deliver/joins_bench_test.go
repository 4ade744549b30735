package deliver

import (
	"encoding/binary"
	"sync/atomic"
	"testing"
)

// BenchmarkJoins is a message's join and finish with no identical
// message in flight (every message different), from every P at once.
func BenchmarkJoins(b *testing.B) {
	var j Joins
	var n atomic.Uint64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			var k Key
			binary.LittleEndian.PutUint64(k[:], n.Add(1)*0x9e3779b97f4a7c15)
			f, _, leader := j.join(k)
			if !leader {
				b.Fatal("joined a flight that should not exist")
			}
			j.finish(k, f)
		}
	})
}
