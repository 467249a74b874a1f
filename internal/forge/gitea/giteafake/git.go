package giteafake

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strings"

	"github.com/forgeway/forgeway/internal/gittest"
)

// Repositories with git data live as bare repositories under a directory of the test,
// served by git http-backend (gittest.Handler). Their branches and commits are read from git;
// other repositories keep theirs in memory.

// gitEnv is an environment that ignores the machine's and the user's git configuration.
func gitEnv() []string {
	return []string{
		"PATH=" + os.Getenv("PATH"),
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_TERMINAL_PROMPT=0",
		"LC_ALL=C",
		"HOME=" + os.TempDir(),
	}
}

// gitIn runs git in a bare repository and returns its standard output.
func gitIn(dir string, args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(gitEnv(), "GIT_DIR="+dir)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("git %s: %v: %s", args[0], err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

func (s *Server) ensureGit() {
	s.gitOnce.Do(func() {
		s.gitRoot = s.t.TempDir()
		s.git = gittest.Handler(s.gitRoot, gittest.HandlerOptions{OnPush: s.onPush})
	})
}

// AddGitRepository creates a repository whose git data is real: a bare repository served at
// {URL}/{owner}/{name}.git, with main holding one commit. A push to it makes the fake send
// Gitea's deliveries.
func (s *Server) AddGitRepository(fullName string) Repo {
	s.t.Helper()
	s.ensureGit()
	dir := gittest.InitBare(s.t, s.gitRoot, fullName+".git")
	work := gittest.InitWork(s.t)
	gittest.Commit(s.t, work, "README.md", "# "+fullName+"\n", "Initial commit")
	gittest.Git(s.t, work, "push", "--quiet", dir, "main")
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addRepoLocked(Repo{FullName: fullName}, dir)
}

// CloneURL is the URL git clones a repository from.
func (s *Server) CloneURL(fullName string) string { return s.URL + "/" + fullName + ".git" }

// branchesOf reads a repository's branches (name → sha). Callers hold s.mu.
func (s *Server) branchesOf(r *repo) (map[string]string, error) {
	if r.gitDir == "" {
		out := make(map[string]string, len(r.branches))
		for k, v := range r.branches {
			out[k] = v
		}
		return out, nil
	}
	text, err := gitIn(r.gitDir, "for-each-ref", "--format=%(objectname) %(refname:lstrip=2)", "refs/heads")
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
		if sha, name, ok := strings.Cut(line, " "); ok {
			out[name] = sha
		}
	}
	return out, nil
}

// headOf is the default branch's head ("" for an empty repository). Callers hold s.mu.
func (s *Server) headOf(r *repo) string {
	b, err := s.branchesOf(r)
	if err != nil {
		return ""
	}
	return b[r.defaultBranch]
}

// resolveCommit resolves a branch, tag or commit id to a commit. Callers hold s.mu.
func (s *Server) resolveCommit(r *repo, ref string) (string, bool) {
	if r.gitDir == "" {
		if sha, ok := r.branches[ref]; ok {
			return sha, true
		}
		return ref, r.commits[ref]
	}
	out, err := gitIn(r.gitDir, "rev-parse", "--verify", "--quiet", ref+"^{commit}")
	if err != nil {
		return "", false
	}
	return strings.TrimSpace(out), true
}

// setBranchLocked points a branch at a commit. Callers hold s.mu.
func (s *Server) setBranchLocked(r *repo, name, sha string) error {
	if r.gitDir == "" {
		r.branches[name] = sha
		r.commits[sha] = true
		return nil
	}
	_, err := gitIn(r.gitDir, "update-ref", "refs/heads/"+name, sha)
	return err
}

// deleteBranchLocked removes a branch. Callers hold s.mu.
func (s *Server) deleteBranchLocked(r *repo, name string) error {
	if r.gitDir == "" {
		delete(r.branches, name)
		return nil
	}
	_, err := gitIn(r.gitDir, "update-ref", "-d", "refs/heads/"+name)
	return err
}

// commitJSON describes a commit as Gitea's PayloadCommit; for a repository without git data,
// what the fake knows: its id. Callers hold s.mu.
func (s *Server) commitJSON(r *repo, sha string) payloadCommitJSON {
	c := payloadCommitJSON{
		ID: sha, URL: s.URL + "/" + r.fullName() + "/commit/" + sha,
		Verification: verificationJSON{Reason: "gpg.error.not_signed_commit"},
		Timestamp:    ts(r.created), Added: []string{}, Removed: []string{}, Modified: []string{},
	}
	if r.gitDir == "" {
		c.Message = "Initial commit\n"
		c.Author = payloadUserJSON{Name: r.owner.login, Email: r.owner.email, UserName: r.owner.login}
		c.Committer = c.Author
		return c
	}
	out, err := gitIn(r.gitDir, "log", "-1", "--format=%H%x00%an%x00%ae%x00%cn%x00%ce%x00%aI%x00%B", sha)
	if err != nil {
		return c
	}
	f := strings.SplitN(out, "\x00", 7)
	if len(f) != 7 {
		return c
	}
	c.Author = payloadUserJSON{Name: f[1], Email: f[2], UserName: s.loginByEmailLocked(f[2])}
	c.Committer = payloadUserJSON{Name: f[3], Email: f[4], UserName: s.loginByEmailLocked(f[4])}
	c.Timestamp = f[5]
	c.Message = strings.TrimRight(f[6], "\n") + "\n"
	if files, err := gitIn(r.gitDir, "diff-tree", "--no-commit-id", "--root", "-r", "--name-status", sha); err == nil {
		for _, line := range strings.Split(strings.TrimSpace(files), "\n") {
			status, file, ok := strings.Cut(line, "\t")
			switch {
			case !ok:
			case strings.HasPrefix(status, "A"):
				c.Added = append(c.Added, file)
			case strings.HasPrefix(status, "D"):
				c.Removed = append(c.Removed, file)
			default:
				c.Modified = append(c.Modified, file)
			}
		}
	}
	return c
}

// loginByEmailLocked is the user with that e-mail address, as Gitea names commit authors.
func (s *Server) loginByEmailLocked(email string) string {
	for _, a := range s.users {
		if strings.EqualFold(a.email, email) {
			return a.login
		}
	}
	return ""
}

// pushCommitsLocked lists a push's commits as Gitea does: old..new (a new branch: the last 10
// commits of new), newest first, at most FeedMaxCommitNum of them, and how many there were.
// Callers hold s.mu.
func (s *Server) pushCommitsLocked(r *repo, old, new string) ([]payloadCommitJSON, int) {
	if r.gitDir == "" {
		return []payloadCommitJSON{}, 0
	}
	args := []string{"rev-list", old + ".." + new}
	if old == "" {
		args = []string{"rev-list", "--max-count=10", new}
	}
	out, err := gitIn(r.gitDir, args...)
	if err != nil {
		return []payloadCommitJSON{}, 0
	}
	ids := strings.Fields(out)
	total := len(ids)
	commits := make([]payloadCommitJSON, 0, min(total, s.opts.FeedMaxCommitNum))
	for _, id := range ids[:min(total, s.opts.FeedMaxCommitNum)] {
		commits = append(commits, s.commitJSON(r, id))
	}
	return commits, total
}

// serveGit guards git smart HTTP as Gitea does: anyone may read a public repository; a
// private one, and every push, need Basic credentials carrying a live token whose user may
// read (write) the repository and whose scopes grant read:repository (write:repository).
func (s *Server) serveGit(w http.ResponseWriter, r *http.Request) {
	name, ok := strings.CutSuffix(pathValue(r, "repo"), ".git")
	if !ok {
		http.NotFound(w, r)
		return
	}
	push := r.URL.Query().Get("service") == "git-receive-pack" || strings.HasSuffix(r.URL.Path, "/git-receive-pack")
	value, present := credentialOf(r)
	s.mu.Lock()
	id, found := s.names[strings.ToLower(pathValue(r, "owner")+"/"+name)]
	var rp *repo
	if found {
		rp = s.repos[id]
	}
	var tok *token
	if present {
		tok = s.lookupLocked(value)
	}
	var user *account
	if tok != nil {
		user = tok.user
	}
	perm := ""
	if rp != nil {
		perm = s.permission(user, rp)
	}
	s.mu.Unlock()

	challenge := func() {
		w.Header().Set("WWW-Authenticate", `Basic realm="Gitea"`)
		http.Error(w, "Unauthorized", http.StatusUnauthorized)
	}
	need, scope := permRead, "read:repository"
	if push {
		need, scope = permWrite, "write:repository"
	}
	switch {
	case rp == nil || rp.gitDir == "":
		http.NotFound(w, r)
		return
	case present && tok == nil:
		challenge()
		return
	case tok == nil && roles[perm] < roles[need]:
		challenge()
		return
	case tok != nil && !hasScope(tok.scopes, scope):
		http.Error(w, "token does not have at least one of required scope(s): ["+scope+"]", http.StatusForbidden)
		return
	case perm == "":
		http.NotFound(w, r)
		return
	case roles[perm] < roles[need]:
		http.Error(w, "User permission denied", http.StatusForbidden)
		return
	}
	if !push {
		s.git.ServeHTTP(w, r)
		return
	}
	s.pushMu.Lock()
	defer s.pushMu.Unlock()
	s.pusher = user
	s.git.ServeHTTP(w, r)
	s.pusher = nil
}

// onPush is called by git http-backend's handler after a push changed refs, in the pushing
// request's goroutine (which holds pushMu).
func (s *Server) onPush(repoPath string, updates []gittest.RefUpdate) {
	name := strings.TrimSuffix(repoPath, ".git")
	sort.SliceStable(updates, func(i, j int) bool { return updates[i].Ref < updates[j].Ref })
	s.mu.Lock()
	id, ok := s.names[strings.ToLower(name)]
	if !ok {
		s.mu.Unlock()
		return
	}
	r := s.repos[id]
	var out []outgoing
	for _, u := range updates {
		out = append(out, s.refChangedLocked(r, s.pusher, u.Ref, u.Old, u.New)...)
	}
	s.mu.Unlock()
	s.send(out)
}
