//go:build !linux

package main

import "os"

// flushData makes what was written to f durable (fsync: other systems' fdatasync is missing
// or no cheaper).
func flushData(f *os.File) error { return f.Sync() }
