package forge_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/forgeway/forgeway/internal/forge"
)

func TestFetchPages(t *testing.T) {
	ctx := context.Background()

	t.Run("in order, bounded", func(t *testing.T) {
		var mu sync.Mutex
		inFlight, most := 0, 0
		fetch := func(ctx context.Context, page int) (int, error) {
			mu.Lock()
			inFlight++
			most = max(most, inFlight)
			mu.Unlock()
			// Later pages answer sooner: the order handed on must still be the pages'.
			time.Sleep(time.Duration(20-page) * time.Millisecond)
			mu.Lock()
			inFlight--
			mu.Unlock()
			return page, nil
		}
		var got []int
		if err := forge.FetchPages(ctx, "list", 2, 12, 3, fetch, func(p int) error { got = append(got, p); return nil }); err != nil {
			t.Fatal(err)
		}
		for i, p := range got {
			if p != i+2 {
				t.Fatalf("pages handed on as %v", got)
			}
		}
		if len(got) != 11 || most > 3 || most < 2 {
			t.Fatalf("%d pages, at most %d in flight (bound 3)", len(got), most)
		}
	})

	t.Run("a page's error stops the rest", func(t *testing.T) {
		boom := errors.New("page 4 failed")
		var mu sync.Mutex
		fetched := map[int]bool{}
		var got []int
		err := forge.FetchPages(ctx, "list", 2, 50, 2, func(ctx context.Context, page int) (int, error) {
			mu.Lock()
			fetched[page] = true
			mu.Unlock()
			if page == 4 {
				return 0, boom
			}
			return page, nil
		}, func(p int) error { got = append(got, p); return nil })
		if !errors.Is(err, boom) || len(got) != 2 {
			t.Fatalf("err %v, pages handed on %v", err, got)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(fetched) > 6 {
			t.Fatalf("%d pages fetched after page 4 failed, with 2 at a time", len(fetched))
		}
	})

	t.Run("fn's error stops the rest", func(t *testing.T) {
		stop := errors.New("enough")
		n := 0
		err := forge.FetchPages(ctx, "list", 1, 30, 4, func(ctx context.Context, page int) (int, error) { return page, nil },
			func(int) error {
				n++
				if n == 3 {
					return stop
				}
				return nil
			})
		if !errors.Is(err, stop) || n != 3 {
			t.Fatalf("err %v after %d pages", err, n)
		}
	})

	t.Run("cancelled", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		err := forge.FetchPages(cctx, "list repositories", 2, 5, 2, func(ctx context.Context, page int) (int, error) {
			cancel()
			<-ctx.Done()
			return 0, ctx.Err()
		}, func(int) error { return nil })
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v", err)
		}
	})

	t.Run("keys streamed, their error after their results", func(t *testing.T) {
		listFailed := errors.New("the third page of projects failed")
		keys := func(ctx context.Context, yield func(string) bool) error {
			for _, k := range []string{"a", "b", "c"} {
				if !yield(k) {
					return nil
				}
			}
			return listFailed
		}
		var got []string
		err := forge.InOrder(ctx, "list", 2, keys, func(ctx context.Context, k string) (string, error) {
			time.Sleep(time.Duration('d'-k[0]) * time.Millisecond) // later keys answer sooner
			return k + "!", nil
		}, func(v string) error { got = append(got, v); return nil })
		if !errors.Is(err, listFailed) || len(got) != 3 || got[0] != "a!" || got[2] != "c!" {
			t.Fatalf("err %v, results %v", err, got)
		}
	})

	t.Run("no pages", func(t *testing.T) {
		err := forge.FetchPages(ctx, "list", 2, 1, 4, func(context.Context, int) (int, error) {
			t.Fatal("fetched a page past the last")
			return 0, nil
		}, func(int) error { return nil })
		if err != nil {
			t.Fatal(err)
		}
	})
}
