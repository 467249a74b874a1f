//go:build amd64 && !purego

package webhookmac

import (
	"crypto/sha256"
	"encoding/binary"
	"math"
	"runtime"
	"sync"
	"unsafe"

	"golang.org/x/sys/cpu"
)

//go:generate go run gen_x8.go

// blocksX8 runs SHA-256's compression function n times in each of eight lanes: lane i
// starts from the chaining value in state[·][i] and reads n 64-byte blocks from ptrs[i],
// stepping strides[i] bytes per block (0 re-reads one block, for an idle lane).
//
//go:noescape
func blocksX8(state *[8][8]uint32, ptrs *[8]unsafe.Pointer, strides *[8]uint64, n int)

func cpuid(leaf, sub uint32) (a, b, c, d uint32)

// x8Available reports whether eight-lane hashing pays on this CPU: it needs AVX-512
// (foundation, vector length and byte/word instructions, with the OS saving their state),
// and it is not used where the CPU has the SHA extensions, whose one-message-at-a-time
// rounds crypto/sha256 already uses and which are as fast per byte.
func x8Available() bool {
	if !cpu.X86.HasAVX512F || !cpu.X86.HasAVX512VL || !cpu.X86.HasAVX512BW {
		return false
	}
	if maxLeaf, _, _, _ := cpuid(0, 0); maxLeaf < 7 {
		return false
	}
	_, ebx, _, _ := cpuid(7, 0)
	return ebx&(1<<29) == 0 // CPUID.(EAX=7,ECX=0):EBX.SHA[bit 29]
}

// x8 batches concurrent HMAC computations eight at a time. Whoever finds no batch running
// leads: it yields once so that deliveries being read on other goroutines can join, takes
// up to eight waiting messages (its own among them), hashes them, wakes their owners, and
// hands the lead to the first message still waiting. No goroutine of its own runs, so
// nothing outlives the Keys that owns it.
type x8 struct {
	once sync.Once
	on   bool

	mu      sync.Mutex
	queue   []*x8Request
	leading bool

	reqs  sync.Pool
	dummy [64]byte // what idle lanes read
}

// x8Request is one message's HMAC in a batch.
type x8Request struct {
	key  *keyed
	msg  []byte
	sum  [sha256.Size]byte
	done chan bool // receives true when its owner is to lead next, else false

	// tail holds the message's last partial block, the padding and the length; then the
	// outer hash's one block, the inner digest padded likewise.
	tail [128]byte
}

// x8Key is a secret's HMAC key schedule: the chaining values after its inner and outer
// padded key blocks (RFC 2104), which every message under that secret starts from.
type x8Key struct {
	ipad, opad [8]uint32
}

func (x *x8) enabled() bool {
	x.once.Do(func() { x.on = x8Available() })
	return x.on
}

// key derives secret's key schedule, hashing its two padded key blocks in two lanes.
func (x *x8) key(secret string) *x8Key {
	var block [64]byte
	if len(secret) > len(block) {
		sum := sha256.Sum256([]byte(secret))
		copy(block[:], sum[:])
	} else {
		copy(block[:], secret)
	}
	var ipad, opad [64]byte
	for i, b := range block {
		ipad[i] = b ^ 0x36
		opad[i] = b ^ 0x5c
	}
	// FIPS 180-4 §5.3.3: SHA-256's initial hash value.
	iv := [8]uint32{0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19}
	var st [8][8]uint32
	setLane(&st, 0, &iv)
	setLane(&st, 1, &iv)
	ptrs := [8]unsafe.Pointer{unsafe.Pointer(&ipad), unsafe.Pointer(&opad)}
	for i := 2; i < 8; i++ {
		ptrs[i] = unsafe.Pointer(&x.dummy)
	}
	var strides [8]uint64
	blocksX8(&st, &ptrs, &strides, 1)
	k := new(x8Key)
	for w := range 8 {
		k.ipad[w], k.opad[w] = st[w][0], st[w][1]
	}
	return k
}

// sum appends HMAC-SHA256 under key's secret of msg to out, hashing it in a batch with
// whatever other messages are being verified at the same time.
func (x *x8) sum(out []byte, key *keyed, msg []byte) []byte {
	r, _ := x.reqs.Get().(*x8Request)
	if r == nil {
		r = &x8Request{done: make(chan bool, 1)}
	}
	r.key, r.msg = key, msg
	x.mu.Lock()
	x.queue = append(x.queue, r)
	lead := !x.leading
	x.leading = true
	x.mu.Unlock()
	if lead {
		// Let goroutines already runnable, reading deliveries, reach here and join.
		runtime.Gosched()
	} else {
		lead = <-r.done
	}
	if lead {
		x.lead(r)
	}
	out = append(out, r.sum[:]...)
	r.key, r.msg = nil, nil
	x.reqs.Put(r)
	return out
}

// lead hashes one batch, then hands the lead on or lets it lapse. self is first in the
// queue: a leader either found it empty or was handed the lead as its head.
func (x *x8) lead(self *x8Request) {
	x.mu.Lock()
	n := min(len(x.queue), 8)
	var batch [8]*x8Request
	copy(batch[:], x.queue[:n])
	// Shift rather than reslice, so that the queue's array is reused; clear what the shift
	// leaves behind, so that the array holds no request twice.
	left := copy(x.queue, x.queue[n:])
	clear(x.queue[left:])
	x.queue = x.queue[:left]
	x.mu.Unlock()

	if n == 1 {
		// Alone, one lane of eight costs more than crypto/sha256's rounds.
		self.sum = [sha256.Size]byte(self.key.sum(self.sum[:0], self.msg))
	} else {
		x.hash(batch[:n])
	}
	for _, r := range batch[1:n] {
		r.done <- false
	}

	x.mu.Lock()
	if len(x.queue) == 0 {
		x.leading = false
		x.mu.Unlock()
		return
	}
	next := x.queue[0]
	x.mu.Unlock()
	next.done <- true
}

// Phases of a message in its lane.
const (
	phaseBody  = iota // the message's whole blocks
	phaseTail         // its last partial block, padding and length
	phaseOuter        // the outer hash's block
	phaseDone
)

// hash computes the HMACs of up to eight messages, one per lane. Each step runs every
// busy lane for as many blocks as the shortest stretch left in any of them; a lane whose
// stretch ends moves to its next phase.
func (x *x8) hash(batch []*x8Request) {
	var (
		st      [8][8]uint32
		ptrs    [8]unsafe.Pointer
		strides [8]uint64
		seg     [8][]byte
		tail    [8][]byte
		phase   [8]int
	)
	busy := 0
	for i := range ptrs {
		ptrs[i] = unsafe.Pointer(&x.dummy)
		phase[i] = phaseDone
		if i >= len(batch) {
			continue
		}
		r := batch[i]
		busy++
		setLane(&st, i, &r.key.x8.ipad)
		whole := len(r.msg) &^ 63
		tail[i] = r.pad(r.msg[whole:], 64+len(r.msg))
		phase[i], seg[i] = phaseBody, r.msg[:whole]
		if whole == 0 {
			phase[i], seg[i] = phaseTail, tail[i]
		}
	}
	for busy > 0 {
		n := math.MaxInt
		for i := range phase {
			if phase[i] == phaseDone {
				ptrs[i], strides[i] = unsafe.Pointer(&x.dummy), 0
				continue
			}
			ptrs[i], strides[i] = unsafe.Pointer(&seg[i][0]), 64
			n = min(n, len(seg[i])/64)
		}
		blocksX8(&st, &ptrs, &strides, n)
		for i := range phase {
			if phase[i] == phaseDone {
				continue
			}
			if seg[i] = seg[i][n*64:]; len(seg[i]) > 0 {
				continue
			}
			r := batch[i]
			switch phase[i] {
			case phaseBody:
				phase[i], seg[i] = phaseTail, tail[i]
			case phaseTail:
				inner := laneDigest(&st, i)
				setLane(&st, i, &r.key.x8.opad)
				phase[i], seg[i] = phaseOuter, r.pad(inner[:], 64+len(inner))
			case phaseOuter:
				r.sum = laneDigest(&st, i)
				phase[i] = phaseDone
				busy--
			}
		}
	}
}

// pad fills r.tail with rest (under 64 bytes), the 0x80 byte, zeros and the length in
// bits of all that is hashed (FIPS 180-4 §5.1.1), and returns the one or two blocks.
func (r *x8Request) pad(rest []byte, hashed int) []byte {
	r.tail = [128]byte{}
	copy(r.tail[:], rest)
	r.tail[len(rest)] = 0x80
	n := 64
	if len(rest)+1+8 > 64 {
		n = 128
	}
	binary.BigEndian.PutUint64(r.tail[n-8:], uint64(hashed)*8)
	return r.tail[:n]
}

func setLane(st *[8][8]uint32, lane int, h *[8]uint32) {
	for w := range 8 {
		st[w][lane] = h[w]
	}
}

func laneDigest(st *[8][8]uint32, lane int) (d [sha256.Size]byte) {
	for w := range 8 {
		binary.BigEndian.PutUint32(d[4*w:], st[w][lane])
	}
	return d
}
