// Package gittest serves real bare repositories over git's smart HTTP protocol (git
// http-backend behind net/http/cgi) and drives the git CLI for tests, so that code which talks
// to Git hosts can be tested against real git instead of a mock. It is a test helper: only
// tests import it.
package gittest

import (
	"bytes"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// RefUpdate is one ref a push changed. Old is empty for a created ref and New is empty for a
// deleted one.
type RefUpdate struct {
	Ref string
	Old string
	New string
}

// HandlerOptions tune Handler.
type HandlerOptions struct {
	// Auth decides whether a request may proceed. repo is the repository's path under the
	// root as it appears in the URL ("acme/widgets.git"); write is true for receive-pack
	// (push). Returning false answers 401 with a Basic challenge. Nil allows everything.
	Auth func(r *http.Request, repo string, write bool) bool
	// OnPush is called after a receive-pack request completed, with the refs it changed
	// (found by comparing the refs before and after). It is not called when nothing changed.
	OnPush func(repo string, updates []RefUpdate)
	// StripPrefix is removed from the request path before the repository is looked up, for
	// servers that mount git under a path ("/scm"). Requests outside it get 404.
	StripPrefix string
}

// maxBufferedBody bounds the chunked request bodies Handler buffers for CGI, which cannot
// stream a body of unknown length.
const maxBufferedBody = 64 << 20

// Handler serves the bare repositories under root over smart HTTP, push included. It runs
// git-http-backend from git's exec path with a configuration isolated from the machine's.
func Handler(root string, o HandlerOptions) http.Handler {
	execPath := "/usr/lib/git-core"
	if out, err := exec.Command("git", "--exec-path").Output(); err == nil {
		execPath = strings.TrimSpace(string(out))
	}
	return &handler{
		root: root,
		o:    o,
		cgi: &cgi.Handler{
			Path: filepath.Join(execPath, "git-http-backend"),
			Dir:  root,
			Env: append(configEnv(
				"GIT_PROJECT_ROOT="+root,
				"GIT_HTTP_EXPORT_ALL=1",
			), configPairs("http.receivepack", "true")...),
			Stderr: io.Discard,
			Logger: log.New(io.Discard, "", 0),
		},
		locks: map[string]*sync.Mutex{},
	}
}

type handler struct {
	root  string
	o     HandlerOptions
	cgi   *cgi.Handler
	mu    sync.Mutex
	locks map[string]*sync.Mutex // per repository, so that concurrent pushes diff cleanly
}

// gitSuffixes are the URL endings git-http-backend serves; what precedes one is the repo.
var gitSuffixes = []string{"/info/refs", "/git-upload-pack", "/git-receive-pack", "/HEAD"}

func splitRepo(p string) (repo, rest string, ok bool) {
	for _, s := range gitSuffixes {
		if strings.HasSuffix(p, s) {
			return strings.TrimSuffix(p, s), s, true
		}
	}
	if i := strings.Index(p, "/objects/"); i >= 0 {
		return p[:i], p[i:], true
	}
	return "", "", false
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	if h.o.StripPrefix != "" {
		prefix := strings.TrimSuffix(h.o.StripPrefix, "/")
		if !strings.HasPrefix(p, prefix+"/") {
			http.NotFound(w, r)
			return
		}
		p = strings.TrimPrefix(p, prefix)
	}
	repo, rest, ok := splitRepo(p)
	repo = strings.TrimPrefix(repo, "/")
	if !ok || repo == "" || path.Clean("/"+repo) != "/"+repo || strings.Contains(repo, "..") {
		http.NotFound(w, r)
		return
	}
	write := rest == "/git-receive-pack" ||
		(rest == "/info/refs" && r.URL.Query().Get("service") == "git-receive-pack")
	if h.o.Auth != nil && !h.o.Auth(r, repo, write) {
		w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
		http.Error(w, "authentication required", http.StatusUnauthorized)
		return
	}

	req := r.Clone(r.Context())
	req.URL.Path = p
	req.URL.RawPath = ""
	if len(r.TransferEncoding) > 0 && r.TransferEncoding[0] == "chunked" {
		// git sends bodies larger than http.postBuffer chunked; CGI needs a length.
		body, err := io.ReadAll(io.LimitReader(r.Body, maxBufferedBody+1))
		if err != nil || len(body) > maxBufferedBody {
			http.Error(w, "request body unreadable or too large", http.StatusRequestEntityTooLarge)
			return
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.ContentLength = int64(len(body))
		req.TransferEncoding = nil
	}

	if rest != "/git-receive-pack" || h.o.OnPush == nil {
		h.cgi.ServeHTTP(w, req)
		return
	}

	dir := filepath.Join(h.root, filepath.FromSlash(repo))
	lock := h.repoLock(repo)
	lock.Lock()
	defer lock.Unlock()
	before, err := listRefs(dir)
	if err != nil {
		http.Error(w, "cannot read refs", http.StatusNotFound)
		return
	}
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	h.cgi.ServeHTTP(sw, req)
	after, err := listRefs(dir)
	if err != nil || sw.status != http.StatusOK {
		return
	}
	if updates := diffRefs(before, after); len(updates) > 0 {
		h.o.OnPush(repo, updates)
	}
}

func (h *handler) repoLock(repo string) *sync.Mutex {
	h.mu.Lock()
	defer h.mu.Unlock()
	l, ok := h.locks[repo]
	if !ok {
		l = &sync.Mutex{}
		h.locks[repo] = l
	}
	return l
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// listRefs reads every ref of the repository at dir as name → object id.
func listRefs(dir string) (map[string]string, error) {
	cmd := exec.Command("git", "for-each-ref", "--format=%(objectname) %(refname)")
	cmd.Dir = dir
	cmd.Env = configEnv("GIT_DIR=" + dir)
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("list refs of %s: %w", dir, err)
	}
	refs := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if sha, name, ok := strings.Cut(line, " "); ok {
			refs[name] = sha
		}
	}
	return refs, nil
}

func diffRefs(before, after map[string]string) []RefUpdate {
	var out []RefUpdate
	for name, sha := range after {
		if before[name] != sha {
			out = append(out, RefUpdate{Ref: name, Old: before[name], New: sha})
		}
	}
	for name, sha := range before {
		if _, ok := after[name]; !ok {
			out = append(out, RefUpdate{Ref: name, Old: sha})
		}
	}
	slices.SortFunc(out, func(a, b RefUpdate) int { return strings.Compare(a.Ref, b.Ref) })
	return out
}

// Server is a git smart-HTTP server on a loopback port, closed when the test ends.
type Server struct {
	// URL is the server's base URL, without StripPrefix.
	URL string
	// Root is the directory holding the served bare repositories.
	Root string
	// Prefix is HandlerOptions.StripPrefix, kept for RepoURL.
	Prefix string
}

// NewServer starts a Server over a fresh temporary root.
func NewServer(t testing.TB, o HandlerOptions) *Server {
	t.Helper()
	root := t.TempDir()
	srv := httptest.NewServer(Handler(root, o))
	t.Cleanup(srv.Close)
	return &Server{URL: srv.URL, Root: root, Prefix: strings.TrimSuffix(o.StripPrefix, "/")}
}

// RepoURL is the clone URL of the repository at name under Root.
func (s *Server) RepoURL(name string) string {
	return s.URL + s.Prefix + "/" + strings.TrimPrefix(name, "/")
}

// Test identity, so that commits work without any global git configuration.
const (
	authorName  = "Forgeway Test"
	authorEmail = "test@forgeway.invalid"
)

// configPairs renders git configuration as GIT_CONFIG_COUNT environment variables, the way
// to configure one git process without arguments or files.
func configPairs(kv ...string) []string {
	n := len(kv) / 2
	env := []string{fmt.Sprintf("GIT_CONFIG_COUNT=%d", n)}
	for i := 0; i < n; i++ {
		env = append(env,
			fmt.Sprintf("GIT_CONFIG_KEY_%d=%s", i, kv[2*i]),
			fmt.Sprintf("GIT_CONFIG_VALUE_%d=%s", i, kv[2*i+1]))
	}
	return env
}

// configEnv is an environment that ignores the machine's and the user's git configuration.
func configEnv(extra ...string) []string {
	return append([]string{
		"PATH=" + os.Getenv("PATH"),
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_TERMINAL_PROMPT=0",
		"LC_ALL=C",
	}, extra...)
}

// Env is the isolated environment the helpers run git with: no system or global
// configuration, HOME set to an empty temporary directory, a fixed author and committer, main
// as the default branch, and authHeader (when not empty) as http.extraHeader.
func Env(t testing.TB, authHeader string) []string {
	t.Helper()
	cfg := []string{"init.defaultBranch", "main", "credential.helper", ""}
	if authHeader != "" {
		cfg = append(cfg, "http.extraHeader", authHeader)
	}
	env := configEnv(
		"HOME="+t.TempDir(),
		"GIT_AUTHOR_NAME="+authorName,
		"GIT_AUTHOR_EMAIL="+authorEmail,
		"GIT_COMMITTER_NAME="+authorName,
		"GIT_COMMITTER_EMAIL="+authorEmail,
	)
	return append(env, configPairs(cfg...)...)
}

// Git runs git with args in dir under Env(t, "") and returns its trimmed standard output. It
// fails the test when git fails.
func Git(t testing.TB, dir string, args ...string) string {
	t.Helper()
	return gitEnv(t, dir, Env(t, ""), args...)
}

func gitEnv(t testing.TB, dir string, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("git %s in %s: %v\n%s", args[0], dir, err, stderr.String())
	}
	return strings.TrimSpace(stdout.String())
}

// InitBare creates an empty bare repository named name (a slash-separated path such as
// "acme/widgets.git") under root, with main as its default branch, and returns its directory.
func InitBare(t testing.TB, root, name string) string {
	t.Helper()
	dir := filepath.Join(root, filepath.FromSlash(name))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("create %s: %v", dir, err)
	}
	Git(t, dir, "init", "--quiet", "--bare", "--initial-branch=main", dir)
	return dir
}

// InitWork creates an empty non-bare repository with main as its branch and returns its
// directory.
func InitWork(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	Git(t, dir, "init", "--quiet", "--initial-branch=main", dir)
	return dir
}

// Commit writes content to file (a slash-separated path inside workdir), commits it on the
// current branch with message and returns the new commit's id.
func Commit(t testing.TB, workdir, file, content, message string) string {
	t.Helper()
	p := filepath.Join(workdir, filepath.FromSlash(file))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatalf("create directory for %s: %v", file, err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatalf("write %s: %v", file, err)
	}
	Git(t, workdir, "add", "--", file)
	Git(t, workdir, "commit", "--quiet", "-m", message)
	return Git(t, workdir, "rev-parse", "HEAD")
}

// CloneWork clones url into a new temporary working directory and returns it. authHeader,
// when not empty, is a complete header line ("Authorization: Basic …") sent through the
// environment, as production code does.
func CloneWork(t testing.TB, url, authHeader string) string {
	t.Helper()
	dir := t.TempDir()
	gitEnv(t, dir, Env(t, authHeader), "clone", "--quiet", url, dir)
	return dir
}

// Push pushes refspec from workdir to its origin, authenticating with authHeader when it is
// not empty.
func Push(t testing.TB, workdir, authHeader, refspec string) {
	t.Helper()
	gitEnv(t, workdir, Env(t, authHeader), "push", "--quiet", "origin", refspec)
}

// BasicAuth returns the header line for HTTP basic authentication with user and password,
// the form forge.GitAuth.Header takes.
func BasicAuth(user, password string) string {
	return "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
}

// CheckBasic reports whether r carries basic credentials user and password.
func CheckBasic(r *http.Request, user, password string) bool {
	u, p, ok := r.BasicAuth()
	return ok && subtle.ConstantTimeCompare([]byte(u), []byte(user)) == 1 &&
		subtle.ConstantTimeCompare([]byte(p), []byte(password)) == 1
}
