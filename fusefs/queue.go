package fusefs

import (
	"io"
	"sync"
)

// streamQueueBytes bounds how much written data a stream holds before the
// writer waits for the store: enough that the kernel's next writes arrive
// while the previous ones are sealed, little enough not to matter per file.
const streamQueueBytes = 4 << 20

// streamQueue carries a streamed file's writes to WriteBlob. Unlike
// io.Pipe, a write copies its data and returns at once while there is
// room, so that the FUSE write and the sealing of earlier data overlap
// instead of taking turns. Safe for one writer and one reader.
type streamQueue struct {
	mu       sync.Mutex
	cond     sync.Cond
	chunks   [][]byte // written, not yet read
	queued   int      // bytes in chunks
	limit    int
	writeErr error // set by closeWrite: the reader's error once chunks are drained
	readErr  error // set by closeRead: every later write fails with it
}

func newStreamQueue(limit int) *streamQueue {
	q := &streamQueue{limit: limit}
	q.cond.L = &q.mu
	return q
}

// Write queues a copy of data, waiting while the queue is full.
func (q *streamQueue) Write(data []byte) (int, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.queued > 0 && q.queued+len(data) > q.limit && q.readErr == nil {
		q.cond.Wait()
	}
	switch {
	case q.readErr != nil:
		return 0, q.readErr
	case q.writeErr != nil:
		return 0, io.ErrClosedPipe
	case len(data) == 0:
		return 0, nil
	}
	q.chunks = append(q.chunks, append([]byte(nil), data...))
	q.queued += len(data)
	q.cond.Broadcast()
	return len(data), nil
}

// Read takes queued data, waiting while there is none.
func (q *streamQueue) Read(dest []byte) (int, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.chunks) == 0 && q.writeErr == nil && q.readErr == nil {
		q.cond.Wait()
	}
	switch {
	case q.readErr != nil:
		return 0, q.readErr
	case len(q.chunks) == 0:
		return 0, q.writeErr
	}
	n := copy(dest, q.chunks[0])
	if n == len(q.chunks[0]) {
		q.chunks[0] = nil
		q.chunks = q.chunks[1:]
	} else {
		q.chunks[0] = q.chunks[0][n:]
	}
	q.queued -= n
	q.cond.Broadcast()
	return n, nil
}

// closeWrite ends the data. With io.EOF (a complete stream) the reader
// gets io.EOF once it has read what was queued; with another error it gets
// that error at once, and what was queued is dropped. A later call changes
// nothing.
func (q *streamQueue) closeWrite(err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.writeErr == nil {
		q.writeErr = err
		if err != io.EOF {
			q.chunks, q.queued = nil, 0
		}
	}
	q.cond.Broadcast()
}

// closeRead stops the reader's side: queued data is dropped and writes
// fail with err. A later call changes nothing.
func (q *streamQueue) closeRead(err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.readErr == nil {
		q.readErr = err
	}
	q.chunks, q.queued = nil, 0
	q.cond.Broadcast()
}
