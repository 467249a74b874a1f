// Package secrets owns encryption at rest: every private key, client secret, token and
// webhook secret Forgeway stores passes through a Keyring before it reaches the database.
//
// Values are sealed with AES-256-GCM under the current key; each sealed value carries the id
// of the key that sealed it, so values sealed under older keys stay readable while
// `forgeway secrets rotate` re-seals them under a new one.
package secrets

import (
	"bufio"
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// KeySize is the AES-256 key size in bytes.
const KeySize = 32

// magic prefixes every sealed value: format version 1.
var magic = []byte("fw1")

const kidLen = 8 // bytes of key id stored with each value

// ErrUnknownKey means a value was sealed under a key this keyring does not hold.
var ErrUnknownKey = errors.New("sealed under a key this server does not have (was FORGEWAY_SECRET_KEY changed without rotating?)")

// Keyring holds the current key and any older keys still needed to open values.
type Keyring struct {
	current []byte
	kid     []byte
	aeads   map[string]cipher.AEAD // by hex key id
	order   []string               // hex key ids, current first
	keys    map[string][]byte
}

// KeyID returns the id of a key: the first bytes of its SHA-256.
func KeyID(key []byte) string {
	sum := sha256.Sum256(key)
	return hex.EncodeToString(sum[:kidLen])
}

// New builds a keyring from the current key and older keys.
func New(current []byte, older ...[]byte) (*Keyring, error) {
	k := &Keyring{aeads: map[string]cipher.AEAD{}, keys: map[string][]byte{}}
	for i, key := range append([][]byte{current}, older...) {
		if len(key) != KeySize {
			return nil, fmt.Errorf("secret key %d is %d bytes; want %d (32 random bytes, base64)", i, len(key), KeySize)
		}
		block, err := aes.NewCipher(key)
		if err != nil {
			return nil, fmt.Errorf("secret key %d: %w", i, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("secret key %d: %w", i, err)
		}
		id := KeyID(key)
		if _, dup := k.aeads[id]; dup {
			continue
		}
		k.aeads[id] = aead
		k.keys[id] = key
		k.order = append(k.order, id)
	}
	k.current = current
	k.kid, _ = hex.DecodeString(k.order[0])
	return k, nil
}

// CurrentID is the id of the key new values are sealed under.
func (k *Keyring) CurrentID() string { return k.order[0] }

// IDs lists the ids of every key held, current first.
func (k *Keyring) IDs() []string { return append([]string(nil), k.order...) }

// Seal encrypts plaintext under the current key. A nil or empty plaintext seals to nil, so
// "no secret" stays distinguishable from an encrypted empty string only by absence.
func (k *Keyring) Seal(plaintext []byte) ([]byte, error) {
	if len(plaintext) == 0 {
		return nil, nil
	}
	aead := k.aeads[k.order[0]]
	out := make([]byte, 0, len(magic)+kidLen+aead.NonceSize()+len(plaintext)+aead.Overhead())
	out = append(out, magic...)
	out = append(out, k.kid...)
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("seal secret: %w", err)
	}
	out = append(out, nonce...)
	header := out[:len(magic)+kidLen]
	return aead.Seal(out, nonce, plaintext, header), nil
}

// Open decrypts a value sealed by any key of the keyring. A nil value opens to nil.
func (k *Keyring) Open(sealed []byte) ([]byte, error) {
	if len(sealed) == 0 {
		return nil, nil
	}
	if !bytes.HasPrefix(sealed, magic) || len(sealed) < len(magic)+kidLen {
		return nil, errors.New("open secret: not a sealed value")
	}
	id := hex.EncodeToString(sealed[len(magic) : len(magic)+kidLen])
	aead, ok := k.aeads[id]
	if !ok {
		return nil, fmt.Errorf("open secret (key %s): %w", id, ErrUnknownKey)
	}
	rest := sealed[len(magic)+kidLen:]
	if len(rest) < aead.NonceSize()+aead.Overhead() {
		return nil, errors.New("open secret: value is truncated")
	}
	pt, err := aead.Open(nil, rest[:aead.NonceSize()], rest[aead.NonceSize():], sealed[:len(magic)+kidLen])
	if err != nil {
		return nil, fmt.Errorf("open secret (key %s): value was altered or the key is wrong", id)
	}
	return pt, nil
}

// SealedKeyID returns the id of the key a value was sealed under.
func SealedKeyID(sealed []byte) string {
	if len(sealed) < len(magic)+kidLen || !bytes.HasPrefix(sealed, magic) {
		return ""
	}
	return hex.EncodeToString(sealed[len(magic) : len(magic)+kidLen])
}

// Reseal opens a value with whichever key sealed it and seals it again under the current key.
func (k *Keyring) Reseal(sealed []byte) ([]byte, error) {
	if len(sealed) == 0 || SealedKeyID(sealed) == k.order[0] {
		return sealed, nil
	}
	pt, err := k.Open(sealed)
	if err != nil {
		return nil, err
	}
	return k.Seal(pt)
}

// GenerateKey returns a new random key.
func GenerateKey() ([]byte, error) {
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("generate secret key: %w", err)
	}
	return key, nil
}

// ParseKey decodes a key given as base64 (standard or URL alphabet) or 64 hex digits.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if len(s) == 2*KeySize {
		if b, err := hex.DecodeString(s); err == nil {
			return b, nil
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			if len(b) != KeySize {
				return nil, fmt.Errorf("secret key decodes to %d bytes; want %d (generate one with: openssl rand -base64 32)", len(b), KeySize)
			}
			return b, nil
		}
	}
	return nil, errors.New("secret key is neither base64 nor hex (generate one with: openssl rand -base64 32)")
}

// KeyFile is a file holding keys, one base64 key a line; the first line is the current key.
// It is created with mode 0600 and refused when others can read it.
type KeyFile struct{ Path string }

// Load reads the keys of the file, creating it with a new key when it does not exist.
// created reports whether it did.
func (f KeyFile) Load() (keys [][]byte, created bool, err error) {
	data, err := os.ReadFile(f.Path)
	if errors.Is(err, fs.ErrNotExist) {
		key, err := GenerateKey()
		if err != nil {
			return nil, false, err
		}
		if err := f.Write([][]byte{key}); err != nil {
			return nil, false, err
		}
		return [][]byte{key}, true, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read key file %s: %w", f.Path, err)
	}
	st, err := os.Stat(f.Path)
	if err != nil {
		return nil, false, fmt.Errorf("stat key file %s: %w", f.Path, err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, false, fmt.Errorf("key file %s has mode %o; it must be readable by its owner only (chmod 600)", f.Path, st.Mode().Perm())
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for line := 1; sc.Scan(); line++ {
		t := strings.TrimSpace(sc.Text())
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		key, err := ParseKey(t)
		if err != nil {
			return nil, false, fmt.Errorf("key file %s line %d: %w", f.Path, line, err)
		}
		keys = append(keys, key)
	}
	if len(keys) == 0 {
		return nil, false, fmt.Errorf("key file %s holds no key", f.Path)
	}
	return keys, false, nil
}

// Write replaces the file's keys atomically (write to a temporary file, then rename).
func (f KeyFile) Write(keys [][]byte) error {
	if err := os.MkdirAll(filepath.Dir(f.Path), 0o700); err != nil {
		return fmt.Errorf("create key directory: %w", err)
	}
	var b strings.Builder
	b.WriteString("# Forgeway secret keys: the first is current; later ones are kept only to read old values.\n")
	for _, k := range keys {
		b.WriteString(base64.StdEncoding.EncodeToString(k))
		b.WriteByte('\n')
	}
	tmp, err := os.CreateTemp(filepath.Dir(f.Path), ".key-*")
	if err != nil {
		return fmt.Errorf("write key file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("write key file: %w", err)
	}
	if _, err := tmp.WriteString(b.String()); err != nil {
		tmp.Close()
		return fmt.Errorf("write key file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write key file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write key file: %w", err)
	}
	if err := os.Rename(tmp.Name(), f.Path); err != nil {
		return fmt.Errorf("write key file: %w", err)
	}
	return nil
}
