//go:build amd64 && !purego

package webhookmac

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// The committed kernel is what gen_x8.go writes, so that the generator stays the source.
func TestX8Generated(t *testing.T) {
	out := filepath.Join(t.TempDir(), "x8.s")
	if b, err := exec.CommandContext(t.Context(), "go", "run", "gen_x8.go", out).CombinedOutput(); err != nil {
		t.Fatalf("go run gen_x8.go: %v\n%s", err, b)
	}
	want, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("x8_amd64.s")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("x8_amd64.s differs from what gen_x8.go writes: run go generate in internal/forge/webhookmac")
	}
}

func needX8(t testing.TB) *x8 {
	t.Helper()
	x := new(x8)
	if !x.enabled() {
		t.Skip("this CPU has the SHA extensions or lacks AVX-512: the eight-lane path is not used here")
	}
	return x
}

func stdMAC(secret string, msg []byte) [32]byte {
	h := hmac.New(sha256.New, []byte(secret))
	h.Write(msg)
	return [32]byte(h.Sum(nil))
}

// Every length around the padding's edges (55, 56, 63, 64 bytes past a block) and a range
// of larger ones, in batches that mix lengths and secrets, so that lanes change phase at
// different steps.
func TestX8MatchesHMAC(t *testing.T) {
	x := needX8(t)
	secrets := []string{"s", "It's a Secret to Everybody", string(bytes.Repeat([]byte("k"), 64)), string(bytes.Repeat([]byte("long"), 40))}
	keys := make([]*keyed, len(secrets))
	for i, s := range secrets {
		keys[i] = &keyed{secret: s, x8: x.key(s)}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var lengths []int
	for n := range 300 {
		lengths = append(lengths, n)
	}
	for range 200 {
		lengths = append(lengths, rng.IntN(20000))
	}
	for size := 1; size <= 8; size++ {
		for start := 0; start < len(lengths); start += size {
			var batch []*x8Request
			for j := start; j < min(start+size, len(lengths)); j++ {
				msg := make([]byte, lengths[j])
				for i := range msg {
					msg[i] = byte(rng.Uint32())
				}
				batch = append(batch, &x8Request{key: keys[j%len(keys)], msg: msg})
			}
			x.hash(batch)
			for j, r := range batch {
				if want := stdMAC(secrets[(start+j)%len(secrets)], r.msg); r.sum != want {
					t.Fatalf("batch of %d, lane %d, %d-byte message: got %x, want %x", size, j, len(r.msg), r.sum, want)
				}
			}
		}
	}
}

// Many goroutines at once, so that batches form and the lead passes between them.
func TestX8Concurrent(t *testing.T) {
	needX8(t)
	var k Keys
	var wg sync.WaitGroup
	for g := range 32 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 7))
			for i := range 300 {
				secret := fmt.Sprint("secret-", (g+i)%5)
				msg := make([]byte, rng.IntN(9000))
				for j := range msg {
					msg[j] = byte(rng.Uint32())
				}
				if got := k.Sum(nil, secret, msg); [32]byte(got) != stdMAC(secret, msg) {
					t.Errorf("goroutine %d, message %d (%d bytes): wrong MAC", g, i, len(msg))
					return
				}
			}
		})
	}
	wg.Wait()
	if k.x8.leading || len(k.x8.queue) != 0 {
		t.Fatalf("after the last Sum: leading=%v, %d queued", k.x8.leading, len(k.x8.queue))
	}
}

// The raw cost of a batch by how many lanes are busy: a 7 KB message in each.
// go test ./internal/forge/webhookmac -bench X8Lanes
func BenchmarkX8Lanes(b *testing.B) {
	x := needX8(b)
	key := &keyed{secret: "It's a Secret to Everybody", x8: x.key("It's a Secret to Everybody")}
	msg := bytes.Repeat([]byte("x"), 7324)
	for _, lanes := range []int{1, 2, 4, 8} {
		b.Run(fmt.Sprint(lanes), func(b *testing.B) {
			batch := make([]*x8Request, lanes)
			for i := range batch {
				batch[i] = &x8Request{key: key, msg: msg}
			}
			b.SetBytes(int64(lanes * len(msg)))
			for b.Loop() {
				x.hash(batch)
			}
		})
	}
}
