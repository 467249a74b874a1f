package gittest

import (
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"testing"
)

type pushLog struct {
	mu    sync.Mutex
	repos []string
	ups   [][]RefUpdate
}

func (p *pushLog) record(repo string, u []RefUpdate) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.repos = append(p.repos, repo)
	p.ups = append(p.ups, u)
}

func (p *pushLog) last(t *testing.T) (string, []RefUpdate) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.repos) == 0 {
		t.Fatal("OnPush was not called")
	}
	return p.repos[len(p.repos)-1], p.ups[len(p.ups)-1]
}

func TestCloneCommitPushRoundTrip(t *testing.T) {
	var pushes pushLog
	var writes, reads int
	var mu sync.Mutex
	srv := NewServer(t, HandlerOptions{
		StripPrefix: "/scm",
		Auth: func(r *http.Request, repo string, write bool) bool {
			mu.Lock()
			defer mu.Unlock()
			if repo != "acme/widgets.git" {
				t.Errorf("Auth got repo %q", repo)
			}
			if write {
				writes++
				return CheckBasic(r, "x", "writer")
			}
			reads++
			return CheckBasic(r, "x", "writer") || CheckBasic(r, "x", "reader")
		},
		OnPush: pushes.record,
	})
	bare := InitBare(t, srv.Root, "acme/widgets.git")
	url := srv.RepoURL("acme/widgets.git")
	if !strings.HasPrefix(url, srv.URL+"/scm/") {
		t.Fatalf("RepoURL = %q, want it under the prefix", url)
	}

	work := CloneWork(t, url, BasicAuth("x", "writer"))
	first := Commit(t, work, "README.md", "hello\n", "first")
	Push(t, work, BasicAuth("x", "writer"), "HEAD:refs/heads/main")

	if got := Git(t, bare, "rev-parse", "refs/heads/main"); got != first {
		t.Fatalf("server main = %s, want %s", got, first)
	}
	repo, ups := pushes.last(t)
	if repo != "acme/widgets.git" || len(ups) != 1 || ups[0] != (RefUpdate{Ref: "refs/heads/main", New: first}) {
		t.Fatalf("OnPush(%q, %+v), want main created at %s", repo, ups, first)
	}

	second := Commit(t, work, "dir/a.txt", "a\n", "second")
	Push(t, work, BasicAuth("x", "writer"), "HEAD:refs/heads/main")
	_, ups = pushes.last(t)
	if len(ups) != 1 || ups[0] != (RefUpdate{Ref: "refs/heads/main", Old: first, New: second}) {
		t.Fatalf("second push updates = %+v", ups)
	}

	Push(t, work, BasicAuth("x", "writer"), "HEAD:refs/heads/feature")
	Push(t, work, BasicAuth("x", "writer"), ":refs/heads/feature")
	_, ups = pushes.last(t)
	if len(ups) != 1 || ups[0] != (RefUpdate{Ref: "refs/heads/feature", Old: second}) {
		t.Fatalf("delete push updates = %+v", ups)
	}

	// A reader can clone but not push.
	other := CloneWork(t, url, BasicAuth("x", "reader"))
	Commit(t, other, "b.txt", "b\n", "by reader")
	cmd := exec.Command("git", "push", "origin", "HEAD:refs/heads/reader")
	cmd.Dir = other
	cmd.Env = Env(t, BasicAuth("x", "reader"))
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Fatalf("push with read-only credential succeeded:\n%s", out)
	}
	mu.Lock()
	defer mu.Unlock()
	if reads == 0 || writes == 0 {
		t.Fatalf("Auth saw %d reads and %d writes", reads, writes)
	}
}

func TestUnauthorizedAnswers401WithChallenge(t *testing.T) {
	srv := NewServer(t, HandlerOptions{Auth: func(*http.Request, string, bool) bool { return false }})
	InitBare(t, srv.Root, "r.git")
	resp, err := http.Get(srv.RepoURL("r.git") + "/info/refs?service=git-upload-pack")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") != `Basic realm="git"` {
		t.Fatalf("got %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
}

func TestPathsOutsideRepositoriesAre404(t *testing.T) {
	srv := NewServer(t, HandlerOptions{StripPrefix: "/scm"})
	InitBare(t, srv.Root, "r.git")
	for _, p := range []string{
		"/r.git/info/refs",             // outside the prefix
		"/scm/../r.git/info/refs",      // traversal
		"/scm/r.git/something",         // not a git endpoint
		"/scm/missing.git/info/refs",   // no such repository
		"/scm//info/refs",              // no repository at all
		"/scm/a/../../r.git/info/refs", // traversal after the prefix
	} {
		resp, err := http.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404", p, resp.StatusCode)
		}
	}
}

func TestChunkedPushIsBuffered(t *testing.T) {
	var pushes pushLog
	srv := NewServer(t, HandlerOptions{OnPush: pushes.record})
	InitBare(t, srv.Root, "big.git")
	work := CloneWork(t, srv.RepoURL("big.git"), "")
	// Random-looking content does not compress, so the pack exceeds the tiny post buffer
	// below and git sends it chunked.
	var b strings.Builder
	for i := range 20000 {
		b.WriteString(strings.Repeat(string(rune('a'+i%26)), i%7+1))
		b.WriteByte(byte('0' + i%10))
	}
	sha := Commit(t, work, "big.txt", b.String(), "big")
	cmd := exec.Command("git", "-c", "http.postBuffer=1024", "push", "origin", "HEAD:refs/heads/main")
	cmd.Dir = work
	cmd.Env = Env(t, "")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("chunked push: %v\n%s", err, out)
	}
	if _, ups := pushes.last(t); len(ups) != 1 || ups[0].New != sha {
		t.Fatalf("updates = %+v, want main at %s", ups, sha)
	}
}
