//go:build !amd64 || purego

package webhookmac

// x8 is the eight-lane batcher where it exists (amd64); elsewhere it is never enabled.
type x8 struct{}

type x8Key struct{}

func (*x8) enabled() bool                               { return false }
func (*x8) key(string) *x8Key                           { return nil }
func (*x8) sum(out []byte, e *keyed, msg []byte) []byte { return e.sum(out, msg) }
