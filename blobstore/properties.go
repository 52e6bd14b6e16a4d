package blobstore

// Properties say what kind of volume a Driver is, so that the layers above
// choose how to read it from data instead of guessing from RoutingCost.
// A driver returns the same Properties every time it is asked.
type Properties struct {
	// Remote: every request crosses a network (an S3 bucket), so each costs
	// a round trip however few bytes it moves. A local disk is not remote.
	Remote bool
	// PreferStream: reading a whole blob front to back is cheaper with one
	// RawFetch than with a ranged read per frame, even from a
	// RandomAccessDriver. True where requests, not bytes, are what costs.
	PreferStream bool
	// ReadAhead is how many frames a sequential reader should have in
	// flight ahead of its caller to hide the volume's latency; 0 leaves it
	// to the reader (enough to keep the CPU cores busy opening frames).
	ReadAhead int
}
