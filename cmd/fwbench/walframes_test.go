package main

import (
	"encoding/binary"
	"reflect"
	"testing"
)

// wal builds a WAL of 512-byte pages: frames of (page, commit size) under salt, then frames
// under stale, as left from an earlier generation.
func wal(salt, stale uint32, frames, old [][2]uint32) []byte {
	const page = 512
	b := make([]byte, 32)
	binary.BigEndian.PutUint32(b, 0x377f0682)
	binary.BigEndian.PutUint32(b[8:], page)
	binary.BigEndian.PutUint32(b[16:], salt)
	add := func(fs [][2]uint32, s uint32) {
		for _, f := range fs {
			h := make([]byte, 24+page)
			binary.BigEndian.PutUint32(h, f[0])
			binary.BigEndian.PutUint32(h[4:], f[1])
			binary.BigEndian.PutUint32(h[8:], s)
			b = append(b, h...)
		}
	}
	add(frames, salt)
	add(old, stale)
	return b
}

func TestWALCommits(t *testing.T) {
	b := wal(7, 6,
		[][2]uint32{{5, 0}, {9, 0}, {1, 12}, {5, 12}, {3, 0}}, // two commits, then one unfinished
		[][2]uint32{{2, 10}})
	size, commits, err := walCommits(b)
	if err != nil {
		t.Fatal(err)
	}
	if want := [][]uint32{{5, 9, 1}, {5}}; size != 512 || !reflect.DeepEqual(commits, want) {
		t.Fatalf("got page size %d, commits %v; want 512, %v", size, commits, want)
	}
	// A torn last frame is not read.
	if _, commits, _ := walCommits(b[:len(b)-24-512-10]); len(commits) != 2 {
		t.Fatalf("torn WAL: %d commits, want 2", len(commits))
	}
	if _, _, err := walCommits([]byte("not a WAL file, but long enough for a header")); err == nil {
		t.Fatal("a file that is not a WAL was read")
	}
}
