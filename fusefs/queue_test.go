package fusefs

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"time"
)

func TestStreamQueueCarriesEverythingInOrder(t *testing.T) {
	want := make([]byte, 3<<20+17)
	rng := rand.NewChaCha8([32]byte{1})
	rng.Read(want)
	q := newStreamQueue(64 << 10)
	go func() {
		rest := want
		for len(rest) > 0 {
			n := min(len(rest), 1+int(rest[0])*300) // uneven writes, some past the limit's share
			if _, err := q.Write(rest[:n]); err != nil {
				t.Error(err)
				return
			}
			rest = rest[n:]
		}
		q.closeWrite(io.EOF)
	}()
	got, err := io.ReadAll(q)
	if err != nil {
		t.Fatalf("reading the queue: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("read %d bytes that differ from the %d written", len(got), len(want))
	}
}

func TestStreamQueueWriteCopiesItsData(t *testing.T) {
	q := newStreamQueue(1 << 20)
	data := []byte("first")
	q.Write(data)
	copy(data, "XXXXX") // the FUSE server reuses its buffers once Write returns
	q.closeWrite(io.EOF)
	if got, _ := io.ReadAll(q); string(got) != "first" {
		t.Fatalf("read %q, want %q", got, "first")
	}
}

func TestStreamQueueWriterWaitsWhenFull(t *testing.T) {
	q := newStreamQueue(10)
	if _, err := q.Write(make([]byte, 8)); err != nil {
		t.Fatal(err)
	}
	wrote := make(chan error)
	go func() {
		_, err := q.Write(make([]byte, 8))
		wrote <- err
	}()
	select {
	case err := <-wrote:
		t.Fatalf("a write past the limit returned (%v) before anything was read", err)
	case <-time.After(50 * time.Millisecond):
	}
	buf := make([]byte, 8)
	if n, err := q.Read(buf); n != 8 || err != nil {
		t.Fatalf("Read = %d, %v", n, err)
	}
	if err := <-wrote; err != nil {
		t.Fatalf("the waiting write failed once there was room: %v", err)
	}
}

func TestStreamQueueLargeWriteIntoEmptyQueue(t *testing.T) {
	q := newStreamQueue(10)
	if n, err := q.Write(make([]byte, 100)); n != 100 || err != nil {
		t.Fatalf("a write larger than the limit into an empty queue: %d, %v", n, err)
	}
}

func TestStreamQueueAbandonedWriteDropsData(t *testing.T) {
	q := newStreamQueue(1 << 20)
	q.Write([]byte("partial"))
	cause := errors.New("abandoned")
	q.closeWrite(cause)
	n, err := q.Read(make([]byte, 16))
	if n != 0 || err != cause {
		t.Fatalf("Read after closeWrite(err) = %d, %v; want 0, %v", n, err, cause)
	}
	if _, err := q.Write([]byte("more")); err == nil {
		t.Fatal("Write after closeWrite succeeded")
	}
}

func TestStreamQueueClosedReaderFailsWriter(t *testing.T) {
	q := newStreamQueue(4)
	q.Write(make([]byte, 4))
	wrote := make(chan error)
	go func() {
		_, err := q.Write(make([]byte, 4)) // waits: the queue is full
		wrote <- err
	}()
	time.Sleep(10 * time.Millisecond)
	cause := errors.New("store stopped")
	q.closeRead(cause)
	if err := <-wrote; err != cause {
		t.Fatalf("a waiting write after closeRead returned %v, want %v", err, cause)
	}
	if _, err := q.Write([]byte("x")); err != cause {
		t.Fatalf("Write after closeRead = %v, want %v", err, cause)
	}
}
