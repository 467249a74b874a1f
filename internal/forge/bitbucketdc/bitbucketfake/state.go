package bitbucketfake

import (
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"
)

// The in-memory host. Every field of Server below mu is guarded by it; the arrangement
// methods in this file take it, so tests may call them while clients are running.

// perm is a repository permission level; project permissions map onto the same levels for
// the repositories of the project (PROJECT_WRITE gives REPO_WRITE on each, and so on).
type perm int

const (
	permNone perm = iota
	permRead
	permWrite
	permAdmin
)

// parsePerm reads REPO_READ … REPO_ADMIN and PROJECT_READ … PROJECT_ADMIN.
func parsePerm(s string) (perm, bool) {
	switch strings.ToUpper(strings.TrimSpace(s)) {
	case "":
		return permNone, true
	case "REPO_READ", "PROJECT_READ":
		return permRead, true
	case "REPO_WRITE", "PROJECT_WRITE":
		return permWrite, true
	case "REPO_ADMIN", "PROJECT_ADMIN":
		return permAdmin, true
	}
	return permNone, false
}

type user struct {
	id          int
	name        string // login, also the slug
	displayName string
	email       string
	service     bool // the bot user of a project or repository token
}

type project struct {
	id          int
	key         string
	name        string
	description string
	public      bool
	personal    *user // the owner of a personal project (~login)
	grants      map[string]perm
}

type invocation struct {
	id            int
	event         string
	url           string
	start, finish time.Time
	outcome       string // SUCCESS, FAILURE, ERROR
	description   string
}

type hook struct {
	id                  int
	name                string
	url                 string
	events              []string
	secret              string
	active              bool
	sslVerify           bool
	created, updated    time.Time
	lastSuccess         *invocation
	lastFailure         *invocation
	lastError           *invocation
	successes, failures int
	errors              int
}

type basicCredentials struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

type pull struct {
	id, version      int
	title            string
	description      string
	from             *repo
	fromRef, toRef   string // full refs
	fromSHA, toSHA   string
	state            string // OPEN, MERGED, DECLINED
	draft            bool
	author           *user
	created, updated time.Time
	closed           time.Time
	mergeSHA         string
}

type repo struct {
	id            int
	project       *project
	slug          string
	name          string
	description   string
	hierarchyID   string
	public        bool
	archived      bool
	origin        *repo
	defaultBranch string
	branches      map[string]string // in-memory repositories: name → sha
	tags          map[string]string
	commits       map[string]bool // every sha an in-memory repository contains
	gitDir        string          // a real bare repository; branches live there instead
	hooks         []*hook
	pulls         []*pull
	grants        map[string]perm
}

func (r *repo) fullName() string { return r.project.key + "/" + r.slug }

// gitPath is the repository's path under the git root and in its clone URL: the project key
// in lower case, then the slug and ".git".
func (r *repo) gitPath() string { return strings.ToLower(r.project.key) + "/" + r.slug + ".git" }

// tokenKind tells HTTP access tokens apart.
type tokenKind int

const (
	tokenProject tokenKind = iota + 1
	tokenRepository
	tokenPersonal
)

type token struct {
	id          string
	name        string
	kind        tokenKind
	user        *user // the owner of a personal token, the bot user of the others
	project     *project
	repo        *repo
	projectPerm perm
	repoPerm    perm
	expires     time.Time // zero: never
	revoked     bool
}

func (s *Server) nextID() int {
	s.seq++
	return s.seq
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// fakeSHA is a deterministic commit id for seeded content of in-memory repositories.
func fakeSHA(parts ...string) string {
	h := sha1.Sum([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(h[:])
}

// newTokenValue is a token in Bitbucket's format: 44 characters of base64.
func newTokenValue() string {
	b := make([]byte, 33)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

// User is a Bitbucket user account.
type User struct {
	Name        string // the login (and slug)
	DisplayName string // default: the login
	Email       string // default: login@example.com
}

// AddUser registers a user account; users named elsewhere are created on demand.
func (s *Server) AddUser(u User) {
	s.mu.Lock()
	defer s.mu.Unlock()
	x := s.userLocked(u.Name)
	if u.DisplayName != "" {
		x.displayName = u.DisplayName
	}
	if u.Email != "" {
		x.email = u.Email
	}
}

func (s *Server) userLocked(name string) *user {
	k := strings.ToLower(name)
	if u, ok := s.users[k]; ok {
		return u
	}
	u := &user{id: s.nextID(), name: name, displayName: name, email: strings.ToLower(name) + "@example.com"}
	s.users[k] = u
	return u
}

// Project is a Bitbucket project.
type Project struct {
	Key         string // upper case letters, digits and underscores
	Name        string // default: the key
	Description string
	Public      bool
}

// AddProject creates a project (repositories create theirs on demand).
func (s *Server) AddProject(p Project) {
	s.mu.Lock()
	defer s.mu.Unlock()
	x := s.projectLocked(p.Key)
	if p.Name != "" {
		x.name = p.Name
	}
	x.description, x.public = p.Description, p.Public
}

// projectLocked finds or creates a project; "~login" is login's personal project.
func (s *Server) projectLocked(key string) *project {
	k := strings.ToUpper(key)
	if p, ok := s.projects[k]; ok {
		return p
	}
	p := &project{id: s.nextID(), key: key, name: key, grants: map[string]perm{}}
	if login, ok := strings.CutPrefix(key, "~"); ok {
		p.personal = s.userLocked(login)
		p.name = p.personal.displayName
	} else {
		p.key = strings.ToUpper(key)
	}
	s.projects[k] = p
	return p
}

// Grant gives login permission ("PROJECT_READ", "PROJECT_WRITE" or "PROJECT_ADMIN") on every
// repository of the project.
func (s *Server) Grant(login, projectKey, permission string) {
	pm, ok := parsePerm(permission)
	if !ok {
		s.t.Fatalf("bitbucketfake: unknown permission %q", permission)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.userLocked(login)
	s.projectLocked(projectKey).grants[strings.ToLower(login)] = pm
}

// GrantRepository gives login permission ("REPO_READ", "REPO_WRITE" or "REPO_ADMIN") on one
// repository.
func (s *Server) GrantRepository(login, fullName, permission string) {
	pm, ok := parsePerm(permission)
	if !ok {
		s.t.Fatalf("bitbucketfake: unknown permission %q", permission)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.userLocked(login)
	s.mustRepoLocked(fullName).grants[strings.ToLower(login)] = pm
}

// Repo is a repository. Zero fields are filled in: a fresh ID, Name from Slug, DefaultBranch
// "main" holding one commit (in memory, unless the repository was made by AddGitRepository).
type Repo struct {
	ID            int
	Project       string // project key; "~login" for a personal repository
	Slug          string // lower case
	Name          string
	Description   string
	Public        bool
	Archived      bool
	DefaultBranch string
	ForkOf        string // full name of the origin repository
	CloneURL      string // set on return: the HTTP clone URL
}

// FullName is PROJECTKEY/slug.
func (r Repo) FullName() string { return r.Project + "/" + r.Slug }

// AddRepository creates a repository and returns it complete (see Repo).
func (s *Server) AddRepository(r Repo) Repo {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.repoInfo(s.addRepoLocked(r, ""))
}

// AddRepositories creates n repositories PROJECT/repo-0001 … in projectKey (every third one
// public) and returns them in that order.
func (s *Server) AddRepositories(projectKey string, n int) []Repo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Repo, 0, n)
	start := len(s.repos)
	for i := 1; i <= n; i++ {
		r := s.addRepoLocked(Repo{Project: projectKey, Slug: fmt.Sprintf("repo-%04d", start+i), Public: i%3 == 0}, "")
		out = append(out, s.repoInfo(r))
	}
	return out
}

func (s *Server) addRepoLocked(in Repo, gitDir string) *repo {
	if in.Slug == "" {
		s.t.Fatalf("bitbucketfake: a repository needs a slug")
	}
	p := s.projectLocked(in.Project)
	if s.findRepoLocked(p.key, in.Slug) != nil {
		s.t.Fatalf("bitbucketfake: repository %s/%s exists", p.key, in.Slug)
	}
	r := &repo{
		id: s.nextID(), project: p, slug: strings.ToLower(in.Slug), name: in.Name, description: in.Description,
		hierarchyID: randomHex(10), public: in.Public, archived: in.Archived, defaultBranch: in.DefaultBranch,
		branches: map[string]string{}, tags: map[string]string{}, commits: map[string]bool{}, gitDir: gitDir,
		grants: map[string]perm{},
	}
	if in.ID != 0 {
		r.id = in.ID
	}
	if r.name == "" {
		r.name = r.slug
	}
	if r.defaultBranch == "" {
		r.defaultBranch = "main"
	}
	if in.ForkOf != "" {
		r.origin = s.mustRepoLocked(in.ForkOf)
	}
	if gitDir == "" {
		sha := fakeSHA(r.fullName(), "initial")
		r.branches[r.defaultBranch], r.commits[sha] = sha, true
	}
	s.repos[r.id] = r
	return r
}

func (s *Server) findRepoLocked(key, slug string) *repo {
	for _, r := range s.repos {
		if strings.EqualFold(r.project.key, key) && strings.EqualFold(r.slug, slug) {
			return r
		}
	}
	return nil
}

func (s *Server) mustRepoLocked(fullName string) *repo {
	key, slug, _ := strings.Cut(fullName, "/")
	r := s.findRepoLocked(key, slug)
	if r == nil {
		s.t.Fatalf("bitbucketfake: no repository %s", fullName)
	}
	return r
}

// sortedReposLocked lists the repositories as Bitbucket's listings order them: by project
// key, then slug.
func (s *Server) sortedReposLocked() []*repo {
	out := make([]*repo, 0, len(s.repos))
	for _, r := range s.repos {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b *repo) int {
		if c := strings.Compare(a.project.key, b.project.key); c != 0 {
			return c
		}
		return strings.Compare(a.slug, b.slug)
	})
	return out
}

func (s *Server) repoInfo(r *repo) Repo {
	out := Repo{ID: r.id, Project: r.project.key, Slug: r.slug, Name: r.name, Description: r.description,
		Public: r.public, Archived: r.archived, DefaultBranch: r.defaultBranch, CloneURL: s.cloneURL(r)}
	if r.origin != nil {
		out.ForkOf = r.origin.fullName()
	}
	return out
}

// Repository returns the repository's current state.
func (s *Server) Repository(fullName string) (Repo, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key, slug, _ := strings.Cut(fullName, "/")
	r := s.findRepoLocked(key, slug)
	if r == nil {
		return Repo{}, false
	}
	return s.repoInfo(r), true
}

// RenameRepository gives a repository a new slug (and name), as Bitbucket's rename does: its
// id stays, its old name answers 404.
func (s *Server) RenameRepository(fullName, newSlug string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.mustRepoLocked(fullName)
	r.slug, r.name = strings.ToLower(newSlug), newSlug
}

// DeleteRepository removes a repository.
func (s *Server) DeleteRepository(fullName string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.repos, s.mustRepoLocked(fullName).id)
}

// SetBranch points a branch of an in-memory repository at sha (creating it), as a push would,
// without delivering anything.
func (s *Server) SetBranch(fullName, branch, sha string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.mustRepoLocked(fullName)
	r.branches[branch], r.commits[sha] = sha, true
}

// Token describes an HTTP access token to issue. Exactly one of Project, Repository and User
// says what kind it is: a project token, a repository token, or a personal token of User.
type Token struct {
	Name       string
	Project    string // project key
	Repository string // full name
	User       string // login
	// ProjectPermission is PROJECT_READ, PROJECT_WRITE or PROJECT_ADMIN ("" none);
	// RepoPermission is REPO_READ, REPO_WRITE or REPO_ADMIN.
	ProjectPermission string
	RepoPermission    string
	Expires           time.Time // zero: never
}

// IssueToken creates an HTTP access token and returns its value. Project and repository
// tokens act as a bot user Bitbucket creates for them.
func (s *Server) IssueToken(t Token) string {
	pp, ok1 := parsePerm(t.ProjectPermission)
	rp, ok2 := parsePerm(t.RepoPermission)
	if !ok1 || !ok2 {
		s.t.Fatalf("bitbucketfake: unknown permission in %+v", t)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	tok := &token{id: newTokenValue(), name: t.Name, projectPerm: pp, repoPerm: rp, expires: t.Expires}
	if tok.name == "" {
		tok.name = "token"
	}
	switch {
	case t.User != "":
		tok.kind, tok.user = tokenPersonal, s.userLocked(t.User)
	case t.Repository != "":
		tok.kind, tok.repo = tokenRepository, s.mustRepoLocked(t.Repository)
		tok.project = tok.repo.project
	case t.Project != "":
		tok.kind, tok.project = tokenProject, s.projectLocked(t.Project)
	default:
		s.t.Fatalf("bitbucketfake: a token needs a Project, a Repository or a User")
	}
	if tok.user == nil {
		bot := s.userLocked(fmt.Sprintf("bot-%s-%d", strings.ToLower(strings.TrimPrefix(tok.project.key, "~")), s.seq+1))
		bot.service, bot.displayName = true, tok.name
		tok.user = bot
	}
	s.tokens[tok.id] = tok
	return tok.id
}

// RevokeToken deletes a token: it stops working at once.
func (s *Server) RevokeToken(value string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if tok, ok := s.tokens[value]; ok {
		tok.revoked = true
	}
}

// ExpireToken makes a token expire now.
func (s *Server) ExpireToken(value string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if tok, ok := s.tokens[value]; ok {
		tok.expires = s.now().Add(-time.Second)
	}
}

// Hook is a repository webhook as Bitbucket stores it, secret included.
type Hook struct {
	ID                      int
	Name                    string
	URL                     string
	Secret                  string
	Events                  []string
	Active                  bool
	SSLVerificationRequired bool
}

// Hooks lists the repository's webhooks.
func (s *Server) Hooks(fullName string) []Hook {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.mustRepoLocked(fullName)
	out := make([]Hook, 0, len(r.hooks))
	for _, h := range r.hooks {
		out = append(out, Hook{ID: h.id, Name: h.name, URL: h.url, Secret: h.secret, Events: slices.Clone(h.events), Active: h.active, SSLVerificationRequired: h.sslVerify})
	}
	return out
}

// AddHook creates a webhook as someone would in Bitbucket's settings and returns its id.
func (s *Server) AddHook(fullName string, h Hook) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.mustRepoLocked(fullName)
	now := s.now()
	x := &hook{id: s.nextID(), name: h.Name, url: h.URL, secret: h.Secret, events: slices.Clone(h.Events), active: h.Active,
		sslVerify: h.SSLVerificationRequired, created: now, updated: now}
	r.hooks = append(r.hooks, x)
	return x.id
}

// DeleteHooks deletes every webhook of the repository, as someone would behind Forgeway's back.
func (s *Server) DeleteHooks(fullName string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mustRepoLocked(fullName).hooks = nil
}

// SetHookActive switches a webhook on or off, as an admin can in the repository's settings.
func (s *Server) SetHookActive(fullName string, id int, active bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, h := range s.mustRepoLocked(fullName).hooks {
		if h.id == id {
			h.active = active
		}
	}
}

// PullRequest is a pull request as the fake stores it.
type PullRequest struct {
	ID          int
	Title       string
	Description string
	FromRef     string // full ref
	ToRef       string
	FromRepo    string // full name of the source repository
	State       string // OPEN, MERGED, DECLINED
	Draft       bool
	Author      string
	MergeSHA    string
}

// PullRequest returns a pull request of the repository.
func (s *Server) PullRequest(fullName string, id int) (PullRequest, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.mustRepoLocked(fullName).pulls {
		if p.id == id {
			return PullRequest{ID: p.id, Title: p.title, Description: p.description, FromRef: p.fromRef, ToRef: p.toRef,
				FromRepo: p.from.fullName(), State: p.state, Draft: p.draft, Author: p.author.name, MergeSHA: p.mergeSHA}, true
		}
	}
	return PullRequest{}, false
}
