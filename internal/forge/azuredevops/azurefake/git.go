package azurefake

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/forgeway/forgeway/internal/gittest"
)

// GitAuth is the header line git authenticates to Azure DevOps with for a personal access
// token: HTTP basic with an empty user name.
func GitAuth(token string) string {
	return "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(":"+token))
}

// maxPushCommits bounds the commits a push delivery lists per ref.
const maxPushCommits = 100

// gitHandler serves the bare repositories under the fake's root, behind the token check; a
// push is delivered as Azure DevOps delivers it.
func (s *Server) gitHandler() http.Handler {
	return gittest.Handler(s.gitRoot, gittest.HandlerOptions{
		StripPrefix: s.opts.PathPrefix,
		Auth: func(r *http.Request, repoPath string, write bool) bool {
			u := s.gitUser(r, repoPath, write)
			return u != nil
		},
		OnPush: s.onPush,
	})
}

// serveGit hands git's requests to git http-backend. A push holds pushMu with its pusher
// recorded, so that the delivery names who pushed.
func (s *Server) serveGit(w http.ResponseWriter, r *http.Request) {
	if s.git == nil {
		http.NotFound(w, r)
		return
	}
	if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/git-receive-pack") {
		s.pushMu.Lock()
		defer s.pushMu.Unlock()
		rel := strings.TrimPrefix(strings.TrimPrefix(r.URL.Path, s.opts.PathPrefix), "/")
		s.pusher = s.gitUser(r, strings.TrimSuffix(rel, "/git-receive-pack"), true)
		defer func() { s.pusher = nil }()
	}
	s.git.ServeHTTP(w, r)
}

// repoAtPath finds the repository of a git path ("fabrikam/project/_git/name").
func (s *Server) repoAtPath(repoPath string) *repo {
	parts := strings.Split(strings.Trim(repoPath, "/"), "/")
	if len(parts) != 4 || parts[0] != s.opts.Organization || parts[2] != "_git" {
		return nil
	}
	p := s.projectByName(parts[1])
	if p == nil {
		return nil
	}
	if r := s.repoOf(p, strings.TrimSuffix(parts[3], ".git")); r != nil && r.git {
		return r
	}
	return nil
}

// gitUser is the user whose token in the request's basic credentials may read the repository
// (write it, for a push): Code read, or Code write; nil otherwise.
func (s *Server) gitUser(r *http.Request, repoPath string, write bool) *user {
	_, tok, ok := r.BasicAuth()
	if !ok {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.pats[tok]
	rp := s.repoAtPath(repoPath)
	if p == nil || p.revoked || (!p.expires.IsZero() && !s.now().Before(p.expires)) || rp == nil || rp.disabled {
		return nil
	}
	need := ScopeCode
	if write {
		need = ScopeCodeWrite
	}
	if !p.has(need) {
		return nil
	}
	return p.user
}

// repoDir is the bare repository of r.
func (s *Server) repoDir(r *repo) string {
	return filepath.Join(s.gitRoot, s.opts.Organization, r.project.name, "_git", r.name)
}

// AddGitRepository adds a repository whose git data is real: a bare repository whose main
// branch holds one commit, served through the fake (Options.Git must be set).
func (s *Server) AddGitRepository(t testing.TB, project, name string) Repo {
	t.Helper()
	if s.git == nil {
		t.Fatal("azurefake: AddGitRepository needs Options.Git")
	}
	s.mu.Lock()
	r := s.addRepoLocked(Repo{Project: project, Name: name}, true)
	dir := s.repoDir(r)
	s.mu.Unlock()
	rel, _ := filepath.Rel(s.gitRoot, dir)
	gittest.InitBare(t, s.gitRoot, filepath.ToSlash(rel))
	work := gittest.InitWork(t)
	gittest.Commit(t, work, "README.md", "# "+name+"\n", "Initial commit")
	gittest.Git(t, work, "push", "--quiet", dir, "main")
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.exportRepo(r)
}

// runGit runs git in a repository's bare directory with an isolated configuration.
func (s *Server) runGit(r *repo, args ...string) (string, error) {
	dir := s.repoDir(r)
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "GIT_DIR=" + dir, "GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL=/dev/null", "HOME=" + s.gitRoot, "LC_ALL=C"}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("git %s: %w: %s", args[0], err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(string(out)), nil
}

// refsLocked returns a repository's branches and tags (full name → object id).
func (s *Server) refsLocked(r *repo) map[string]string {
	out := map[string]string{}
	if !r.git {
		for b, sha := range r.branches {
			out["refs/heads/"+b] = sha
		}
		for tag, sha := range r.tags {
			out["refs/tags/"+tag] = sha
		}
		return out
	}
	list, err := s.runGit(r, "for-each-ref", "--format=%(objectname) %(refname)", "refs/heads", "refs/tags")
	if err != nil {
		s.t.Errorf("azurefake: refs of %s: %v", r.fullName(), err)
		return out
	}
	for _, line := range strings.Split(list, "\n") {
		if sha, name, ok := strings.Cut(line, " "); ok {
			out[name] = sha
		}
	}
	return out
}

// branchesLocked returns a repository's branches (name → head).
func (s *Server) branchesLocked(r *repo) map[string]string {
	out := map[string]string{}
	for name, sha := range s.refsLocked(r) {
		if b, ok := strings.CutPrefix(name, "refs/heads/"); ok {
			out[b] = sha
		}
	}
	return out
}

// hasCommitLocked reports whether sha is a commit of the repository.
func (s *Server) hasCommitLocked(r *repo, sha string) bool {
	if !r.git {
		return r.commits[sha]
	}
	_, err := s.runGit(r, "cat-file", "-e", sha+"^{commit}")
	return err == nil
}

// setRefLocked moves name from old to sha (zero sha: deletes it).
func (s *Server) setRefLocked(r *repo, name, sha, old string) error {
	if !r.git {
		m, short := r.branches, strings.TrimPrefix(name, "refs/heads/")
		if t, ok := strings.CutPrefix(name, "refs/tags/"); ok {
			m, short = r.tags, t
		}
		if sha == zeroSHA {
			delete(m, short)
		} else {
			m[short] = sha
		}
		return nil
	}
	if sha == zeroSHA {
		_, err := s.runGit(r, "update-ref", "-d", name, old)
		return err
	}
	_, err := s.runGit(r, "update-ref", name, sha, old)
	return err
}

// commitInfo is a commit as a push delivery lists it.
type commitInfo struct {
	id, authorName, authorEmail, authorDate, committerName, committerEmail, committerDate, message string
}

// pushedRef is one ref a push changed.
type pushedRef struct{ name, old, new string }

// commitsOf lists the commits a ref update brought, newest first: old..new, or for a new
// branch those no other ref has.
func (s *Server) commitsOf(r *repo, u pushedRef) []commitInfo {
	if u.new == zeroSHA || !strings.HasPrefix(u.name, "refs/heads/") {
		return nil
	}
	args := []string{"log", fmt.Sprintf("--max-count=%d", maxPushCommits),
		"--format=%H%x1f%an%x1f%ae%x1f%aI%x1f%cn%x1f%ce%x1f%cI%x1f%B%x1e"}
	if u.old == zeroSHA {
		args = append(args, u.new, "--not", "--exclude="+u.name, "--all")
	} else {
		args = append(args, u.old+".."+u.new)
	}
	out, err := s.runGit(r, args...)
	if err != nil {
		s.t.Errorf("azurefake: commits of a push to %s: %v", r.fullName(), err)
		return nil
	}
	var list []commitInfo
	for _, rec := range strings.Split(out, "\x1e") {
		f := strings.Split(strings.TrimSpace(rec), "\x1f")
		if len(f) != 8 {
			continue
		}
		list = append(list, commitInfo{id: f[0], authorName: f[1], authorEmail: f[2], authorDate: f[3],
			committerName: f[4], committerEmail: f[5], committerDate: f[6], message: strings.TrimSpace(f[7])})
	}
	return list
}

// onPush delivers a push through git: git.push for its refs, and
// git.pullrequest.updated for the active pull requests whose source branch moved.
func (s *Server) onPush(repoPath string, updates []gittest.RefUpdate) {
	s.mu.Lock()
	r := s.repoAtPath(repoPath)
	who := s.pusher
	s.mu.Unlock()
	if r == nil {
		s.t.Errorf("azurefake: push to unknown repository %s", repoPath)
		return
	}
	var refs []pushedRef
	var commits []commitInfo
	seen := map[string]bool{}
	sort.Slice(updates, func(i, j int) bool { return updates[i].Ref < updates[j].Ref })
	for _, u := range updates {
		pr := pushedRef{name: u.Ref, old: firstNonEmpty(u.Old, zeroSHA), new: firstNonEmpty(u.New, zeroSHA)}
		refs = append(refs, pr)
		for _, c := range s.commitsOf(r, pr) {
			if !seen[c.id] {
				seen[c.id] = true
				commits = append(commits, c)
			}
		}
	}
	s.deliverPush(context.Background(), r.id, who, refs, commits)
}
