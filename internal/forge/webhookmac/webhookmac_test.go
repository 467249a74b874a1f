package webhookmac

import (
	"bytes"
	"fmt"
	"sync"
	"testing"
)

func TestSumMatchesHMAC(t *testing.T) {
	var k Keys
	// The last is past x8MaxMessage, so that it is hashed alone even where messages are
	// batched.
	msgs := [][]byte{nil, []byte("a"), bytes.Repeat([]byte("x"), 7000), bytes.Repeat([]byte("y"), x8MaxMessage+1)}
	for _, secret := range []string{"s1", "another secret", string(bytes.Repeat([]byte("k"), 100))} {
		for _, msg := range msgs {
			want := Sum(secret, msg)
			// Twice: the second reuses the pooled, reset state.
			for i := range 2 {
				if got := k.Sum(nil, secret, msg); !bytes.Equal(got, want) {
					t.Fatalf("secret %q, %d-byte message, use %d: got %x, want %x", secret, len(msg), i, got, want)
				}
			}
		}
	}
}

// GitHub's published known answer (docs: "Validating webhook deliveries").
func TestSumKnownAnswer(t *testing.T) {
	var k Keys
	got := fmt.Sprintf("%x", k.Sum(nil, "It's a Secret to Everybody", []byte("Hello, World!")))
	if want := "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}

func TestSumAppends(t *testing.T) {
	var k Keys
	got := k.Sum([]byte("prefix"), "s", []byte("m"))
	if !bytes.HasPrefix(got, []byte("prefix")) || !bytes.Equal(got[len("prefix"):], Sum("s", []byte("m"))) {
		t.Fatalf("got %x", got)
	}
}

func TestKeysBounded(t *testing.T) {
	var k Keys
	for i := range 3 * maxKeys {
		secret := fmt.Sprint("secret-", i)
		if got := k.Sum(nil, secret, []byte("m")); !bytes.Equal(got, Sum(secret, []byte("m"))) {
			t.Fatalf("secret %d: wrong MAC", i)
		}
	}
	n := 0
	k.keys.Range(func(any, any) bool { n++; return true })
	if n > maxKeys {
		t.Fatalf("%d secrets kept, want at most %d", n, maxKeys)
	}
}

func TestSumConcurrent(t *testing.T) {
	var k Keys
	secrets := []string{"a", "b", "c"}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				secret := secrets[(g+i)%len(secrets)]
				msg := []byte(fmt.Sprint(g, "/", i))
				if got := k.Sum(nil, secret, msg); !bytes.Equal(got, Sum(secret, msg)) {
					t.Errorf("goroutine %d, message %d: wrong MAC", g, i)
					return
				}
			}
		})
	}
	wg.Wait()
}

// go test ./internal/forge/webhookmac -bench . : a 7 KB body, as P1's GitHub push.
func BenchmarkSum(b *testing.B) {
	msg := bytes.Repeat([]byte("x"), 7324)
	b.Run("hmac.New", func(b *testing.B) {
		b.SetBytes(int64(len(msg)))
		b.ReportAllocs()
		for b.Loop() {
			Sum("It's a Secret to Everybody", msg)
		}
	})
	b.Run("Keys", func(b *testing.B) {
		var k Keys
		var out [32]byte
		b.SetBytes(int64(len(msg)))
		b.ReportAllocs()
		for b.Loop() {
			k.Sum(out[:0], "It's a Secret to Everybody", msg)
		}
	})
	// As deliveries arrive: many at once, so that where Keys batches them (x8_amd64.go)
	// batches form.
	b.Run("Keys, 32 goroutines", func(b *testing.B) {
		var k Keys
		b.SetBytes(int64(len(msg)))
		b.SetParallelism(16)
		b.RunParallel(func(pb *testing.PB) {
			var out [32]byte
			for pb.Next() {
				k.Sum(out[:0], "It's a Secret to Everybody", msg)
			}
		})
	})
}
