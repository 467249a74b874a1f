package gitmirror

import (
	"context"
	"crypto/subtle"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/gittest"
)

const (
	goodToken = "ghs_G00dT0kenValue1234567890"
	badToken  = "ghs_BadT0kenValue0987654321"
	repoName  = "acme/widgets.git"
)

// host is a git server whose repositories accept one token, and the working copy that plays
// the host's users.
type host struct {
	srv    *gittest.Server
	url    string
	work   string
	mu     sync.Mutex
	pushes []gittest.RefUpdate
}

func tokenAuth(token string) AuthFunc {
	return func(context.Context, time.Duration) (forge.GitAuth, error) {
		return forge.GitAuth{Header: header(token)}, nil
	}
}

func header(token string) string { return gittest.BasicAuth("x-access-token", token) }

func newHost(t *testing.T) *host {
	t.Helper()
	h := &host{}
	h.srv = gittest.NewServer(t, gittest.HandlerOptions{
		Auth: func(r *http.Request, repo string, write bool) bool {
			_, p, ok := r.BasicAuth()
			return ok && subtle.ConstantTimeCompare([]byte(p), []byte(goodToken)) == 1
		},
		OnPush: func(repo string, u []gittest.RefUpdate) {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.pushes = append(h.pushes, u...)
		},
	})
	gittest.InitBare(t, h.srv.Root, repoName)
	h.url = h.srv.RepoURL(repoName)
	h.work = gittest.CloneWork(t, h.url, header(goodToken))
	return h
}

func (h *host) commit(t *testing.T, file, content string) string {
	t.Helper()
	sha := gittest.Commit(t, h.work, file, content, "change "+file)
	gittest.Push(t, h.work, header(goodToken), "HEAD:refs/heads/main")
	return sha
}

func (h *host) bare() string { return filepath.Join(h.srv.Root, filepath.FromSlash(repoName)) }

func newManager(t *testing.T, o Options) *Manager {
	t.Helper()
	return New(filepath.Join(t.TempDir(), "mirrors"), o)
}

func TestSyncClonesThenFetchesChanges(t *testing.T) {
	h := newHost(t)
	c1 := h.commit(t, "README.md", "one\n")
	gittest.Push(t, h.work, header(goodToken), "HEAD:refs/heads/feature")
	m := newManager(t, Options{})
	ctx := context.Background()

	var progress []Progress
	res, err := m.Sync(ctx, "widgets", h.url, tokenAuth(goodToken), SyncOptions{
		Progress: func(p Progress) { progress = append(progress, p) },
	})
	if err != nil {
		t.Fatalf("first Sync: %v", err)
	}
	want := []RefChange{
		{Ref: "refs/heads/feature", Old: forge.ZeroSHA, New: c1},
		{Ref: "refs/heads/main", Old: forge.ZeroSHA, New: c1},
	}
	if !res.Cloned || !equalChanges(res.Updated, want) || res.Duration <= 0 {
		t.Fatalf("first Sync = %+v, want cloned with %+v", res, want)
	}
	if !m.Exists("widgets") {
		t.Fatal("Exists is false after a clone")
	}
	if len(progress) == 0 {
		t.Error("no progress reported during the clone")
	}
	for _, p := range progress {
		if p.Phase == "" || p.Percent < 0 || p.Percent > 100 || (p.Total > 0 && p.Done > p.Total) {
			t.Errorf("implausible progress %+v", p)
		}
	}

	// Nothing changed on the host: nothing to report.
	res, err = m.Sync(ctx, "widgets", h.url, tokenAuth(goodToken), SyncOptions{})
	if err != nil || res.Cloned || len(res.Updated) != 0 {
		t.Fatalf("idle Sync = %+v, %v", res, err)
	}

	c2 := h.commit(t, "src/a.go", "package a\n")
	gittest.Git(t, h.work, "tag", "-a", "-m", "release", "v1.0.0")
	gittest.Push(t, h.work, header(goodToken), "refs/tags/v1.0.0")
	gittest.Push(t, h.work, header(goodToken), ":refs/heads/feature")
	tagObj := gittest.Git(t, h.work, "rev-parse", "v1.0.0")

	if ok, err := m.HasCommit(ctx, "widgets", c2); err != nil || ok {
		t.Fatalf("HasCommit(c2) before the fetch = %v, %v", ok, err)
	}
	res, err = m.Sync(ctx, "widgets", h.url, tokenAuth(goodToken), SyncOptions{})
	if err != nil {
		t.Fatalf("second Sync: %v", err)
	}
	want = []RefChange{
		{Ref: "refs/heads/feature", Old: c1, New: forge.ZeroSHA},
		{Ref: "refs/heads/main", Old: c1, New: c2},
		{Ref: "refs/tags/v1.0.0", Old: forge.ZeroSHA, New: tagObj},
	}
	if res.Cloned || !equalChanges(res.Updated, want) {
		t.Fatalf("second Sync = %+v, want %+v", res, want)
	}
	if ok, err := m.HasCommit(ctx, "widgets", c2); err != nil || !ok {
		t.Fatalf("HasCommit(c2) = %v, %v", ok, err)
	}
	if ok, err := m.HasCommit(ctx, "widgets", strings.Repeat("ab", 20)); err != nil || ok {
		t.Fatalf("HasCommit(unknown) = %v, %v", ok, err)
	}
	if got, err := m.Head(ctx, "widgets", "main"); err != nil || got != c2 {
		t.Fatalf("Head(main) = %q, %v; want %s", got, err, c2)
	}
	if got, err := m.Head(ctx, "widgets", "refs/tags/v1.0.0"); err != nil || got != c2 {
		t.Fatalf("Head(tag) = %q, %v; want the peeled commit %s", got, err, c2)
	}
	if _, err := m.Head(ctx, "widgets", "refs/heads/feature"); !errors.Is(err, ErrNoRef) {
		t.Fatalf("Head(deleted branch) error = %v, want ErrNoRef", err)
	}
	refs, err := m.Refs(ctx, "widgets")
	wantRefs := []forge.Ref{{Name: "refs/heads/main", SHA: c2}, {Name: "refs/tags/v1.0.0", SHA: tagObj}}
	if err != nil || len(refs) != 2 || refs[0] != wantRefs[0] || refs[1] != wantRefs[1] {
		t.Fatalf("Refs = %+v, %v; want %+v", refs, err, wantRefs)
	}
}

func equalChanges(a, b []RefChange) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestSyncFollowsANewRemoteURL(t *testing.T) {
	h := newHost(t)
	c1 := h.commit(t, "a", "a\n")
	m := newManager(t, Options{})
	ctx := context.Background()
	if _, err := m.Sync(ctx, "k", h.url, tokenAuth(goodToken), SyncOptions{}); err != nil {
		t.Fatal(err)
	}
	// The repository is renamed on the host.
	renamed := "acme/gadgets.git"
	if err := os.Rename(h.bare(), filepath.Join(h.srv.Root, renamed)); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Sync(ctx, "k", h.url, tokenAuth(goodToken), SyncOptions{}); !errors.Is(err, forge.ErrNotFound) {
		t.Fatalf("Sync at the old URL: %v, want ErrNotFound", err)
	}
	if _, err := m.Sync(ctx, "k", h.srv.RepoURL(renamed), tokenAuth(goodToken), SyncOptions{}); err != nil {
		t.Fatalf("Sync at the new URL: %v", err)
	}
	dir, _ := m.Dir("k")
	if got := gittest.Git(t, dir, "config", "remote.origin.url"); got != h.srv.RepoURL(renamed) {
		t.Fatalf("origin = %s", got)
	}
	if ok, _ := m.HasCommit(ctx, "k", c1); !ok {
		t.Fatal("mirror lost its commits")
	}
}

func TestPushSendsLocalRefs(t *testing.T) {
	h := newHost(t)
	c1 := h.commit(t, "a", "a\n")
	m := newManager(t, Options{})
	ctx := context.Background()
	if _, err := m.Sync(ctx, "w", h.url, tokenAuth(goodToken), SyncOptions{}); err != nil {
		t.Fatal(err)
	}
	dir, _ := m.Dir("w")
	local := gittest.Git(t, dir, "commit-tree", "-p", c1, "-m", "made by forgeway", c1+"^{tree}")
	gittest.Git(t, dir, "update-ref", "refs/heads/forgeway/fix", local)

	var phases []string
	err := m.Push(ctx, "w", h.url, []string{"refs/heads/forgeway/fix:refs/heads/forgeway/fix"}, tokenAuth(goodToken),
		SyncOptions{Progress: func(p Progress) { phases = append(phases, p.Phase) }})
	if err != nil {
		t.Fatalf("Push: %v", err)
	}
	if got := gittest.Git(t, h.bare(), "rev-parse", "refs/heads/forgeway/fix"); got != local {
		t.Fatalf("host has forgeway/fix at %s, want %s", got, local)
	}
	h.mu.Lock()
	last := h.pushes[len(h.pushes)-1]
	h.mu.Unlock()
	if last != (gittest.RefUpdate{Ref: "refs/heads/forgeway/fix", New: local}) {
		t.Fatalf("host saw %+v", last)
	}

	// The host moves main on; pushing the stale commit over it is not a fast-forward.
	h.commit(t, "b", "b\n")
	err = m.Push(ctx, "w", h.url, []string{local + ":refs/heads/main"}, tokenAuth(goodToken), SyncOptions{})
	if !errors.Is(err, ErrRejected) {
		t.Fatalf("non-fast-forward Push error = %v, want ErrRejected", err)
	}
	err = m.Push(ctx, "w", h.url, []string{"refs/heads/forgeway/fix:refs/heads/other"}, tokenAuth(badToken), SyncOptions{})
	if !errors.Is(err, forge.ErrUnauthorized) {
		t.Fatalf("Push with a bad token: %v, want ErrUnauthorized", err)
	}
	if err := m.Push(ctx, "nope", h.url, []string{"a:b"}, tokenAuth(goodToken), SyncOptions{}); !errors.Is(err, ErrNoMirror) {
		t.Fatalf("Push from a missing mirror: %v", err)
	}
	if err := m.Push(ctx, "w", h.url, []string{"--force"}, tokenAuth(goodToken), SyncOptions{}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Push with an option as refspec: %v", err)
	}
}

func TestWrongTokenIsUnauthorizedAndLeavesNothing(t *testing.T) {
	h := newHost(t)
	h.commit(t, "a", "a\n")
	m := newManager(t, Options{})
	_, err := m.Sync(context.Background(), "w", h.url, tokenAuth(badToken), SyncOptions{})
	if !errors.Is(err, forge.ErrUnauthorized) {
		t.Fatalf("Sync with a bad token: %v, want ErrUnauthorized", err)
	}
	var ge *Error
	if !errors.As(err, &ge) || ge.Hint == "" || !strings.Contains(err.Error(), ge.Hint) {
		t.Fatalf("error %q carries no hint", err)
	}
	if strings.Contains(err.Error(), badToken) {
		t.Fatalf("error leaks the token: %v", err)
	}
	if m.Exists("w") {
		t.Fatal("a failed clone left a mirror")
	}
	entries, _ := os.ReadDir(m.root)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".clone") || strings.HasSuffix(e.Name(), ".git") {
			t.Fatalf("a failed clone left %s", e.Name())
		}
	}
}

func TestMissingRepositoryIsNotFound(t *testing.T) {
	h := newHost(t)
	m := newManager(t, Options{})
	_, err := m.Sync(context.Background(), "w", h.srv.RepoURL("acme/none.git"), tokenAuth(goodToken), SyncOptions{})
	if !errors.Is(err, forge.ErrNotFound) {
		t.Fatalf("Sync of a missing repository: %v, want ErrNotFound", err)
	}
}

func TestExpiredCredentialIsMintedAgainOnce(t *testing.T) {
	h := newHost(t)
	h.commit(t, "a", "a\n")
	m := newManager(t, Options{Timeout: time.Minute})

	var calls []time.Duration
	auth := func(_ context.Context, minValidity time.Duration) (forge.GitAuth, error) {
		calls = append(calls, minValidity)
		if len(calls) == 1 { // a token that expired while the run waited
			return forge.GitAuth{Header: header(badToken), Expires: time.Now().Add(-time.Second)}, nil
		}
		return forge.GitAuth{Header: header(goodToken), Expires: time.Now().Add(time.Hour)}, nil
	}
	if _, err := m.Sync(context.Background(), "w", h.url, auth, SyncOptions{}); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	if len(calls) != 2 {
		t.Fatalf("AuthFunc called %d times, want 2", len(calls))
	}
	for _, v := range calls {
		if v <= time.Minute {
			t.Fatalf("minValidity %s does not outlive the %s operation timeout", v, time.Minute)
		}
	}

	// A refused credential that had not expired is not retried: minting again would not help.
	calls = nil
	auth2 := func(_ context.Context, minValidity time.Duration) (forge.GitAuth, error) {
		calls = append(calls, minValidity)
		return forge.GitAuth{Header: header(badToken), Expires: time.Now().Add(time.Hour)}, nil
	}
	if _, err := m.Sync(context.Background(), "w", h.url, auth2, SyncOptions{}); !errors.Is(err, forge.ErrUnauthorized) {
		t.Fatalf("Sync with a refused live token: %v", err)
	}
	if len(calls) != 1 {
		t.Fatalf("AuthFunc called %d times for a live refused token, want 1", len(calls))
	}

	failing := func(context.Context, time.Duration) (forge.GitAuth, error) {
		return forge.GitAuth{}, errors.New("app key revoked")
	}
	if _, err := m.Sync(context.Background(), "w", h.url, failing, SyncOptions{}); err == nil || !strings.Contains(err.Error(), "app key revoked") {
		t.Fatalf("Sync with a failing AuthFunc: %v", err)
	}
}

func TestConcurrentSyncsOnOneKeySerialize(t *testing.T) {
	h := newHost(t)
	h.commit(t, "a", "a\n")
	m := newManager(t, Options{})
	const n = 4
	var wg sync.WaitGroup
	var cloned atomic.Int32
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			res, err := m.Sync(context.Background(), "w", h.url, tokenAuth(goodToken), SyncOptions{})
			if res.Cloned {
				cloned.Add(1)
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent Sync: %v", err)
		}
	}
	if cloned.Load() != 1 {
		t.Fatalf("%d Syncs cloned, want exactly 1", cloned.Load())
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.locks) != 0 {
		t.Fatalf("lock table keeps %d entries after all operations ended", len(m.locks))
	}
}

func TestAnotherProcessLockMakesSyncWait(t *testing.T) {
	h := newHost(t)
	h.commit(t, "a", "a\n")
	root := filepath.Join(t.TempDir(), "shared")
	replica1, replica2 := New(root, Options{}), New(root, Options{})

	release, err := replica1.acquire(context.Background(), "w")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := replica2.Sync(context.Background(), "w", h.url, tokenAuth(goodToken), SyncOptions{})
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("Sync ran while another manager held the lock: %v", err)
	case <-time.After(300 * time.Millisecond):
	}

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := replica2.Refs(ctx, "w"); !errors.Is(err, ErrNoMirror) {
		t.Fatalf("Refs while locked: %v, want ErrNoMirror without waiting", err)
	}
	if err := replica2.Push(ctx, "w", h.url, []string{"a:b"}, nil, SyncOptions{}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Push waiting past its context: %v, want DeadlineExceeded", err)
	}

	release()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Sync after the lock was released: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Sync did not proceed after the lock was released")
	}
}

func TestLockHeldByAnotherProcess(t *testing.T) {
	flock, err := exec.LookPath("flock")
	if err != nil {
		t.Skip("flock(1) not installed")
	}
	h := newHost(t)
	h.commit(t, "a", "a\n")
	m := newManager(t, Options{})
	if err := os.MkdirAll(m.root, 0o700); err != nil {
		t.Fatal(err)
	}
	// Another process takes the key's lock, signals it holds it, and keeps it a while.
	held := filepath.Join(t.TempDir(), "held")
	other := exec.Command(flock, "--exclusive", m.lockPath("w"), "sh", "-c", "touch "+held+"; sleep 0.7")
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = other.Wait() })
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(held); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the other process never took the lock")
		}
	}
	start := time.Now()
	if _, err := m.Sync(context.Background(), "w", h.url, tokenAuth(goodToken), SyncOptions{}); err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited < 400*time.Millisecond {
		t.Fatalf("Sync finished after %s while another process held the lock for 0.7 s", waited)
	}
}

// gitWrapper writes a git executable that records its arguments, its process id and git's
// own trace of every sub-process it starts, then runs the real git.
func gitWrapper(t *testing.T) (path, logFile, pidFile string) {
	t.Helper()
	dir := t.TempDir()
	path = filepath.Join(dir, "git")
	logFile = filepath.Join(dir, "args.log")
	pidFile = filepath.Join(dir, "pid")
	script := "#!/bin/sh\n" +
		"echo $$ > " + pidFile + "\n" +
		"printf '%s\\n' \"$*\" >> " + logFile + "\n" +
		"GIT_TRACE=" + logFile + " exec git \"$@\"\n"
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path, logFile, pidFile
}

func TestCredentialNeverOnDiskNorInArguments(t *testing.T) {
	h := newHost(t)
	c1 := h.commit(t, "a", "a\n")
	git, logFile, _ := gitWrapper(t)
	m := newManager(t, Options{GitPath: git})
	ctx := context.Background()
	auth := tokenAuth(goodToken)

	if _, err := m.Sync(ctx, "w", h.url, auth, SyncOptions{}); err != nil {
		t.Fatal(err)
	}
	h.commit(t, "b", "b\n")
	if _, err := m.Sync(ctx, "w", h.url, auth, SyncOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := m.Push(ctx, "w", h.url, []string{c1 + ":refs/heads/pushed"}, auth, SyncOptions{}); err != nil {
		t.Fatal(err)
	}
	// A failure too: its stderr goes through the scrubber into an error, never to disk.
	if _, err := m.Sync(ctx, "w", h.url, tokenAuth(badToken), SyncOptions{}); err == nil {
		t.Fatal("Sync with a bad token succeeded")
	}

	forms := []string{goodToken, badToken, header(goodToken), strings.TrimPrefix(header(goodToken), "Authorization: Basic ")}
	files := 0
	err := filepath.WalkDir(m.root, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		files++
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, f := range forms {
			if strings.Contains(string(b), f) {
				t.Errorf("%s holds the credential", p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 10 {
		t.Fatalf("walked only %d files: the mirror is not where the test looks", files)
	}
	log, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"clone --mirror", "fetch --prune", "push", "remote-http"} {
		if !strings.Contains(string(log), want) {
			t.Fatalf("argument log misses %q: the wrapper did not see git run\n%s", want, log)
		}
	}
	for _, f := range forms {
		if strings.Contains(string(log), f) {
			t.Fatalf("a git command line holds the credential:\n%s", log)
		}
	}
}

func TestURLWithCredentialsIsRefused(t *testing.T) {
	m := newManager(t, Options{})
	for _, u := range []string{
		"https://x-access-token:" + goodToken + "@example.com/a.git",
		"https://" + goodToken + "@example.com/a.git",
		"file:///etc",
		"ext::sh -c touch% /tmp/pwned",
		"git@example.com:a/b.git",
		"https://example.com/a.git\nfoo",
	} {
		_, err := m.Sync(context.Background(), "w", u, nil, SyncOptions{})
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("Sync(%q) = %v, want ErrInvalid", u, err)
		}
		if err != nil && strings.Contains(err.Error(), goodToken) {
			t.Errorf("error repeats the credential: %v", err)
		}
	}
	if m.Exists("w") {
		t.Fatal("a refused URL created a mirror")
	}
}

// hangingHost accepts connections and never answers until the client goes away.
func hangingHost(t *testing.T) (url string, started, ended chan struct{}) {
	t.Helper()
	started, ended = make(chan struct{}, 10), make(chan struct{}, 10)
	srv := gittest.NewServer(t, gittest.HandlerOptions{
		Auth: func(r *http.Request, _ string, _ bool) bool {
			started <- struct{}{}
			select {
			case <-r.Context().Done():
				ended <- struct{}{}
			case <-time.After(15 * time.Second): // bounded, so a broken kill fails instead of hanging
			}
			return false
		},
	})
	gittest.InitBare(t, srv.Root, "slow.git")
	return srv.RepoURL("slow.git"), started, ended
}

func TestCancelKillsGitAndItsChildren(t *testing.T) {
	url, started, ended := hangingHost(t)
	git, _, pidFile := gitWrapper(t)
	m := newManager(t, Options{GitPath: git})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := m.Sync(ctx, "w", url, tokenAuth(goodToken), SyncOptions{})
		done <- err
	}()
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("git never reached the host")
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled Sync: %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Sync did not return after cancel")
	}
	// git-remote-http held the connection: the host sees it close only if the child died.
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("the host still has git's connection open: a child of git survived")
	}
	pid, err := readPID(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	if live := liveInGroup(t, pid); len(live) > 0 {
		t.Fatalf("processes of git's group still alive: %v", live)
	}
	if m.Exists("w") {
		t.Fatal("a cancelled clone left a mirror")
	}
}

func TestTimeoutIsClassified(t *testing.T) {
	url, _, _ := hangingHost(t)
	m := newManager(t, Options{Timeout: 300 * time.Millisecond})
	_, err := m.Sync(context.Background(), "w", url, nil, SyncOptions{})
	var ge *Error
	if !errors.Is(err, ErrTimeout) || !errors.As(err, &ge) || !strings.Contains(ge.Hint, "timeout") {
		t.Fatalf("Sync past its timeout: %v, want ErrTimeout with a hint", err)
	}
}

func readPID(file string) (int, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

// liveInGroup lists the processes of process group pgid that are not zombies.
func liveInGroup(t *testing.T, pgid int) []string {
	t.Helper()
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	var live []string
	for _, s := range stats {
		b, err := os.ReadFile(s)
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...; comm may hold spaces, so split after ')'.
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b)[i+1:])
		if len(f) < 3 || f[0] == "Z" || f[0] == "X" {
			continue
		}
		if g, _ := strconv.Atoi(f[2]); g == pgid {
			live = append(live, strings.TrimSpace(string(b)[:i+1]))
		}
	}
	return live
}

func TestTLSTrustFromCABundle(t *testing.T) {
	root := t.TempDir()
	gittest.InitBare(t, root, "r.git")
	work := gittest.InitWork(t)
	gittest.Commit(t, work, "a", "a\n", "first")
	gittest.Git(t, work, "push", "--quiet", filepath.Join(root, "r.git"), "HEAD:refs/heads/main")

	srv := httptest.NewTLSServer(gittest.Handler(root, gittest.HandlerOptions{}))
	defer srv.Close()
	url := srv.URL + "/r.git"
	bundle := filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(bundle, pemBytes, 0o644); err != nil {
		t.Fatal(err)
	}
	m := newManager(t, Options{})
	ctx := context.Background()

	_, err := m.Sync(ctx, "tls", url, nil, SyncOptions{})
	var ge *Error
	if !errors.Is(err, ErrTLS) || !errors.As(err, &ge) || !strings.Contains(ge.Hint, "CA bundle") {
		t.Fatalf("Sync against an untrusted certificate: %v, want ErrTLS with a CA bundle hint", err)
	}
	if _, err := m.Sync(ctx, "tls", url, nil, SyncOptions{CABundle: bundle}); err != nil {
		t.Fatalf("Sync with the CA bundle: %v", err)
	}
	if _, err := m.Sync(ctx, "insecure", url, nil, SyncOptions{InsecureSkipTLS: true}); err != nil {
		t.Fatalf("Sync with verification off: %v", err)
	}
}

func TestRemove(t *testing.T) {
	h := newHost(t)
	h.commit(t, "a", "a\n")
	m := newManager(t, Options{})
	if err := m.Remove("w"); err != nil {
		t.Fatalf("Remove of a missing mirror: %v", err)
	}
	if _, err := m.Sync(context.Background(), "w", h.url, tokenAuth(goodToken), SyncOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := m.Remove("w"); err != nil {
		t.Fatal(err)
	}
	if m.Exists("w") {
		t.Fatal("mirror exists after Remove")
	}
	if _, err := m.Refs(context.Background(), "w"); !errors.Is(err, ErrNoMirror) {
		t.Fatalf("Refs after Remove: %v", err)
	}
	entries, _ := os.ReadDir(m.root)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".trash") {
			t.Fatalf("Remove left %s", e.Name())
		}
	}
	if err := m.Remove("../etc"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Remove of a bad key: %v", err)
	}
}
