package giteafake

import (
	"crypto/rand"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// The in-memory host. Every field of Server below mu is guarded by it; the arrangement methods
// in this file take it, so tests may call them while clients are running.

// Permission levels on a repository, as Gitea's access modes.
const (
	permRead  = "read"
	permWrite = "write"
	permAdmin = "admin"
)

var roles = map[string]int{"": 0, permRead: 1, permWrite: 2, permAdmin: 3, "owner": 3}

type account struct {
	id       int64
	login    string
	fullName string
	email    string
	org      bool
	private  bool              // organizations: visibility private (their public repositories are "internal")
	admin    bool              // a site administrator
	members  map[string]string // organizations: member login (lower) → its teams' permission on every repository
	created  time.Time
}

type hook struct {
	id           int64
	typ          string
	url          string
	contentType  string
	secret       string
	branchFilter string
	authHeader   string
	events       map[string]bool
	active       bool
	created      time.Time
	updated      time.Time
	lastStatus   string // "", "succeed", "fail"
}

// eventsArray is the hook's events as Gitea lists them: every enabled hook event type (Gitea's
// order is a map's; the fake sorts them).
func (h *hook) eventsArray() []string {
	out := make([]string, 0, len(h.events))
	for e, on := range h.events {
		if on {
			out = append(out, e)
		}
	}
	sort.Strings(out)
	return out
}

type pull struct {
	id       int64
	number   int64
	title    string
	body     string
	head     string
	base     string
	headSHA  string
	baseSHA  string
	state    string // open, closed
	merged   bool
	mergeSHA string
	author   *account
	mergedBy *account
	created  time.Time
	updated  time.Time
	closed   time.Time
}

type repo struct {
	id            int64
	owner         *account
	name          string
	description   string
	private       bool
	fork          bool
	archived      bool
	defaultBranch string
	branches      map[string]string // name → sha, for repositories without git data
	commits       map[string]bool   // every sha known in a repository without git data
	gitDir        string            // the bare repository, for repositories with git data
	collaborators map[string]string // login (lower) → read, write or admin
	hooks         []*hook
	pulls         []*pull
	nextIndex     int64
	created       time.Time
	updated       time.Time
}

func (r *repo) fullName() string { return r.owner.login + "/" + r.name }

func (r *repo) openPulls() int {
	n := 0
	for _, p := range r.pulls {
		if p.state == "open" {
			n++
		}
	}
	return n
}

type token struct {
	value   string
	user    *account
	scopes  []string
	revoked bool
}

// hasScope reports whether scopes grant want ("read:repository"): the scope itself, the
// write scope of its category for a read, or "all".
func hasScope(scopes []string, want string) bool {
	level, category, _ := strings.Cut(want, ":")
	for _, s := range scopes {
		if s == "all" || s == want || (level == "read" && s == "write:"+category) {
			return true
		}
	}
	return false
}

// Repo describes a repository for AddRepository; zero fields get Gitea's defaults. The
// Repository method returns it filled in.
type Repo struct {
	ID            int64
	FullName      string // owner/name; the owner is created as a user when unknown
	Description   string
	Private       bool
	Fork          bool
	Archived      bool
	DefaultBranch string // default "main"
}

// Hook is a repository webhook as the fake stores it, secret included.
type Hook struct {
	ID           int64
	Type         string // gitea, forgejo, slack, …
	URL          string
	ContentType  string // json or form
	Secret       string
	BranchFilter string
	Events       []string // as Gitea lists them
	Active       bool
	// LastStatus is the outcome of the hook's last delivery: "", "succeed" or "fail".
	LastStatus string
}

// PullRequest is a pull request as the fake stores it.
type PullRequest struct {
	Number  int64
	Title   string
	Body    string
	Head    string
	Base    string
	HeadSHA string
	BaseSHA string
	State   string
	Merged  bool
	Author  string
}

func (s *Server) nextID() int64 {
	s.seq++
	return s.seq
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// fakeSHA is a deterministic commit id for repositories without git data.
func fakeSHA(parts ...string) string {
	sum := sha1.Sum([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(sum[:])
}

func (s *Server) accountLocked(login string, org bool) *account {
	key := strings.ToLower(login)
	if a, ok := s.users[key]; ok {
		return a
	}
	a := &account{id: s.nextID(), login: login, org: org, email: strings.ToLower(login) + "@noreply.gitea.local",
		members: map[string]string{}, created: s.now()}
	if !org {
		a.fullName = strings.ToUpper(login[:1]) + login[1:]
	}
	s.users[key] = a
	return a
}

// AddUser creates a user (nothing when it exists). admin makes it a site administrator, with
// administrator rights on every repository.
func (s *Server) AddUser(login string, admin bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.accountLocked(login, false).admin = admin
}

// AddOrg creates an organization; private hides it from outsiders, which makes its public
// repositories "internal".
func (s *Server) AddOrg(login string, private bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.accountLocked(login, true).private = private
}

// AddOrgMember puts login in a team of org with permission (read, write, admin or owner) on
// all of the organization's repositories.
func (s *Server) AddOrgMember(org, login, permission string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.accountLocked(org, true)
	s.accountLocked(login, false)
	o.members[strings.ToLower(login)] = permission
}

// AddCollaborator gives login permission (read, write or admin) on a repository.
func (s *Server) AddCollaborator(fullName, login, permission string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.mustRepoLocked(fullName)
	s.accountLocked(login, false)
	r.collaborators[strings.ToLower(login)] = permission
}

// AddRepository creates a repository without git data, with one commit on its default
// branch, and returns it.
func (s *Server) AddRepository(r Repo) Repo {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addRepoLocked(r, "")
}

// AddRepositories creates n repositories owner/repo-001… (skipping names taken) and returns
// them.
func (s *Server) AddRepositories(owner string, n int) []Repo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Repo, 0, n)
	for k := 1; len(out) < n; k++ {
		name := fmt.Sprintf("%s/repo-%03d", owner, k)
		if _, taken := s.names[strings.ToLower(name)]; !taken {
			out = append(out, s.addRepoLocked(Repo{FullName: name}, ""))
		}
	}
	return out
}

func (s *Server) addRepoLocked(in Repo, gitDir string) Repo {
	ownerName, name, ok := strings.Cut(in.FullName, "/")
	if !ok || ownerName == "" || name == "" || strings.Contains(name, "/") {
		s.t.Fatalf("giteafake: repository name %q is not owner/name", in.FullName)
	}
	if _, exists := s.names[strings.ToLower(in.FullName)]; exists {
		s.t.Fatalf("giteafake: repository %s exists", in.FullName)
	}
	owner := s.accountLocked(ownerName, false)
	if in.ID == 0 {
		in.ID = s.nextID()
	}
	if in.DefaultBranch == "" {
		in.DefaultBranch = "main"
	}
	now := s.now()
	r := &repo{
		id: in.ID, owner: owner, name: name, description: in.Description, private: in.Private,
		fork: in.Fork, archived: in.Archived, defaultBranch: in.DefaultBranch,
		branches: map[string]string{}, commits: map[string]bool{}, gitDir: gitDir,
		collaborators: map[string]string{}, created: now, updated: now,
	}
	if gitDir == "" {
		sha := fakeSHA(in.FullName, "initial")
		r.branches[in.DefaultBranch] = sha
		r.commits[sha] = true
	}
	s.repos[r.id] = r
	s.names[strings.ToLower(in.FullName)] = r.id
	return s.exportRepo(r)
}

func (s *Server) exportRepo(r *repo) Repo {
	return Repo{ID: r.id, FullName: r.fullName(), Description: r.description, Private: r.private,
		Fork: r.fork, Archived: r.archived, DefaultBranch: r.defaultBranch}
}

func (s *Server) mustRepoLocked(fullName string) *repo {
	id, ok := s.names[strings.ToLower(fullName)]
	if !ok {
		s.t.Fatalf("giteafake: no repository %s", fullName)
	}
	return s.repos[id]
}

// Repository returns a repository by full name.
func (s *Server) Repository(fullName string) (Repo, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.names[strings.ToLower(fullName)]
	if !ok {
		return Repo{}, false
	}
	return s.exportRepo(s.repos[id]), true
}

// RenameRepository renames a repository; its id stays.
func (s *Server) RenameRepository(fullName, newName string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.mustRepoLocked(fullName)
	delete(s.names, strings.ToLower(fullName))
	r.name = newName
	s.names[strings.ToLower(r.fullName())] = r.id
}

// DeleteRepository removes a repository.
func (s *Server) DeleteRepository(fullName string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.mustRepoLocked(fullName)
	delete(s.names, strings.ToLower(fullName))
	delete(s.repos, r.id)
}

// SetBranch points a branch of a repository without git data at sha.
func (s *Server) SetBranch(fullName, branch, sha string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.mustRepoLocked(fullName)
	r.branches[branch] = sha
	r.commits[sha] = true
}

// Branches returns a repository's branches (name → sha), from git for a repository with git
// data.
func (s *Server) Branches(fullName string) map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, err := s.branchesOf(s.mustRepoLocked(fullName))
	if err != nil {
		s.t.Fatalf("giteafake: branches of %s: %v", fullName, err)
	}
	return b
}

// IssueToken creates an access token for login (created when unknown) with the given scopes
// ("write:repository", "read:user", … or "all") and returns it.
func (s *Server) IssueToken(login string, scopes ...string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	value := randomHex(20) // Gitea's tokens are 40 hex characters
	s.tokens[value] = &token{value: value, user: s.accountLocked(login, false), scopes: slices.Clone(scopes)}
	return value
}

// RevokeToken deletes a token, as its owner does in Settings › Applications.
func (s *Server) RevokeToken(tok string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.tokens[tok]; ok {
		t.revoked = true
	}
}

// Hooks returns a repository's webhooks, secrets included, in creation order.
func (s *Server) Hooks(fullName string) []Hook {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.mustRepoLocked(fullName)
	out := make([]Hook, 0, len(r.hooks))
	for _, h := range r.hooks {
		out = append(out, exportHook(h))
	}
	return out
}

func exportHook(h *hook) Hook {
	return Hook{ID: h.id, Type: h.typ, URL: h.url, ContentType: h.contentType, Secret: h.secret,
		BranchFilter: h.branchFilter, Events: h.eventsArray(), Active: h.active, LastStatus: h.lastStatus}
}

// AddHook creates a webhook as the repository settings page does: events are Gitea's hook
// event types as the API accepts them ("push", "pull_request", …). It returns its id.
func (s *Server) AddHook(fullName string, h Hook) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.mustRepoLocked(fullName)
	if h.Type == "" {
		h.Type = "gitea"
	}
	if h.ContentType == "" {
		h.ContentType = "json"
	}
	now := s.now()
	nh := &hook{id: s.nextID(), typ: h.Type, url: h.URL, contentType: h.ContentType, secret: h.Secret,
		branchFilter: h.BranchFilter, events: hookEventsFrom(h.Events), active: h.Active, created: now, updated: now}
	r.hooks = append(r.hooks, nh)
	return nh.id
}

// UpdateHook changes a webhook behind the API's back (deactivated by a person, say).
func (s *Server) UpdateHook(fullName string, id int64, fn func(*Hook)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.mustRepoLocked(fullName)
	for _, h := range r.hooks {
		if h.id != id {
			continue
		}
		x := exportHook(h)
		fn(&x)
		h.typ, h.url, h.contentType, h.secret, h.branchFilter, h.active = x.Type, x.URL, x.ContentType, x.Secret, x.BranchFilter, x.Active
		h.events = hookEventsFrom(x.Events)
		h.updated = s.now()
		return
	}
	s.t.Fatalf("giteafake: no hook %d on %s", id, fullName)
}

// DeleteHooks deletes every webhook of a repository, as a person would on the settings page.
func (s *Server) DeleteHooks(fullName string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mustRepoLocked(fullName).hooks = nil
}

// PullRequests returns a repository's pull requests.
func (s *Server) PullRequests(fullName string) []PullRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.mustRepoLocked(fullName)
	out := make([]PullRequest, 0, len(r.pulls))
	for _, p := range r.pulls {
		out = append(out, PullRequest{Number: p.number, Title: p.title, Body: p.body, Head: p.head, Base: p.base,
			HeadSHA: p.headSHA, BaseSHA: p.baseSHA, State: p.state, Merged: p.merged, Author: p.author.login})
	}
	return out
}

// hookEventTypes are Gitea's hook event types (modules/webhook/type.go) that a repository
// hook can choose.
var hookEventTypes = []string{
	"create", "delete", "fork", "push",
	"issues", "issue_assign", "issue_label", "issue_milestone", "issue_comment",
	"pull_request", "pull_request_assign", "pull_request_label", "pull_request_milestone",
	"pull_request_comment", "pull_request_review", "pull_request_sync", "pull_request_review_request",
	"wiki", "repository", "release",
}

// hookEventsFrom turns the events of a create or edit request into the hook's event set as
// Gitea's API does: "issues" and "pull_request" switch on their whole families, "issues_only"
// and "pull_request_only" the bare event; an empty list means push only.
func hookEventsFrom(events []string) map[string]bool {
	if len(events) == 0 {
		events = []string{"push"}
	}
	has := func(e string) bool {
		return slices.ContainsFunc(events, func(x string) bool { return strings.EqualFold(x, e) })
	}
	out := map[string]bool{}
	for _, e := range hookEventTypes {
		switch {
		case e == "issues":
			out[e] = has("issues_only") || has("issues")
		case e == "pull_request":
			out[e] = has("pull_request_only") || has("pull_request")
		case strings.HasPrefix(e, "issue_"):
			out[e] = has(e) || has("issues")
		case strings.HasPrefix(e, "pull_request_"):
			out[e] = has(e) || has("pull_request")
		default:
			out[e] = has(e)
		}
	}
	return out
}

// hasEvent is Gitea's Webhook.HasEvent: review events are chosen as pull_request_review.
func (h *hook) hasEvent(eventType string) bool {
	switch eventType {
	case "pull_request_review_approved", "pull_request_review_rejected", "pull_request_review_comment":
		eventType = "pull_request_review"
	}
	return h.events[eventType]
}

// permission is what a user (nil: anonymous) may do on a repository: "" (nothing), read,
// write or admin.
func (s *Server) permission(u *account, r *repo) string {
	best := ""
	raise := func(p string) {
		if p == "owner" {
			p = permAdmin
		}
		if roles[p] > roles[best] {
			best = p
		}
	}
	// A public repository is readable by anyone, unless its organization is private: then by
	// its members only (Gitea reports such a repository as "internal").
	if !r.private && !(r.owner.org && r.owner.private) {
		raise(permRead)
	}
	if u == nil {
		return best
	}
	switch {
	case u.admin, r.owner == u:
		raise(permAdmin)
	}
	if r.owner.org {
		raise(r.owner.members[strings.ToLower(u.login)])
	}
	raise(r.collaborators[strings.ToLower(u.login)])
	return best
}
