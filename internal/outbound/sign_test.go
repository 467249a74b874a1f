package outbound

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// The Standard Webhooks specification's test vector (also svix-webhooks' TestWebhookSign).
const (
	vecSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	vecID        = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	vecTimestamp = 1614265330
	vecBody      = `{"test": 2432232314}`
	vecSig       = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func TestSignMatchesTheStandardWebhooksVector(t *testing.T) {
	got, err := Sign(vecSecret, vecID, time.Unix(vecTimestamp, 0), []byte(vecBody))
	if err != nil {
		t.Fatal(err)
	}
	if got != vecSig {
		t.Fatalf("signature %s, want %s", got, vecSig)
	}
}

func TestVerify(t *testing.T) {
	at := time.Unix(vecTimestamp, 0)
	ts := "1614265330"
	tests := []struct {
		name              string
		secret, id, stamp string
		sig, body         string
		now               time.Time
		ok                bool
	}{
		{"valid", vecSecret, vecID, ts, vecSig, vecBody, at, true},
		{"one of several signatures", vecSecret, vecID, ts, "v1,bm90IGl0 " + vecSig, vecBody, at.Add(time.Minute), true},
		{"body changed", vecSecret, vecID, ts, vecSig, `{"test": 2432232315}`, at, false},
		{"id changed", vecSecret, "msg_other", ts, vecSig, vecBody, at, false},
		{"other secret", "whsec_" + strings.Repeat("A", 32), vecID, ts, vecSig, vecBody, at, false},
		{"too old", vecSecret, vecID, ts, vecSig, vecBody, at.Add(6 * time.Minute), false},
		{"from the future", vecSecret, vecID, ts, vecSig, vecBody, at.Add(-6 * time.Minute), false},
		{"timestamp not a number", vecSecret, vecID, "yesterday", vecSig, vecBody, at, false},
		{"other version", vecSecret, vecID, ts, "v2," + strings.TrimPrefix(vecSig, "v1,"), vecBody, at, false},
		{"no signature", vecSecret, vecID, ts, "", vecBody, at, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Verify(tc.secret, tc.id, tc.stamp, tc.sig, []byte(tc.body), tc.now, 5*time.Minute)
			if tc.ok && err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if !tc.ok && !errors.Is(err, ErrBadSignature) {
				t.Fatalf("Verify: %v, want ErrBadSignature", err)
			}
		})
	}
}

func TestSecrets(t *testing.T) {
	a, b := NewSecret(), NewSecret()
	if a == b || !strings.HasPrefix(a, SecretPrefix) {
		t.Fatalf("generated secrets %q %q", a, b)
	}
	tests := []struct {
		secret string
		ok     bool
	}{
		{a, true},
		{vecSecret, true}, // 24 bytes: the shortest accepted
		{"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", false},    // no prefix
		{"whsec_not base64!", false},                   // not base64
		{"whsec_" + strings.Repeat("QUFB", 4), false},  // 12 bytes: too short
		{"whsec_" + strings.Repeat("QUFB", 30), false}, // 90 bytes: too long
		{"whsec_c2VjcmV0LW9mLWEtcm90YXRlZC1lbmRwb2ludA==", true},
	}
	for _, tc := range tests {
		err := ValidateSecret(tc.secret)
		if (err == nil) != tc.ok {
			t.Errorf("ValidateSecret(%q) = %v, want ok=%v", tc.secret, err, tc.ok)
		}
		if err != nil && len(tc.secret) > 12 && strings.Contains(err.Error(), tc.secret[6:]) {
			t.Errorf("the error quotes the secret: %v", err)
		}
	}
}

func TestDefaultScheduleIsTheSpecifications(t *testing.T) {
	want := []time.Duration{5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour}
	got := DefaultSchedule()
	if len(got) != len(want) {
		t.Fatalf("schedule %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("schedule %v, want %v", got, want)
		}
	}
	got[0] = time.Hour // a copy: the default does not change
	if DefaultSchedule()[0] != 5*time.Second {
		t.Fatal("DefaultSchedule returned shared state")
	}
	if s := New(Options{}); len(s.o.Schedule) != 7 || s.o.Timeout != 15*time.Second {
		t.Fatalf("defaults: schedule %v timeout %s", s.o.Schedule, s.o.Timeout)
	}
}
