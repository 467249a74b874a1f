// Package webhookmac computes the HMAC-SHA256 that GitHub, Gitea and Bitbucket Data Center
// sign webhook deliveries with, reusing each secret's keyed state across deliveries.
//
// hmac.New hashes the padded key twice (the inner and outer blocks) and allocates both
// digests for every delivery. A reset HMAC keeps those two states, so a verifier that keeps
// one per secret pays only for the body. The states are as secret as the key they come from;
// they stay in this process's memory, beside the decrypted secrets the integration cache
// already holds.
//
// On CPUs without the SHA extensions but with AVX-512, hashing one message at a time costs
// about 12 cycles a byte, and a 7 KB delivery's HMAC becomes a fifth of the whole cost of
// taking it in. There, Keys hashes the messages being verified at the same time together,
// eight at once, one per lane of a vector register (x8_amd64.go).
package webhookmac

import (
	"crypto/hmac"
	"crypto/sha256"
	"hash"
	"sync"
	"sync/atomic"
)

// maxKeys bounds the secrets kept: past it the cache starts over, so that rotated-out
// secrets do not accumulate in a long-running process.
const maxKeys = 256

// Keys keeps reusable HMAC-SHA256 states per secret. Its zero value is ready to use and it is
// safe for concurrent use.
type Keys struct {
	keys sync.Map // secret -> *keyed
	n    atomic.Int64
	x8   x8
}

// keyed is what Keys keeps of one secret.
type keyed struct {
	secret string
	pool   sync.Pool // hash.Hash keyed with the secret, reset
	x8     *x8Key    // set where messages are hashed in batches (x8_amd64.go)
}

// x8MaxMessage is the largest message hashed in a batch. A larger one would hold the
// batch's other seven lanes idle behind it, so it is hashed on its own.
const x8MaxMessage = 64 << 10

// Sum appends HMAC-SHA256(secret, msg) to out and returns the result.
func (k *Keys) Sum(out []byte, secret string, msg []byte) []byte {
	e := k.keyed(secret)
	if e.x8 != nil && len(msg) <= x8MaxMessage {
		return k.x8.sum(out, e, msg)
	}
	return e.sum(out, msg)
}

// sum appends HMAC-SHA256 of msg under e's secret to out, one message at a time.
func (e *keyed) sum(out []byte, msg []byte) []byte {
	h, _ := e.pool.Get().(hash.Hash)
	if h == nil {
		h = hmac.New(sha256.New, []byte(e.secret))
	}
	h.Write(msg)
	out = h.Sum(out)
	h.Reset()
	e.pool.Put(h)
	return out
}

func (k *Keys) keyed(secret string) *keyed {
	if e, ok := k.keys.Load(secret); ok {
		return e.(*keyed)
	}
	if k.n.Add(1) > maxKeys {
		k.keys.Clear()
		k.n.Store(1)
	}
	e := &keyed{secret: secret}
	if k.x8.enabled() {
		e.x8 = k.x8.key(secret)
	}
	got, _ := k.keys.LoadOrStore(secret, e)
	return got.(*keyed)
}

// Sum returns HMAC-SHA256(secret, msg) without keeping any state: for signing in tests and
// fakes, and wherever a secret is used once.
func Sum(secret string, msg []byte) []byte {
	h := hmac.New(sha256.New, []byte(secret))
	h.Write(msg)
	return h.Sum(nil)
}
