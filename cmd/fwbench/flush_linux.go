package main

import (
	"os"
	"syscall"
)

// flushData makes what was written to f durable as SQLite's WAL flush does on Linux
// (fdatasync: the data, and of the metadata only what reading it back needs).
func flushData(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if err != syscall.EINTR {
			return err
		}
	}
}
