package main

import (
	"context"
	"database/sql"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// walCommits reads a SQLite WAL file (https://sqlite.org/fileformat2.html#walformat): its page
// size and, for each complete commit since the WAL last started over, the pages it wrote. A
// frame belongs to the current generation while it carries the header's salt; a commit ends
// at a frame that records the database size.
func walCommits(wal []byte) (pageSize int, commits [][]uint32, err error) {
	if len(wal) < 32 {
		return 0, nil, fmt.Errorf("WAL of %d bytes: no header", len(wal))
	}
	if m := binary.BigEndian.Uint32(wal); m != 0x377f0682 && m != 0x377f0683 {
		return 0, nil, fmt.Errorf("not a WAL file (magic %#x)", m)
	}
	pageSize = int(binary.BigEndian.Uint32(wal[8:]))
	if pageSize == 1 {
		pageSize = 65536
	}
	salt := wal[16:24]
	var cur []uint32
	for off := 32; off+24+pageSize <= len(wal); off += 24 + pageSize {
		frame := wal[off : off+24]
		if string(frame[8:16]) != string(salt) {
			break // left over from the WAL's previous generation
		}
		cur = append(cur, binary.BigEndian.Uint32(frame))
		if binary.BigEndian.Uint32(frame[4:]) != 0 {
			commits = append(commits, cur)
			cur = nil
		}
	}
	return pageSize, commits, nil
}

// walFrames says, for a copy of a quiet Forgeway data directory (forgeway.db and its WAL),
// how many pages each group commit wrote to the WAL and to which B-trees (SQLite's dbstat).
func walFrames(ctx context.Context, dir string) (string, error) {
	wal, err := os.ReadFile(filepath.Join(dir, "forgeway.db-wal"))
	if err != nil {
		return "", err
	}
	pageSize, commits, err := walCommits(wal)
	if err != nil {
		return "", err
	}
	if len(commits) == 0 {
		return "no commits in the WAL", nil
	}
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "forgeway.db"))
	if err != nil {
		return "", err
	}
	defer db.Close()
	owner := map[uint32]string{1: "page 1"}
	rows, err := db.QueryContext(ctx, `SELECT name, pageno, pagetype FROM dbstat WHERE pageno <> 1`)
	if err != nil {
		return "", fmt.Errorf("read dbstat: %w", err)
	}
	for rows.Next() {
		var name, kind string
		var page uint32
		if err := rows.Scan(&name, &page, &kind); err != nil {
			rows.Close()
			return "", err
		}
		owner[page] = name + " " + kind
	}
	if err := rows.Close(); err != nil {
		return "", err
	}
	count, frames := map[string]int{}, 0
	for _, c := range commits {
		frames += len(c)
		for _, p := range c {
			name, ok := owner[p]
			if !ok {
				name = "other"
			}
			count[name]++
		}
	}
	names := make([]string, 0, len(count))
	for n := range count {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		return count[names[i]] > count[names[j]] || count[names[i]] == count[names[j]] && names[i] < names[j]
	})
	var b strings.Builder
	n := float64(len(commits))
	fmt.Fprintf(&b, "%.1f pages of %d bytes per commit over the WAL's last %d commits:", float64(frames)/n, pageSize, len(commits))
	for _, name := range names {
		fmt.Fprintf(&b, " %s %.2f;", name, float64(count[name])/n)
	}
	return strings.TrimSuffix(b.String(), ";"), nil
}
