package macpool

import (
	"crypto/hmac"
	"crypto/sha256"
	"strings"
	"sync"
	"testing"
)

func reference(key []byte, data string) [Size]byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	var out [Size]byte
	copy(out[:], m.Sum(nil))
	return out
}

// TestSumIsHMACSHA256: every sum equals crypto/hmac's, whatever came
// before it through the same reused state (short, empty, long inputs).
func TestSumIsHMACSHA256(t *testing.T) {
	key := []byte("k3y-for-message-ids")
	p := New(key)
	for _, s := range []string{"", "a", "15551234567", strings.Repeat("x", 100_000), "after a long one", ""} {
		if got, want := p.SumString(s), reference(key, s); got != want {
			t.Errorf("SumString(%d bytes) = %x, want %x", len(s), got, want)
		}
	}
}

// TestKeyIsCopied: changing the caller's key slice later changes nothing.
func TestKeyIsCopied(t *testing.T) {
	key := []byte("original")
	p := New(key)
	copy(key, "changed!")
	if got, want := p.SumString("x"), reference([]byte("original"), "x"); got != want {
		t.Fatalf("sum follows the caller's slice: %x, want %x", got, want)
	}
}

// TestConcurrentSums: states are not shared between concurrent callers.
func TestConcurrentSums(t *testing.T) {
	key := []byte("k")
	p := New(key)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				s := strings.Repeat(string(rune('a'+g)), i%40)
				if p.SumString(s) != reference(key, s) {
					t.Errorf("goroutine %d: wrong sum for %q", g, s)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// TestSumAllocatesNothing once a state is pooled.
func TestSumAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector empties sync.Pools at random")
	}
	p := New([]byte("k"))
	p.SumString("warm")
	if n := testing.AllocsPerRun(100, func() { p.SumString("15551234567") }); n != 0 {
		t.Errorf("SumString allocates %.1f times, want 0", n)
	}
}
