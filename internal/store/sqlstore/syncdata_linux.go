package sqlstore

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"syscall"
	"time"
)

// Limits of a flush that keeps its P (dataSync.file).
const (
	// heldFlushMax is the longest a flush may take and still be made holding the P: a slower
	// one switches the store to releasing it. A WAL flush takes 0.2-4 ms on the disks measured.
	heldFlushMax = 20 * time.Millisecond
	// releasePause is how long flushes release their P after a slow one.
	releasePause = time.Minute
)

// dataSync flushes files' data for the store: the group committer's WAL after every commit.
//
// The system call is made holding the goroutine's P (the scheduler's processor), as
// syscall.RawSyscall does, rather than handing it over as a blocking call normally does. A
// flush outlasts the runtime monitor's 20 µs tick, so under load the monitor takes the P from
// every flush and starts another thread on it; the flushing goroutine, back from the kernel
// with no P, then waits in the global run queue behind the request handlers, and with it the
// answers of the batch it flushed and the next batch's commit. Keeping the P, the goroutine
// answers the moment the disk is done (fwbench ab: 3-5% more deliveries a second, 6-8% less
// of the server's CPU per delivery). The price is that the P does nothing else for the
// flush's length (a fraction of a millisecond), and that a stop-the-world pause of the
// garbage collector waits for the flush to return. Both are bounded: a flush is only held
// when there is another P (GOMAXPROCS > 1), and after one slower than heldFlushMax, flushes
// release their P for releasePause, so that a stalling disk cannot stall the whole process.
type dataSync struct {
	// releaseUntil is the Unix time in nanoseconds until which flushes release their P.
	releaseUntil atomic.Int64
	// heldMax is heldFlushMax unless a test sets it.
	heldMax time.Duration
}

// holds reports whether a flush starting at now keeps its P.
func (s *dataSync) holds(now time.Time) bool {
	return runtime.GOMAXPROCS(0) > 1 && now.UnixNano() >= s.releaseUntil.Load()
}

// held records how long a flush that kept its P took: one slower than the limit makes the
// flushes of the next releasePause release theirs.
func (s *dataSync) held(start, end time.Time) {
	limit := s.heldMax
	if limit == 0 {
		limit = heldFlushMax
	}
	if end.Sub(start) > limit {
		s.releaseUntil.Store(end.Add(releasePause).UnixNano())
	}
}

// file flushes the data of the file at path, and of its metadata only what reading the data
// back needs (its size), as SQLite itself does on Linux: fsync would also commit the file's
// times to the file system's journal, which the WAL, rewritten in place between checkpoints,
// changes at every commit (measured with fwbench ab: 2-3% more deliveries a second than
// fsync). The file is opened with a bare open(2), not os.Open, which also asks the runtime's
// poller to take the descriptor (fcntl calls and a failed epoll_ctl for a regular file): the
// group committer calls this after every commit.
func (s *dataSync) file(path string) error {
	fd, err := openRetry(path)
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	start := time.Now()
	hold := s.holds(start)
	for {
		if hold {
			_, _, errno := syscall.RawSyscall(syscall.SYS_FDATASYNC, uintptr(fd), 0, 0)
			err = nil
			if errno != 0 {
				err = errno
			}
		} else {
			err = syscall.Fdatasync(fd)
		}
		if err != syscall.EINTR {
			break
		}
	}
	if hold {
		s.held(start, time.Now())
	}
	cerr := syscall.Close(fd)
	if err != nil {
		return fmt.Errorf("fdatasync %s: %w", path, err)
	}
	if cerr != nil {
		return fmt.Errorf("close %s: %w", path, cerr)
	}
	return nil
}

// openRetry opens path read-only for dataSync.file, again when a signal interrupts the call.
func openRetry(path string) (int, error) {
	for {
		fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if err != syscall.EINTR {
			return fd, err
		}
	}
}
