package bitbucketfake

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	"github.com/forgeway/forgeway/internal/gittest"
)

// AddGitRepository creates a repository whose git data is real: a bare repository served at
// /scm/{project key in lower case}/{slug}.git through git http-backend, with a main branch
// holding one commit. Pushes to it deliver repo:refs_changed.
func (s *Server) AddGitRepository(projectKey, slug string) Repo {
	s.t.Helper()
	slug = strings.ToLower(slug)
	gitPath := strings.ToLower(projectKey) + "/" + slug + ".git"
	dir := gittest.InitBare(s.t, s.gitRoot, gitPath)
	work := gittest.InitWork(s.t)
	gittest.Commit(s.t, work, "README.md", "# "+slug+"\n", "Initial commit")
	gittest.Git(s.t, work, "push", "--quiet", dir, "main:refs/heads/main")
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.repoInfo(s.addRepoLocked(Repo{Project: projectKey, Slug: slug, DefaultBranch: "main"}, dir))
}

// GitDir is the bare repository behind a repository made by AddGitRepository.
func (s *Server) GitDir(fullName string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mustRepoLocked(fullName).gitDir
}

// gitHandler serves /scm/{project}/{repo}.git: it checks the credential as Bitbucket does
// (a token that may read the repository, or write it for a push; anonymous reads of public
// repositories), then hands the request to git http-backend. Pushes to one repository are
// serialized so that the refs_changed delivery names who pushed.
func (s *Server) gitHandler() http.Handler {
	backend := gittest.Handler(s.gitRoot, gittest.HandlerOptions{StripPrefix: "/scm", OnPush: s.onPush})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rest, _ := strings.CutPrefix(r.URL.Path, "/scm/")
		key, after, ok1 := strings.Cut(rest, "/")
		slug, tail, ok2 := strings.Cut(after, "/")
		if !ok1 || !ok2 {
			http.NotFound(w, r)
			return
		}
		slug = strings.TrimSuffix(slug, ".git")
		s.mu.Lock()
		repo := s.findRepoLocked(key, slug)
		who, authFail := s.authenticate(r)
		var p perm
		readable := false
		if repo != nil && authFail == nil {
			p, readable = s.perm(who, repo), s.readable(who, repo)
		}
		s.mu.Unlock()
		if repo == nil || repo.gitDir == "" {
			http.Error(w, "Repository not found", http.StatusNotFound)
			return
		}
		push := r.URL.Query().Get("service") == "git-receive-pack" || strings.HasSuffix(tail, "git-receive-pack")
		switch {
		case authFail != nil || (who.anonymous() && (push || !readable)):
			w.Header().Set("WWW-Authenticate", `Basic realm="Atlassian Bitbucket"`)
			http.Error(w, "Authentication failed", http.StatusUnauthorized)
			return
		case !readable || (push && p < permWrite):
			http.Error(w, "You are not permitted to access this repository", http.StatusForbidden)
			return
		}
		req := r.Clone(r.Context())
		req.URL.Path = "/scm/" + repo.gitPath() + "/" + tail
		req.URL.RawPath = ""
		if !(push && r.Method == http.MethodPost) {
			backend.ServeHTTP(w, req)
			return
		}
		lock := s.pushLock(repo.gitPath())
		lock.Lock()
		defer lock.Unlock()
		s.mu.Lock()
		s.pushers[repo.gitPath()] = who.user
		s.mu.Unlock()
		backend.ServeHTTP(w, req)
		s.mu.Lock()
		delete(s.pushers, repo.gitPath())
		s.mu.Unlock()
	})
}

func (s *Server) pushLock(gitPath string) *sync.Mutex {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.pushLocks[gitPath]
	if !ok {
		l = &sync.Mutex{}
		s.pushLocks[gitPath] = l
	}
	return l
}

// onPush is git http-backend's report of the refs a push changed.
func (s *Server) onPush(gitPath string, updates []gittest.RefUpdate) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var r *repo
	for _, x := range s.repos {
		if x.gitDir != "" && x.gitPath() == gitPath {
			r = x
		}
	}
	if r == nil {
		return
	}
	who := s.pushers[gitPath]
	if who == nil {
		return
	}
	changes := make([]Change, 0, len(updates))
	for _, u := range updates {
		changes = append(changes, Change{Ref: u.Ref, From: u.Old, To: u.New})
	}
	s.pushedLocked(r, who, changes)
}

// git runs git on the bare repository dir with a configuration isolated from the machine's.
func git(dir string, args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "GIT_DIR=" + dir, "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "LC_ALL=C", "HOME=" + filepath.Dir(dir)}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("git %s: %w: %s", args[0], err, strings.TrimSpace(errOut.String()))
	}
	return strings.TrimSpace(out.String()), nil
}

func gitBranches(dir string) (map[string]string, error) {
	out, err := git(dir, "for-each-ref", "--format=%(objectname) %(refname:lstrip=2)", "refs/heads")
	if err != nil {
		return nil, err
	}
	branches := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if sha, name, ok := strings.Cut(line, " "); ok {
			branches[name] = sha
		}
	}
	return branches, nil
}

func gitHead(dir string) string {
	out, err := git(dir, "symbolic-ref", "--short", "HEAD")
	if err != nil {
		return ""
	}
	return out
}

func gitResolve(dir, rev string) (string, error) {
	if rev == "" || strings.HasPrefix(rev, "-") {
		return "", fmt.Errorf("no revision %q", rev)
	}
	return git(dir, "rev-parse", "--verify", "--quiet", rev+"^{commit}")
}

func gitCreateBranch(dir, name, sha string) error {
	// The empty old value makes git refuse a branch that exists.
	_, err := git(dir, "update-ref", "refs/heads/"+name, sha, "")
	return err
}
