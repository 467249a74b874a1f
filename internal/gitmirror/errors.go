package gitmirror

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"

	"github.com/forgeway/forgeway/internal/forge"
)

// Failure kinds of a git run, beside forge.ErrUnauthorized, forge.ErrForbidden and
// forge.ErrNotFound, which Error also wraps.
var (
	// ErrTLS: git did not trust the host's certificate.
	ErrTLS = errors.New("TLS verification of the host failed")
	// ErrTimeout: the git run outlived its time limit.
	ErrTimeout = errors.New("git operation timed out")
	// ErrUnreachable: git could not reach the host (DNS, connection, proxy).
	ErrUnreachable = errors.New("the host is unreachable")
	// ErrRejected: the host refused a pushed ref update.
	ErrRejected = errors.New("the host rejected the push")
)

// Error is a failed git run: what was being done, the kind of failure (one of the sentinel
// errors, context.Canceled, or nil when unknown), the last lines git wrote (with any
// credential removed) and what to do about it.
type Error struct {
	Op     string
	Err    error
	Detail string
	Hint   string

	exitCode int
}

// Error says what failed, why, git's last words and what to do.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Op)
	b.WriteString(": ")
	if e.Err != nil {
		b.WriteString(e.Err.Error())
	} else {
		b.WriteString("git failed")
	}
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	if e.Hint != "" {
		b.WriteString(" (")
		b.WriteString(e.Hint)
		b.WriteString(")")
	}
	return b.String()
}

// Unwrap returns the failure kind.
func (e *Error) Unwrap() error { return e.Err }

// rule maps stderr fragments (lower case) to a failure kind.
type rule struct {
	match []string
	err   error
	hint  string
}

// rules are tried in order; the first whose fragment appears in git's stderr wins.
var rules = []rule{
	{[]string{"ssl certificate problem", "server certificate verification failed", "certificate verify failed",
		"unable to get local issuer certificate", "self signed certificate", "self-signed certificate"},
		ErrTLS, "git does not trust the host's certificate: add the host's CA bundle (PEM) to the integration; switch TLS verification off only for a test host"},
	{[]string{"permission to ", "write access to repository not granted", "you are not allowed to push"},
		forge.ErrForbidden, "the credential is valid but may not do this: give it write access to the repository (read access for a fetch)"},
	{[]string{"authentication failed", "returned error: 401", "returned error: 403", "could not read username",
		"could not read password", "terminal prompts disabled", "invalid username or password", "http basic: access denied"},
		forge.ErrUnauthorized, "the host refused the credential: check that the token is valid, not expired or revoked, and has access to the repository (write access to push)"},
	{[]string{"repository not found", "returned error: 404", "does not appear to be a git repository", "' not found",
		"does not exist or you do not have permission"},
		forge.ErrNotFound, "check that the repository still exists at this URL and that the credential can see it (hosts answer \"not found\" to credentials without access)"},
	{[]string{"could not resolve host", "could not resolve proxy", "failed to connect", "connection refused", "couldn't connect to server", "no route to host"},
		ErrUnreachable, "check the host URL, DNS, and any proxy (HTTPS_PROXY) or firewall between Forgeway and the host"},
	{[]string{"operation timed out", "connection timed out"},
		ErrTimeout, "the network to the host is too slow or blocked: check it, or raise the mirror timeout for very large repositories"},
	{[]string{"[rejected]", "[remote rejected]", "non-fast-forward", "failed to push some refs"},
		ErrRejected, "the host refused the ref update (not a fast-forward, or a protected branch): fetch, rebase and push again, or check the branch protection"},
}

// classify turns a failed git run into an *Error from the context and git's stderr (already
// scrubbed).
func (m *Manager) classify(ctx context.Context, op string, runErr error, tail []string) error {
	e := &Error{Op: op, Detail: lastLines(tail, 5)}
	var exit *exec.ExitError
	if errors.As(runErr, &exit) {
		e.exitCode = exit.ExitCode()
	}
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		e.Err = ErrTimeout
		e.Hint = fmt.Sprintf("git ran longer than its %s limit: check the network to the host, or raise the mirror timeout for very large repositories", m.timeout)
		return e
	case ctx.Err() != nil:
		e.Err = ctx.Err()
		return e
	case errors.Is(runErr, exec.ErrNotFound):
		e.Err = runErr
		e.Hint = "install git or point GitPath at it"
		return e
	}
	text := strings.ToLower(strings.Join(tail, "\n"))
	for _, r := range rules {
		for _, frag := range r.match {
			if strings.Contains(text, frag) {
				e.Err, e.Hint = r.err, r.hint
				return e
			}
		}
	}
	if e.Detail == "" {
		e.Detail = runErr.Error()
	}
	return e
}

// lastLines joins the last n lines that say something, favouring git's own "fatal:" and
// "error:" lines over the host's chatter.
func lastLines(lines []string, n int) string {
	var keep []string
	for _, l := range lines {
		if strings.HasPrefix(l, "fatal:") || strings.HasPrefix(l, "error:") || strings.HasPrefix(l, "!") {
			keep = append(keep, l)
		}
	}
	if len(keep) == 0 {
		keep = lines
	}
	if len(keep) > n {
		keep = keep[len(keep)-n:]
	}
	return strings.Join(keep, "; ")
}
