package outbound

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// SecretPrefix starts every signing secret (the Standard Webhooks convention).
const SecretPrefix = "whsec_"

// Secret key sizes: generated secrets carry 32 random bytes; given ones must hold 24 to 64.
const (
	secretBytes    = 32
	minSecretBytes = 24
	maxSecretBytes = 64
)

// Standard Webhooks headers.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// ErrBadSignature means a delivery's signature headers do not verify.
var ErrBadSignature = errors.New("webhook signature does not verify")

// NewSecret returns a new random signing secret: "whsec_" and the base64 of 32 random bytes.
func NewSecret() string {
	b := make([]byte, secretBytes)
	// crypto/rand.Read never returns an error (it panics if the system source fails).
	_, _ = rand.Read(b)
	return SecretPrefix + base64.StdEncoding.EncodeToString(b)
}

// secretKey returns the HMAC key of a "whsec_<base64>" secret. The error never quotes the
// secret.
func secretKey(secret string) ([]byte, error) {
	enc, ok := strings.CutPrefix(secret, SecretPrefix)
	if !ok {
		return nil, fmt.Errorf("the secret must start with %q", SecretPrefix)
	}
	key, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return nil, errors.New("the secret after " + SecretPrefix + " must be standard base64")
	}
	if len(key) < minSecretBytes || len(key) > maxSecretBytes {
		return nil, fmt.Errorf("the secret's key must be %d to %d bytes (it is %d)", minSecretBytes, maxSecretBytes, len(key))
	}
	return key, nil
}

// ValidateSecret reports whether secret is a usable "whsec_" signing secret.
func ValidateSecret(secret string) error {
	_, err := secretKey(secret)
	return err
}

// signature is "v1," and the base64 HMAC-SHA256 of "id.timestamp.body" under key.
func signature(key []byte, id string, timestamp int64, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id + "." + strconv.FormatInt(timestamp, 10) + "."))
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// Sign returns the webhook-signature header value for a message: "v1,<base64 HMAC-SHA256 of
// id.timestamp.body>", keyed with the base64-decoded part of secret after "whsec_".
func Sign(secret, id string, at time.Time, body []byte) (string, error) {
	key, err := secretKey(secret)
	if err != nil {
		return "", err
	}
	return signature(key, id, at.Unix(), body), nil
}

// Verify checks a delivery as a consumer does: the timestamp is within tolerance of now
// (replays are refused) and one of the space-separated signatures in signatureHeader is the
// message's v1 signature. Signatures are compared in constant time.
func Verify(secret, id, timestamp, signatureHeader string, body []byte, now time.Time, tolerance time.Duration) error {
	key, err := secretKey(secret)
	if err != nil {
		return err
	}
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %s is not unix seconds", ErrBadSignature, HeaderTimestamp)
	}
	if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: the timestamp is %s away from now", ErrBadSignature, d.Round(time.Second))
	}
	want := []byte(signature(key, id, ts, body))
	for _, s := range strings.Fields(signatureHeader) {
		if hmac.Equal([]byte(s), want) {
			return nil
		}
	}
	return ErrBadSignature
}
