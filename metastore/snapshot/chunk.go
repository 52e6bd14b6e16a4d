package snapshot

import (
	"crypto/sha256"
	"encoding/binary"
	"math"
)

// How a listing is cut into blobs. A node is cut after an item (an entry,
// or a child in an index) when the node holds at least minBody bytes of
// items and the item's name hashes below a threshold proportional to the
// item's size, or before an item that would take it past maxBody.
//
// The cut depends on the item's own name and size, not on its position, so
// inserting or removing an entry moves at most the cuts next to it: the
// nodes after it keep their bytes and refs (a prolly tree). Making the
// chance proportional to size makes the cut points about targetBody bytes
// apart whatever the mix of long and short entries.
//
// Sizes, and why: a leaf averages about 64 KiB (some 480 entries of 135
// bytes), so that it fits one 128 KiB frame of the blob format and an edit
// rewrites about 64 KiB plus an index blob or two, while a million-entry
// directory is some 2 100 blobs under two index levels, and a lookup of
// one name loads three blobs. Below minBody a node is never cut, which
// bounds the number of tiny blobs; the maxBody cap bounds a writer's
// memory and a reader's blob (it is reached in under 1% of nodes, by
// chance: e^-5).
const (
	minBody    = 16 << 10
	targetBody = 64 << 10
	maxBody    = 256 << 10
	// cutSpan is the mean distance past minBody to the next cut.
	cutSpan = targetBody - minBody
	// cutScale turns an item size into a hash threshold: an item of s
	// bytes ends a node with chance s / cutSpan.
	cutScale = math.MaxUint64 / cutSpan
)

// isCut reports whether a node of the given level that holds at least
// minBody bytes ends after an item of itemLen bytes named name. The level
// is hashed in so that the cuts of an index level do not follow those of
// the level below.
func isCut(level int, name string, itemLen int) bool {
	if itemLen >= cutSpan {
		return true
	}
	var buf [1 + MaxName]byte
	buf[0] = byte(level)
	n := copy(buf[1:], name)
	sum := sha256.Sum256(buf[:1+n])
	return binary.BigEndian.Uint64(sum[:8]) < uint64(itemLen)*cutScale
}
