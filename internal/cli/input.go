package cli

import (
	"fmt"
	"io"
	"os"
	"strings"
)

// maxSecretInput bounds a secret read from a file or stdin (PEM keys and CA bundles are a few
// kilobytes).
const maxSecretInput = 1 << 20

// parsePairs reads repeated "key=value" flag values. Keys must be unique and non-empty; with
// allowEmpty, "key=" is accepted (a patch removes the key).
func parsePairs(flagName string, list []string, allowEmpty bool) (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range list {
		k, v, ok := strings.Cut(kv, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, usagef("--%s takes key=value, got %q", flagName, redactPair(flagName, kv))
		}
		if v == "" && !allowEmpty {
			return nil, usagef("--%s %s= has no value", flagName, k)
		}
		if _, dup := out[k]; dup {
			return nil, usagef("--%s names %s twice", flagName, k)
		}
		out[k] = v
	}
	return out, nil
}

// redactPair hides the value of a malformed secret flag before it is shown in an error.
func redactPair(flagName, kv string) string {
	if strings.Contains(flagName, "secret") {
		return "(value hidden)"
	}
	return kv
}

// secretInput gathers secret values from --secret k=v, --secret-file k=path and
// --secret-stdin k, so that they can stay out of the process arguments.
type secretInput struct {
	inline []string // --secret
	files  []string // --secret-file
	stdin  string   // --secret-stdin: the key whose value is the whole of stdin
}

// collect reads every secret into one map; a key given twice (by any means) is an error,
// found before anything is read. allowEmpty lets "key=" remove a secret in a patch.
func (s secretInput) collect(e *env, allowEmpty bool) (map[string]string, error) {
	out, err := parsePairs("secret", s.inline, allowEmpty)
	if err != nil {
		return nil, err
	}
	files, err := parsePairs("secret-file", s.files, false)
	if err != nil {
		return nil, err
	}
	for k := range files {
		if _, dup := out[k]; dup {
			return nil, usagef("secret %s is given twice", k)
		}
	}
	if s.stdin != "" {
		_, dupInline := out[s.stdin]
		_, dupFile := files[s.stdin]
		if dupInline || dupFile {
			return nil, usagef("secret %s is given twice", s.stdin)
		}
	}
	if len(s.inline) > 0 {
		fmt.Fprintln(e.stderr, "warning: --secret puts the value in the process list and shell history; prefer --secret-file or --secret-stdin")
	}
	for k, path := range files {
		v, err := readSecretFile(path)
		if err != nil {
			return nil, fmt.Errorf("secret %s: %w", k, err)
		}
		out[k] = v
	}
	if s.stdin != "" {
		v, err := readSecretStdin(e)
		if err != nil {
			return nil, fmt.Errorf("secret %s: %w", s.stdin, err)
		}
		out[s.stdin] = v
	}
	return out, nil
}

// readSecretFile reads a secret from a file, without its trailing newline.
func readSecretFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("read secret file: %w", err)
	}
	defer f.Close()
	return readSecret(f, "file "+path)
}

// readSecretStdin reads a secret from the whole of stdin, without its trailing newline.
func readSecretStdin(e *env) (string, error) {
	if e.stdin == nil {
		return "", fmt.Errorf("no standard input to read the secret from")
	}
	if isTerminal(e.stdin) {
		fmt.Fprintln(e.stderr, "reading the secret from standard input (end with Ctrl-D)…")
	}
	return readSecret(e.stdin, "standard input")
}

func readSecret(r io.Reader, from string) (string, error) {
	raw, err := io.ReadAll(io.LimitReader(r, maxSecretInput+1))
	if err != nil {
		return "", fmt.Errorf("read %s: %w", from, err)
	}
	if len(raw) > maxSecretInput {
		return "", fmt.Errorf("%s is larger than %d bytes", from, maxSecretInput)
	}
	v := strings.TrimRight(string(raw), "\r\n")
	if strings.TrimSpace(v) == "" {
		return "", fmt.Errorf("%s is empty", from)
	}
	return v, nil
}
