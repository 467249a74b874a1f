package sqlstore

import (
	"fmt"
	"syscall"
)

// syncFileData flushes the data of the file at path, and of its metadata only what reading
// the data back needs (its size), as SQLite itself does on Linux: fsync would also commit the
// file's times to the file system's journal, which the WAL, rewritten in place between
// checkpoints, changes at every commit (measured with fwbench ab: 2-3% more deliveries a
// second than fsync). The file is opened with a bare open(2), not os.Open, which also asks
// the runtime's poller to take the descriptor (fcntl calls and a failed epoll_ctl for a
// regular file): the group committer calls this after every commit.
//
// With hold, the flush keeps the goroutine's P (Go's scheduler slot) while the disk works:
// a plain system call lets the runtime's monitor hand the P to another thread after 20 µs,
// and the flushing goroutine, back from the kernel with no P, queues behind the request
// handlers before it can answer its batch (holdFlush says when that is worth it).
func syncFileData(path string, hold bool) error {
	fd, err := openRetry(path)
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	for {
		if hold {
			err = nil
			if _, _, e := syscall.RawSyscall(syscall.SYS_FDATASYNC, uintptr(fd), 0, 0); e != 0 {
				err = e
			}
		} else {
			err = syscall.Fdatasync(fd)
		}
		if err != syscall.EINTR {
			break
		}
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

// openRetry opens path read-only for syncFileData, again when a signal interrupts the call.
func openRetry(path string) (int, error) {
	for {
		fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if err != syscall.EINTR {
			return fd, err
		}
	}
}
