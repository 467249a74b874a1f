package sqlstore_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/forgeway/forgeway/internal/apicheck"
	"github.com/forgeway/forgeway/internal/store"
	"github.com/forgeway/forgeway/internal/store/storetest"
)

// BenchmarkInsertDelivery measures the group commit alone: 64 concurrent callers each
// inserting a 7 KB delivery (a random GUID as the host's delivery id, as GitHub sends) with
// its processing job, every one durable before it returns. The writer is single-threaded on
// SQLite, so ns/op is its cost per delivery.
//
//	go test ./internal/store/sqlstore -run '^$' -bench InsertDelivery -benchtime 20000x
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
	for _, name := range []string{"sqlite", "postgres"} {
		b.Run(name, func(b *testing.B) {
			st := engines[name](b)
			ctx := context.Background()
			in := &store.Integration{Kind: "github", Name: "bench", BaseURL: "https://github.com", Status: "active"}
			if err := st.CreateIntegration(ctx, in); err != nil {
				b.Fatal(err)
			}
			b.SetParallelism(32)
			b.SetBytes(int64(len(body)))
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					d := &store.Delivery{IntegrationID: in.ID, Kind: "github", HostID: guid(), Event: "push",
						Headers: map[string][]string{"X-Github-Event": {"push"}, "Content-Type": {"application/json"}},
						Body:    body}
					if _, err := st.InsertDelivery(ctx, d, store.NewJob{Kind: "process_delivery", MaxAttempts: 12}); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

func guid() string {
	var u [16]byte
	_, _ = rand.Read(u[:])
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:])
}
