package forge_test

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/forgeway/forgeway/internal/forge"
)

func TestScrubberRemovesEveryFormOfTheCredential(t *testing.T) {
	const token = "ghs_G00dT0kenValue1234567890"
	b64 := base64.StdEncoding.EncodeToString([]byte("x-access-token:" + token))
	value := "Basic " + b64
	h := "Authorization: " + value
	scrub := forge.Scrubber(h)
	for _, s := range []string{h, value, b64, token, "x-access-token:" + token, "Bearer " + token} {
		out := scrub("before " + s + " after")
		if strings.Contains(out, token) || strings.Contains(out, b64) || !strings.Contains(out, "[redacted]") {
			t.Errorf("scrub(%q) = %q", s, out)
		}
	}
	bearer := forge.Scrubber("Authorization: Bearer glpat-abcdef123456")
	if out := bearer("token glpat-abcdef123456 refused"); strings.Contains(out, "glpat-abcdef123456") {
		t.Errorf("bearer scrub = %q", out)
	}
	// No credential, nothing to scrub: not even the header's name or scheme.
	for _, h := range []string{"", "Authorization: ", "Authorization:"} {
		if out := forge.Scrubber(h)("Authorization: nothing to hide"); out != "Authorization: nothing to hide" {
			t.Errorf("Scrubber(%q) changed the text: %q", h, out)
		}
	}
}
