//go:build race

package snapshot

// raceEnabled: the race detector makes the writer some nine times slower,
// so the million-entry test builds a smaller directory under it.
const raceEnabled = true
