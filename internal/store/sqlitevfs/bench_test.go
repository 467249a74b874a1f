package sqlitevfs_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/forgeway/forgeway/internal/store/sqlitevfs"
)

// BenchmarkCommit commits transactions of 15 rows of 2.5 KB each (a group commit of
// deliveries: ~15 WAL frames of 8 KiB pages), through SQLite's own VFS and through this one,
// with synchronous=NORMAL and no flush, as the store's writer commits before syncWAL. ns/op
// is one commit; the WAL is restarted every 64 commits by a checkpoint, which is timed too.
//
//	go test ./internal/store/sqlitevfs -run '^$' -bench Commit -benchtime 4000x -count 5
func BenchmarkCommit(b *testing.B) {
	payload := strings.Repeat("x", 2500)
	for _, name := range []string{"sqlite-vfs", "gathered"} {
		b.Run(name, func(b *testing.B) {
			var v *sqlitevfs.VFS
			if name == "gathered" {
				var err error
				if v, err = sqlitevfs.Register(); err != nil {
					b.Fatal(err)
				}
				defer v.Close()
			}
			db := open(b, v, newDB(b))
			ctx := context.Background()
			insert, err := db.Prepare(`INSERT INTO t (id, grp, payload) VALUES (?, ?, ?)`)
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := range b.N {
				tx, err := db.BeginTx(ctx, nil)
				if err != nil {
					b.Fatal(err)
				}
				for j := range 15 {
					if _, err := tx.Stmt(insert).Exec(i*15+j, i, payload); err != nil {
						b.Fatal(err)
					}
				}
				if err := tx.Commit(); err != nil {
					b.Fatal(err)
				}
				if i%64 == 63 {
					if _, err := db.Exec("PRAGMA wal_checkpoint(RESTART)"); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.StopTimer()
			if err := errors.Join(insert.Close(), db.Close()); err != nil {
				b.Fatal(err)
			}
		})
	}
}
