package gitmirror

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/forgeway/forgeway/internal/forge"
)

// runSpec is one git process.
type runSpec struct {
	op     string // what is being done, for errors: "fetch mirror widgets"
	gitDir string // GIT_DIR; empty for clone, which creates it
	args   []string
	auth   forge.GitAuth
	sync   SyncOptions
}

// passThroughEnv are the variables of Forgeway's own environment a git process keeps: how to
// reach the host (proxies) and which CAs the system trusts. Nothing else leaks in (no
// GIT_TRACE, no GIT_CONFIG_PARAMETERS, no SSH_ASKPASS).
var passThroughEnv = []string{
	"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY",
	"http_proxy", "https_proxy", "no_proxy", "all_proxy",
	"SSL_CERT_FILE", "SSL_CERT_DIR", "TMPDIR",
}

// waitDelay is how long Wait waits for git's output pipes after git was killed.
const waitDelay = 5 * time.Second

// run runs one git process and returns its standard output. The process gets its own process
// group, killed as a whole when ctx ends, so that git's helpers (git-remote-https,
// index-pack) die with it.
func (m *Manager) run(ctx context.Context, s runSpec) (string, error) {
	if err := os.MkdirAll(m.home(), 0o700); err != nil {
		return "", fmt.Errorf("%s: create git home: %w", s.op, err)
	}
	cmd := exec.CommandContext(ctx, m.git, s.args...)
	cmd.Dir = m.root
	cmd.Env = m.env(s)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = waitDelay
	var stdout bytes.Buffer
	stderr := &stderrLog{scrub: forge.Scrubber(s.auth.Header), progress: s.sync.Progress}
	cmd.Stdout = &stdout
	cmd.Stderr = stderr
	err := cmd.Run()
	stderr.flush()
	if err != nil {
		return "", m.classify(ctx, s.op, err, stderr.tail)
	}
	return stdout.String(), nil
}

// env builds the whole environment of a git process from scratch: configuration only from
// GIT_CONFIG_COUNT (no system or global file, no credential helper, no prompt), and the
// credential as http.extraHeader there.
func (m *Manager) env(s runSpec) []string {
	path := os.Getenv("PATH")
	if path == "" {
		path = "/usr/local/bin:/usr/bin:/bin"
	}
	env := []string{
		"PATH=" + path,
		"HOME=" + m.home(), // an empty directory: no ~/.netrc, no ~/.gitconfig
		"LC_ALL=C",         // stable messages for classify
		"GIT_TERMINAL_PROMPT=0",
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL=/dev/null",
	}
	if s.gitDir != "" {
		env = append(env, "GIT_DIR="+s.gitDir)
	}
	for _, k := range passThroughEnv {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	cfg := []string{
		"credential.helper", "", // an empty value clears the list: nothing stores the credential
		"core.askPass", "",
		"gc.autoDetach", "false", // auto gc stays inside this process group and the lock
		"protocol.allow", "never", // only http(s) transports, whatever a URL says
		"protocol.http.allow", "always",
		"protocol.https.allow", "always",
	}
	if s.auth.Header != "" {
		cfg = append(cfg, "http.extraHeader", s.auth.Header)
	}
	if s.sync.CABundle != "" {
		cfg = append(cfg, "http.sslCAInfo", s.sync.CABundle)
	}
	if s.sync.InsecureSkipTLS {
		cfg = append(cfg, "http.sslVerify", "false")
	}
	env = append(env, "GIT_CONFIG_COUNT="+strconv.Itoa(len(cfg)/2))
	for i := 0; i < len(cfg)/2; i++ {
		env = append(env,
			fmt.Sprintf("GIT_CONFIG_KEY_%d=%s", i, cfg[2*i]),
			fmt.Sprintf("GIT_CONFIG_VALUE_%d=%s", i, cfg[2*i+1]))
	}
	return env
}

// Progress is one progress report of git: the phase ("Receiving objects", "Resolving
// deltas", "Writing objects", "Counting objects" from the host), the percentage, and the
// objects done out of Total (Total is zero when git does not know it).
type Progress struct {
	Phase   string `json:"phase"`
	Percent int    `json:"percent"`
	Done    int64  `json:"done"`
	Total   int64  `json:"total"`
}

// parseProgress reads a progress line of git's --progress output:
// "Receiving objects:  45% (9/20), 1.20 MiB | 1.00 MiB/s" or "remote: Enumerating objects: 5, done.".
func parseProgress(line string) (Progress, bool) {
	line = strings.TrimPrefix(line, "remote: ")
	phase, rest, ok := strings.Cut(line, ":")
	if !ok || phase == "" || !isPhase(phase) {
		return Progress{}, false
	}
	rest = strings.TrimSpace(rest)
	if pct, after, ok := strings.Cut(rest, "% ("); ok {
		p, err := strconv.Atoi(strings.TrimSpace(pct))
		if err != nil {
			return Progress{}, false
		}
		counts, _, ok := strings.Cut(after, ")")
		if !ok {
			return Progress{}, false
		}
		d, t, ok := strings.Cut(counts, "/")
		if !ok {
			return Progress{}, false
		}
		done, err1 := strconv.ParseInt(d, 10, 64)
		total, err2 := strconv.ParseInt(t, 10, 64)
		if err1 != nil || err2 != nil {
			return Progress{}, false
		}
		return Progress{Phase: phase, Percent: p, Done: done, Total: total}, true
	}
	// "5, done." or "5": a count without a known total.
	num, tail, _ := strings.Cut(rest, ",")
	n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
	if err != nil {
		return Progress{}, false
	}
	if strings.TrimSpace(tail) == "done." {
		return Progress{Phase: phase, Percent: 100, Done: n, Total: n}, true
	}
	if tail != "" {
		return Progress{}, false
	}
	return Progress{Phase: phase, Done: n}, true
}

// isPhase accepts git's phase names: capitalized words of letters.
func isPhase(s string) bool {
	if s[0] < 'A' || s[0] > 'Z' {
		return false
	}
	for _, r := range s {
		if r != ' ' && (r < 'a' || r > 'z') && (r < 'A' || r > 'Z') {
			return false
		}
	}
	return true
}

// Limits on what is kept of git's stderr for error messages.
const (
	maxTailLines = 20
	maxLineLen   = 400
	maxPartial   = 8 << 10
)

// stderrLog consumes git's stderr: progress lines (separated by \r) go to the callback, the
// other lines are kept, scrubbed, for the error message.
type stderrLog struct {
	scrub    func(string) string
	progress func(Progress)
	partial  []byte
	tail     []string
}

func (s *stderrLog) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexAny(p, "\r\n")
		if i < 0 {
			s.partial = append(s.partial, p...)
			if len(s.partial) > maxPartial {
				s.flush()
			}
			break
		}
		s.partial = append(s.partial, p[:i]...)
		s.flush()
		p = p[i+1:]
	}
	return n, nil
}

// flush handles the pending partial line.
func (s *stderrLog) flush() {
	line := strings.TrimSpace(string(s.partial))
	s.partial = s.partial[:0]
	if line == "" {
		return
	}
	if pr, ok := parseProgress(line); ok {
		if s.progress != nil {
			s.progress(pr)
		}
		return
	}
	line = s.scrub(line)
	if len(line) > maxLineLen {
		line = line[:maxLineLen] + "…"
	}
	if len(s.tail) == maxTailLines {
		s.tail = s.tail[1:]
	}
	s.tail = append(s.tail, line)
}
