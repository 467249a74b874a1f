package secrets

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func mustKey(t *testing.T) []byte {
	t.Helper()
	k, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSealOpenRoundTrip(t *testing.T) {
	kr, err := New(mustKey(t))
	if err != nil {
		t.Fatal(err)
	}
	pt := []byte("-----BEGIN RSA PRIVATE KEY-----\nsecret")
	sealed, err := kr.Seal(pt)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("secret")) {
		t.Fatal("sealed value contains the plaintext")
	}
	if SealedKeyID(sealed) != kr.CurrentID() {
		t.Fatalf("key id %q, want %q", SealedKeyID(sealed), kr.CurrentID())
	}
	got, err := kr.Open(sealed)
	if err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("Open = %q, %v", got, err)
	}
	again, _ := kr.Seal(pt)
	if bytes.Equal(again, sealed) {
		t.Fatal("two seals of the same value are identical: nonce reused")
	}
	if v, err := kr.Seal(nil); v != nil || err != nil {
		t.Fatalf("Seal(nil) = %v, %v", v, err)
	}
}

func TestOpenRejectsTamperingAndUnknownKeys(t *testing.T) {
	kr, _ := New(mustKey(t))
	sealed, _ := kr.Seal([]byte("token"))
	bad := append([]byte(nil), sealed...)
	bad[len(bad)-1] ^= 1
	if _, err := kr.Open(bad); err == nil {
		t.Fatal("tampered value opened")
	}
	other, _ := New(mustKey(t))
	if _, err := other.Open(sealed); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("other keyring: %v, want ErrUnknownKey", err)
	}
	if _, err := kr.Open([]byte("plain")); err == nil {
		t.Fatal("plaintext opened as sealed")
	}
	if _, err := kr.Open(sealed[:10]); err == nil {
		t.Fatal("truncated value opened")
	}
}

func TestRotationReseals(t *testing.T) {
	oldKey, newKey := mustKey(t), mustKey(t)
	oldRing, _ := New(oldKey)
	sealed, _ := oldRing.Seal([]byte("pat"))
	ring, err := New(newKey, oldKey)
	if err != nil {
		t.Fatal(err)
	}
	resealed, err := ring.Reseal(sealed)
	if err != nil {
		t.Fatal(err)
	}
	if SealedKeyID(resealed) != KeyID(newKey) {
		t.Fatal("reseal did not use the new key")
	}
	newOnly, _ := New(newKey)
	if got, err := newOnly.Open(resealed); err != nil || string(got) != "pat" {
		t.Fatalf("new key alone cannot open: %q %v", got, err)
	}
}

func TestKeyFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "sub", "secret.key")
	f := KeyFile{Path: p}
	keys, created, err := f.Load()
	if err != nil || !created || len(keys) != 1 {
		t.Fatalf("first load: %v %v %d", err, created, len(keys))
	}
	st, _ := os.Stat(p)
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %o, want 600", st.Mode().Perm())
	}
	again, created, err := f.Load()
	if err != nil || created || !bytes.Equal(again[0], keys[0]) {
		t.Fatalf("second load: %v %v", err, created)
	}
	os.Chmod(p, 0o644)
	if _, _, err := f.Load(); err == nil {
		t.Fatal("world-readable key file accepted")
	}
}

func TestParseKey(t *testing.T) {
	k := mustKey(t)
	for _, s := range []string{"c2hvcnQ=", "not base64!!", ""} {
		if _, err := ParseKey(s); err == nil {
			t.Errorf("ParseKey(%q) accepted", s)
		}
	}
	kr, _ := New(k)
	if _, err := New(k[:16]); err == nil {
		t.Error("16-byte key accepted")
	}
	_ = kr
}
