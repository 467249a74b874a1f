package sqlstore_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/binary"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/forgeway/forgeway/internal/apicheck"
	"github.com/forgeway/forgeway/internal/store"
	"github.com/forgeway/forgeway/internal/store/sqlstore"
	"github.com/forgeway/forgeway/internal/store/storetest"
)

// BenchmarkInsertDelivery measures the group commit alone: 64 concurrent callers each
// inserting a 7 KB delivery with its processing job, every one durable before it returns. The
// writer is single-threaded on SQLite, so ns/op is its cost per delivery. The host's delivery
// ids are either time-based (GitHub's version-1 UUIDs: the deduplication index grows at its
// right edge) or random (GitLab's, Gitea's and Bitbucket's version-4 UUIDs: each one lands
// on a page of its own).
//
//	go test ./internal/store/sqlstore -run '^$' -bench InsertDelivery -benchtime 40000x
func BenchmarkInsertDelivery(b *testing.B) {
	engines := map[string]func(testing.TB) store.Store{
		"sqlite":   func(t testing.TB) store.Store { return storetest.SQLite(t) },
		"postgres": func(t testing.TB) store.Store { return storetest.Postgres(t) },
	}
	body := pushPayload(b)
	var node [6]byte
	_, _ = rand.Read(node[:])
	ids := map[string]func() string{
		"v1-ids": func() string {
			// A random clock sequence: callers in the same 100 ns tick get different ids.
			var seq [2]byte
			_, _ = rand.Read(seq[:])
			return uuidV1(time.Now(), uint16(seq[0])<<8|uint16(seq[1]), node)
		},
		"random-ids": randomUUID,
	}
	for _, name := range []string{"sqlite", "postgres"} {
		for _, idKind := range []string{"v1-ids", "random-ids"} {
			b.Run(name+"/"+idKind, func(b *testing.B) {
				st := engines[name](b)
				ctx := context.Background()
				in := &store.Integration{Kind: "github", Name: "bench", BaseURL: "https://github.com", Status: "active"}
				if err := st.CreateIntegration(ctx, in); err != nil {
					b.Fatal(err)
				}
				newID := ids[idKind]
				b.SetParallelism(32)
				b.SetBytes(int64(len(body)))
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						d := &store.Delivery{IntegrationID: in.ID, Kind: "github", HostID: newID(), Event: "push",
							Headers: map[string][]string{"X-Github-Event": {"push"}, "Content-Type": {"application/json"}},
							Body:    body}
						if _, err := st.InsertDelivery(ctx, d, store.NewJob{Kind: store.JobProcessDelivery, MaxAttempts: 12}); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
		}
	}
}

// BenchmarkWALFrames counts what a group commit writes to SQLite's WAL, by the B-tree each
// page belongs to: b.N deliveries from 16 concurrent callers (about ten per commit, near
// fwbench's fifteen) after 3,200 that give the trees their depth, with checkpoints held
// off so that every frame stays in the WAL to be counted. It reports frames per commit in
// all, the table's leaf pages (the rows themselves) and everything else (indexes, interior
// pages, the jobs table, page 1): the fixed cost of a commit, whatever its size.
//
//	go test ./internal/store/sqlstore -run '^$' -bench WALFrames -benchtime 6400x -v
func BenchmarkWALFrames(b *testing.B) {
	body := pushPayload(b)
	path := filepath.Join(b.TempDir(), "forgeway.db")
	ctx := context.Background()
	st, err := sqlstore.Open(ctx, path, sqlstore.Options{CheckpointFrames: 1 << 30, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	in := &store.Integration{Kind: "github", Name: "bench", BaseURL: "https://github.com", Status: "active"}
	if err := st.CreateIntegration(ctx, in); err != nil {
		b.Fatal(err)
	}
	var node [6]byte
	_, _ = rand.Read(node[:])
	insert := func(n int) {
		const callers = 16
		var wg sync.WaitGroup
		for c := range callers {
			wg.Go(func() {
				for range n/callers + min(1, max(0, n%callers-c)) {
					var seq [2]byte
					_, _ = rand.Read(seq[:])
					d := &store.Delivery{IntegrationID: in.ID, Kind: "github", HostID: uuidV1(time.Now(), uint16(seq[0])<<8|uint16(seq[1]), node), Event: "push",
						Headers: map[string][]string{"X-Github-Event": {"push"}, "Content-Type": {"application/json"}},
						Body:    body}
					if _, err := st.InsertDelivery(ctx, d, store.NewJob{Kind: store.JobProcessDelivery, MaxAttempts: 12}); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
	}
	insert(3200)
	before, err := readWAL(path + "-wal")
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	insert(b.N)
	b.StopTimer()
	after, err := readWAL(path + "-wal")
	if err != nil {
		b.Fatal(err)
	}
	owners, err := pageOwners(ctx, path)
	if err != nil {
		b.Fatal(err)
	}
	var commits, frames, rows int
	for _, f := range after[len(before):] {
		frames++
		if f.commit {
			commits++
		}
		if owners[f.page] == "deliveries/leaf" {
			rows++
		}
	}
	if commits == 0 {
		b.Fatal("no commit reached the WAL")
	}
	per := func(n int) float64 { return float64(n) / float64(commits) }
	b.ReportMetric(per(b.N), "deliveries/commit")
	b.ReportMetric(per(frames), "frames/commit")
	b.ReportMetric(per(rows), "row-frames/commit")
	b.ReportMetric(per(frames-rows), "other-frames/commit")
}

// walFrame is a WAL frame's header: its page, and whether the frame ends a commit.
type walFrame struct {
	page   uint32
	commit bool
}

// readWAL reads a WAL file's frame headers (sqlite.org/fileformat2.html#walformat).
func readWAL(path string) ([]walFrame, error) {
	b, err := os.ReadFile(path)
	if err != nil || len(b) < 32 {
		return nil, err
	}
	var frames []walFrame
	size := 24 + int(binary.BigEndian.Uint32(b[8:12]))
	for off := 32; off+size <= len(b); off += size {
		frames = append(frames, walFrame{binary.BigEndian.Uint32(b[off:]), binary.BigEndian.Uint32(b[off+4:]) != 0})
	}
	return frames, nil
}

// pageOwners maps each page of the database at path to its B-tree and kind ("deliveries/leaf"),
// from SQLite's dbstat table, which reads the WAL too.
func pageOwners(ctx context.Context, path string) (map[uint32]string, error) {
	c, err := sql.Open("sqlite", path+"?_pragma=query_only(ON)")
	if err != nil {
		return nil, err
	}
	defer c.Close()
	rows, err := c.QueryContext(ctx, `SELECT name, pageno, pagetype FROM dbstat`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[uint32]string{}
	for rows.Next() {
		var name, kind string
		var page uint32
		if err := rows.Scan(&name, &page, &kind); err != nil {
			return nil, err
		}
		out[page] = name + "/" + kind
	}
	return out, rows.Err()
}

// pushPayload is the corpus's GitHub push, the 7 KB body the benchmarks store.
func pushPayload(b *testing.B) []byte {
	b.Helper()
	shared, err := apicheck.SharedDir()
	if err != nil {
		b.Fatal(err)
	}
	body, err := os.ReadFile(filepath.Join(shared, "corpus", "github", "push.json"))
	if err != nil {
		b.Fatal(err)
	}
	return body
}
