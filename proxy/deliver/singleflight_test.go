package deliver

import "testing"

// inFlight reports whether a message with key k is in flight.
func (sf *Joins) inFlight(k Key) bool {
	sf.mu.Lock()
	defer sf.mu.Unlock()
	for f := sf.flights[slot(k)]; f != nil; f = f.next {
		if f.key == k {
			return true
		}
	}
	return false
}

// TestJoinsKeysSharingTheirFirstBytes: flights are found by the first
// eight bytes of their key, but only a whole key joins: messages whose keys
// share those bytes each lead their own flight, an identical one joins
// the right flight, and a flight that ends (first, last or in the middle
// of those sharing its bytes) leaves the others in flight.
func TestJoinsKeysSharingTheirFirstBytes(t *testing.T) {
	key := func(last byte) Key {
		var k Key
		copy(k[:], "8bytes..")
		k[31] = last
		return k
	}
	var j Joins
	a, b, c := key('a'), key('b'), key('c')
	fa, _, leadA := j.join(a)
	fb, _, leadB := j.join(b)
	fc, _, leadC := j.join(c)
	if !leadA || !leadB || !leadC {
		t.Fatalf("different keys sharing their first bytes joined: leaders %v %v %v", leadA, leadB, leadC)
	}
	fb2, done, leadB2 := j.join(b)
	if leadB2 || fb2 != fb || done == nil {
		t.Fatalf("the same key again: leader %v, same flight %v; want it joined to b's", leadB2, fb2 == fb)
	}
	j.leave()
	for _, step := range []struct {
		finish Key
		f      *flight
		left   []Key
		gone   []Key
	}{
		{b, fb, []Key{a, c}, []Key{b}}, // the middle of the chain (c, b, a)
		{c, fc, []Key{a}, []Key{b, c}}, // its head
		{a, fa, nil, []Key{a, b, c}},   // the last
	} {
		j.finish(step.finish, step.f)
		for _, k := range step.left {
			if !j.inFlight(k) {
				t.Errorf("after %q finished, %q is no longer in flight", step.finish[31], k[31])
			}
		}
		for _, k := range step.gone {
			if j.inFlight(k) {
				t.Errorf("after %q finished, %q is still in flight", step.finish[31], k[31])
			}
		}
	}
	select {
	case <-done:
	default:
		t.Error("b's joiner was not told its flight ended")
	}
	if len(j.flights) != 0 {
		t.Errorf("%d slots left in the map, want none", len(j.flights))
	}
	if _, _, lead := j.join(b); !lead {
		t.Error("after b finished, the same message again does not lead")
	}
}
