//go:build race

package macpool

// raceEnabled: the test binary runs under the race detector.
const raceEnabled = true
