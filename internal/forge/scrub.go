package forge

import (
	"encoding/base64"
	"slices"
	"strings"
)

// Scrubber returns a function that blanks every form of the credential in header, an HTTP
// header line ("Authorization: Basic …"): the line, its value, the token after the scheme,
// and for Basic the decoded pair and password. It is for text about to leave Forgeway (an
// error, a log line) that a host, a proxy or git may have echoed the credential into. A
// header without a value scrubs nothing.
func Scrubber(header string) func(string) string {
	if _, value, _ := strings.Cut(header, ":"); strings.TrimSpace(value) == "" {
		return func(s string) string { return s }
	}
	var secrets []string
	add := func(s string) {
		if s = strings.TrimSpace(s); len(s) >= 4 {
			secrets = append(secrets, s)
		}
	}
	add(header)
	if _, value, ok := strings.Cut(header, ":"); ok {
		add(value)
		fields := strings.Fields(value)
		if len(fields) > 0 {
			add(fields[len(fields)-1])
		}
		if len(fields) == 2 && strings.EqualFold(fields[0], "basic") {
			if raw, err := base64.StdEncoding.DecodeString(fields[1]); err == nil {
				add(string(raw))
				if _, pass, ok := strings.Cut(string(raw), ":"); ok {
					add(pass)
				}
			}
		}
	}
	// Longest first, so that a part never leaves the rest of a longer form behind.
	slices.SortFunc(secrets, func(a, b string) int { return len(b) - len(a) })
	return func(s string) string {
		for _, sec := range secrets {
			s = strings.ReplaceAll(s, sec, "[redacted]")
		}
		return s
	}
}
