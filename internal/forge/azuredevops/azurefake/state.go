package azurefake

import (
	"crypto/rand"
	"crypto/sha1"
	"encoding/base32"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Personal access token scopes the fake knows, as Azure DevOps names them.
const (
	ScopeCode        = "vso.code"        // Code: Read
	ScopeCodeWrite   = "vso.code_write"  // Code: Read & write
	ScopeCodeManage  = "vso.code_manage" // Code: Read, write & manage
	ScopeCodeFull    = "vso.code_full"   // Code: Full
	ScopeCodeStatus  = "vso.code_status" // Code: Status
	ScopeProject     = "vso.project"     // Project and Team: Read
	ScopeProjectMgmt = "vso.project_manage"
	scopeCode        = ScopeCode
	scopeCodeWrite   = ScopeCodeWrite
	scopeProject     = ScopeProject
)

// scopeImplies lists, for a scope an endpoint needs, the broader scopes that include it.
var scopeImplies = map[string][]string{
	ScopeCode:      {ScopeCodeWrite, ScopeCodeManage, ScopeCodeFull},
	ScopeCodeWrite: {ScopeCodeManage, ScopeCodeFull},
	ScopeProject:   {"vso.project_write", ScopeProjectMgmt},
}

// DefaultScopes are the scopes Forgeway documents: Code (Read & write, Status) and Project
// and Team (Read).
func DefaultScopes() []string { return []string{ScopeCodeWrite, ScopeCodeStatus, ScopeProject} }

type user struct {
	id, displayName, uniqueName, descriptor string
	editSubscriptions                       bool
}

type pat struct {
	token   string
	user    *user
	scopes  []string
	expires time.Time // zero: never
	revoked bool
}

func (p *pat) has(scope string) bool {
	for _, s := range p.scopes {
		if s == scope {
			return true
		}
		for _, broader := range scopeImplies[scope] {
			if s == broader {
				return true
			}
		}
	}
	return false
}

type project struct {
	id, name, description, visibility string
	revision                          int64
	updated                           time.Time
}

type repo struct {
	id, name      string
	project       *project
	defaultBranch string // full ref; "" for an empty repository
	disabled      bool
	fork          bool
	git           bool              // real git data under the fake's root
	branches      map[string]string // without git: branch name → head
	tags          map[string]string
	commits       map[string]bool // without git: commits refs may point at
}

func (r *repo) fullName() string { return r.project.name + "/" + r.name }

type pull struct {
	id                   int64
	repo                 *repo
	title, description   string
	source, target       string // full refs
	status               string // active, completed, abandoned
	draft                bool
	createdBy, closedBy  *user
	created, closed      time.Time
	sourceSHA, targetSHA string
	mergeSHA, mergeID    string
	mergeStatus          string
	codeReviewID         int64
}

type sub struct {
	id                              string
	eventType, resourceVersion      string
	publisherInputs, consumerInputs map[string]string
	status                          string
	createdBy, modifiedBy           *user
	created, modified, probation    time.Time
	failures                        int
	notifications                   int64
}

func newGUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// newToken returns a token shaped like an Azure DevOps PAT (52 lowercase base32 characters).
func newToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))[:52]
}

// fakeSHA is a stable 40-hex object id made of parts.
func fakeSHA(parts ...string) string {
	h := sha1.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// User is a person of the organization.
type User struct {
	ID          string
	DisplayName string
	UniqueName  string // the sign-in name, e.g. alice@example.com
	// EditSubscriptions is the "Edit subscriptions" permission (Project Administrators).
	EditSubscriptions bool
}

// AddUser adds (or updates) a person; UniqueName identifies them.
func (s *Server) AddUser(u User) User {
	s.mu.Lock()
	defer s.mu.Unlock()
	return exportUser(s.userLocked(u))
}

func (s *Server) userLocked(u User) *user {
	key := strings.ToLower(u.UniqueName)
	x, ok := s.users[key]
	if !ok {
		x = &user{id: firstNonEmpty(u.ID, newGUID()), uniqueName: u.UniqueName}
		x.descriptor = "aad." + strings.TrimRight(base32.StdEncoding.EncodeToString([]byte(x.id)), "=")
		s.users[key] = x
	}
	x.displayName = firstNonEmpty(u.DisplayName, u.UniqueName)
	x.editSubscriptions = u.EditSubscriptions
	return x
}

func exportUser(u *user) User {
	return User{ID: u.id, DisplayName: u.displayName, UniqueName: u.uniqueName, EditSubscriptions: u.editSubscriptions}
}

// PAT describes a personal access token to issue.
type PAT struct {
	User    string   // the unique name of its owner; added when unknown
	Scopes  []string // default DefaultScopes()
	Expires time.Time
}

// IssuePAT issues a personal access token and returns it.
func (s *Server) IssuePAT(p PAT) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[strings.ToLower(p.User)]
	if !ok {
		u = s.userLocked(User{UniqueName: p.User, EditSubscriptions: true})
	}
	scopes := p.Scopes
	if scopes == nil {
		scopes = DefaultScopes()
	}
	tok := newToken()
	s.pats[tok] = &pat{token: tok, user: u, scopes: append([]string(nil), scopes...), expires: p.Expires}
	return tok
}

// RevokePAT revokes a token, as its owner does in User settings.
func (s *Server) RevokePAT(tok string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.pats[tok]; p != nil {
		p.revoked = true
	}
}

// Project is a project of the organization.
type Project struct {
	ID, Name, Description string
	Public                bool
}

// AddProject adds a project (or returns the existing one of that name).
func (s *Server) AddProject(p Project) Project {
	s.mu.Lock()
	defer s.mu.Unlock()
	return exportProject(s.projectLocked(p))
}

func (s *Server) projectLocked(p Project) *project {
	if x := s.projectByName(p.Name); x != nil {
		return x
	}
	vis := "private"
	if p.Public {
		vis = "public"
	}
	x := &project{id: firstNonEmpty(p.ID, newGUID()), name: p.Name, description: p.Description, visibility: vis, revision: 1, updated: s.now().UTC()}
	s.projects = append(s.projects, x)
	return x
}

func (s *Server) projectByName(name string) *project {
	for _, p := range s.projects {
		if strings.EqualFold(p.name, name) {
			return p
		}
	}
	return nil
}

// projectOf finds a project by id or name.
func (s *Server) projectOf(ref string) *project {
	for _, p := range s.projects {
		if strings.EqualFold(p.id, ref) {
			return p
		}
	}
	return s.projectByName(ref)
}

func exportProject(p *project) Project {
	return Project{ID: p.id, Name: p.name, Description: p.description, Public: p.visibility == "public"}
}

// Repo describes a repository.
type Repo struct {
	ID       string
	Project  string // its project's name; the project is added when missing
	Name     string
	Disabled bool
	Fork     bool
	// Branches are the branches of a repository without git data (name → head); the first
	// in name order, or main, is the default. Empty: an empty repository.
	Branches map[string]string
	// DefaultBranch names the default branch (without refs/heads/).
	DefaultBranch string
}

// FullName is "project/name".
func (r Repo) FullName() string { return r.Project + "/" + r.Name }

// AddRepository adds a repository without git data.
func (s *Server) AddRepository(r Repo) Repo {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.exportRepo(s.addRepoLocked(r, false))
}

// AddRepositories adds n repositories named repo-00001… to project.
func (s *Server) AddRepositories(project string, n int) []Repo {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.projectLocked(Project{Name: project})
	start := 0
	for _, r := range s.repos {
		if r.project == p {
			start++
		}
	}
	out := make([]Repo, 0, n)
	for i := range n {
		out = append(out, s.exportRepo(s.addRepoLocked(Repo{Project: project, Name: fmt.Sprintf("repo-%05d", start+i+1)}, false)))
	}
	return out
}

func (s *Server) addRepoLocked(r Repo, git bool) *repo {
	if r.Project == "" || r.Name == "" {
		s.t.Fatalf("azurefake: a repository needs a project and a name: %+v", r)
	}
	p := s.projectLocked(Project{Name: r.Project})
	if s.repoByName(p, r.Name) != nil {
		s.t.Fatalf("azurefake: repository %s/%s exists", r.Project, r.Name)
	}
	x := &repo{id: strings.ToLower(firstNonEmpty(r.ID, newGUID())), name: r.Name, project: p, disabled: r.Disabled, fork: r.Fork, git: git,
		branches: map[string]string{}, tags: map[string]string{}, commits: map[string]bool{}}
	for b, sha := range r.Branches {
		x.branches[b] = sha
		x.commits[sha] = true
	}
	switch {
	case r.DefaultBranch != "":
		x.defaultBranch = "refs/heads/" + r.DefaultBranch
	case git || x.branches["main"] != "":
		x.defaultBranch = "refs/heads/main"
	case len(x.branches) > 0:
		names := make([]string, 0, len(x.branches))
		for b := range x.branches {
			names = append(names, b)
		}
		sort.Strings(names)
		x.defaultBranch = "refs/heads/" + names[0]
	}
	s.repos[x.id] = x
	return x
}

func (s *Server) repoByName(p *project, name string) *repo {
	for _, r := range s.repos {
		if r.project == p && strings.EqualFold(r.name, name) {
			return r
		}
	}
	return nil
}

// repoOf finds a repository of a project by id or name.
func (s *Server) repoOf(p *project, ref string) *repo {
	if r := s.repos[strings.ToLower(ref)]; r != nil && r.project == p {
		return r
	}
	return s.repoByName(p, ref)
}

func (s *Server) mustRepo(fullName string) *repo {
	proj, name, _ := strings.Cut(fullName, "/")
	if p := s.projectByName(proj); p != nil {
		if r := s.repoByName(p, name); r != nil {
			return r
		}
	}
	s.t.Fatalf("azurefake: no repository %s", fullName)
	return nil
}

func (s *Server) exportRepo(r *repo) Repo {
	out := Repo{ID: r.id, Project: r.project.name, Name: r.name, Disabled: r.disabled, Fork: r.fork,
		DefaultBranch: strings.TrimPrefix(r.defaultBranch, "refs/heads/"), Branches: map[string]string{}}
	for b, sha := range s.branchesLocked(r) {
		out.Branches[b] = sha
	}
	return out
}

// Repository returns a repository by full name ("project/name").
func (s *Server) Repository(fullName string) (Repo, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	proj, name, _ := strings.Cut(fullName, "/")
	p := s.projectByName(proj)
	if p == nil {
		return Repo{}, false
	}
	r := s.repoByName(p, name)
	if r == nil {
		return Repo{}, false
	}
	return s.exportRepo(r), true
}

// DeleteRepository deletes a repository and its subscriptions' filter target stays dangling,
// as on Azure DevOps.
func (s *Server) DeleteRepository(fullName string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.repos, s.mustRepo(fullName).id)
}

// SetBranch sets a branch of a repository without git data.
func (s *Server) SetBranch(fullName, branch, sha string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.mustRepo(fullName)
	r.branches[branch] = sha
	r.commits[sha] = true
	if r.defaultBranch == "" {
		r.defaultBranch = "refs/heads/" + branch
	}
}

// Branches returns a repository's branches (name → head).
func (s *Server) Branches(fullName string) map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.branchesLocked(s.mustRepo(fullName))
}

// Subscription is a service hook subscription as the fake stores it, password included
// (the API masks it).
type Subscription struct {
	ID              string
	EventType       string
	PublisherInputs map[string]string
	ConsumerInputs  map[string]string
	Status          string
}

func exportSub(x *sub) Subscription {
	out := Subscription{ID: x.id, EventType: x.eventType, Status: x.status,
		PublisherInputs: map[string]string{}, ConsumerInputs: map[string]string{}}
	for k, v := range x.publisherInputs {
		out.PublisherInputs[k] = v
	}
	for k, v := range x.consumerInputs {
		out.ConsumerInputs[k] = v
	}
	return out
}

// Subscriptions lists the subscriptions filtered to a repository (fullName; "" for all), in
// creation order.
func (s *Server) Subscriptions(fullName string) []Subscription {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := ""
	if fullName != "" {
		id = s.mustRepo(fullName).id
	}
	var out []Subscription
	for _, sid := range s.subOrder {
		x := s.subs[sid]
		if id == "" || strings.EqualFold(x.publisherInputs["repository"], id) {
			out = append(out, exportSub(x))
		}
	}
	return out
}

// SetSubscriptionStatus sets a subscription's status (enabled, onProbation, disabledByUser,
// disabledBySystem, disabledByInactiveIdentity), as Azure DevOps or a person does.
func (s *Server) SetSubscriptionStatus(id, status string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	x := s.subs[id]
	if x == nil {
		s.t.Fatalf("azurefake: no subscription %s", id)
	}
	x.status = status
	if status == "onProbation" {
		x.probation = s.now().UTC()
	}
}

// DeleteSubscriptions deletes every subscription filtered to the repository, as a person
// does on the project's Service hooks page.
func (s *Server) DeleteSubscriptions(fullName string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := s.mustRepo(fullName).id
	for _, sid := range append([]string(nil), s.subOrder...) {
		if strings.EqualFold(s.subs[sid].publisherInputs["repository"], id) {
			s.removeSubLocked(sid)
		}
	}
}

func (s *Server) removeSubLocked(id string) {
	delete(s.subs, id)
	for i, x := range s.subOrder {
		if x == id {
			s.subOrder = append(s.subOrder[:i], s.subOrder[i+1:]...)
			break
		}
	}
}

// PullRequest is a pull request as the fake stores it.
type PullRequest struct {
	ID                   int64
	Title, Description   string
	Source, Target       string // full refs
	Status               string
	Draft                bool
	SourceSHA, TargetSHA string
	MergeSHA             string
	CreatedBy            string // unique name
}

// PullRequests lists a repository's pull requests by id.
func (s *Server) PullRequests(fullName string) []PullRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.mustRepo(fullName)
	var out []PullRequest
	for _, p := range s.sortedPulls() {
		if p.repo == r {
			out = append(out, PullRequest{ID: p.id, Title: p.title, Description: p.description, Source: p.source, Target: p.target,
				Status: p.status, Draft: p.draft, SourceSHA: p.sourceSHA, TargetSHA: p.targetSHA, MergeSHA: p.mergeSHA, CreatedBy: p.createdBy.uniqueName})
		}
	}
	return out
}

func (s *Server) sortedPulls() []*pull {
	out := make([]*pull, 0, len(s.pulls))
	for _, p := range s.pulls {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}
