package sqlstore_test

import (
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/forgeway/forgeway/internal/apicheck"
	"github.com/forgeway/forgeway/internal/store"
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
	shared, err := apicheck.SharedDir()
	if err != nil {
		b.Fatal(err)
	}
	body, err := os.ReadFile(filepath.Join(shared, "corpus", "github", "push.json"))
	if err != nil {
		b.Fatal(err)
	}
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
