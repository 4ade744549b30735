//go:build !race

package proxy_test

// raceEnabled: the test binary runs under the race detector.
const raceEnabled = false
