package fusefs

import (
	"io"
	"os"
)

// spoolInMemory is how much of a file being written is kept in RAM; past
// it, the data moves to an unlinked temp file in the spool directory.
const spoolInMemory = 64 << 10

// spool holds the data of a file being written. It is not safe for
// concurrent use: pendingNode's lock guards it.
type spool struct {
	dir        string
	spaceCheck func() error // asked before each write to the file; nil: none
	mem        []byte       // the data while small
	file       *os.File     // the data once large; unlinked, gone with Close
	size       int64
}

func (s *spool) WriteAt(p []byte, off int64) (int, error) {
	end := off + int64(len(p))
	if s.spaceCheck != nil && (s.file != nil || end > spoolInMemory) {
		if err := s.spaceCheck(); err != nil {
			return 0, err
		}
	}
	if s.file == nil && end > spoolInMemory {
		if err := s.moveToDisk(); err != nil {
			return 0, err
		}
	}
	if s.file != nil {
		n, err := s.file.WriteAt(p, off)
		s.size = max(s.size, off+int64(n))
		return n, err
	}
	if end > int64(len(s.mem)) {
		s.mem = append(s.mem, make([]byte, end-int64(len(s.mem)))...)
	}
	copy(s.mem[off:], p)
	s.size = max(s.size, end)
	return len(p), nil
}

func (s *spool) moveToDisk() error {
	f, err := os.CreateTemp(s.dir, "spool-*")
	if err != nil {
		return err
	}
	os.Remove(f.Name())
	if _, err := f.WriteAt(s.mem[:s.size], 0); err != nil {
		f.Close()
		return err
	}
	s.file, s.mem = f, nil
	return nil
}

func (s *spool) ReadAt(p []byte, off int64) (int, error) {
	if off >= s.size {
		return 0, io.EOF
	}
	if s.file != nil {
		n, err := s.file.ReadAt(p[:min(int64(len(p)), s.size-off)], off)
		if err == nil && n < len(p) {
			err = io.EOF
		}
		return n, err
	}
	n := copy(p, s.mem[off:s.size])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (s *spool) Truncate(size int64) error {
	if s.file != nil {
		if err := s.file.Truncate(size); err != nil {
			return err
		}
	} else if size > spoolInMemory {
		if err := s.moveToDisk(); err != nil {
			return err
		}
		return s.Truncate(size)
	} else if size > int64(len(s.mem)) {
		s.mem = append(s.mem, make([]byte, size-int64(len(s.mem)))...)
	} else {
		clear(s.mem[size:])
		s.mem = s.mem[:size]
	}
	s.size = size
	return nil
}

// Reader reads the whole spooled content from the start.
func (s *spool) Reader() io.Reader { return io.NewSectionReader(s, 0, s.size) }

func (s *spool) Close() error {
	s.mem = nil
	if s.file != nil {
		return s.file.Close()
	}
	return nil
}
