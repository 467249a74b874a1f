package sqlstore

import (
	"os"
	"syscall"
)

// syncData flushes f's data, and of its metadata only what reading the data back needs (its
// size), as SQLite itself does on Linux: fsync would also commit the file's times to the
// file system's journal, which the WAL, rewritten in place between checkpoints, changes at
// every commit. Measured with fwbench ab: 2-3% more deliveries a second than fsync.
func syncData(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if err != syscall.EINTR {
			return err
		}
	}
}
