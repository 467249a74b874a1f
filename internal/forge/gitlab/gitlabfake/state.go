package gitlabfake

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Access levels, as GitLab names its roles.
const (
	Guest      = 10
	Reporter   = 20
	Developer  = 30
	Maintainer = 40
	Owner      = 50
)

type user struct {
	id       int64
	username string
	name     string
	email    string
	admin    bool
	ns       *namespace
}

type tokenKind int

const (
	kindAccess tokenKind = iota // personal, group or project access token
	kindOAuth
)

type token struct {
	value   string
	id      int64
	name    string
	kind    tokenKind
	user    *user
	scopes  []string
	created time.Time
	expires time.Time // zero: never
	revoked bool
	app     *oauthApp
}

func (t *token) hasScope(any ...string) bool {
	for _, s := range t.scopes {
		if slices.Contains(any, s) {
			return true
		}
	}
	return false
}

type namespace struct {
	id       int64
	name     string
	path     string
	fullPath string
	kind     string // "user" or "group"
	parent   *namespace
	members  map[int64]int
}

type project struct {
	id            int64
	name          string
	path          string
	ns            *namespace
	visibility    string // private, internal, public
	archived      bool
	description   string
	defaultBranch string
	forkedFrom    int64
	created       time.Time
	members       map[int64]int
	hooks         []*hook
	branches      map[string]string // name → sha, when the project has no git repository
	gitDir        string            // the bare repository, for projects made with AddGitProject
	mrs           []*mergeRequest
	shas          map[string]bool // commits known to a project without git
}

func (p *project) fullPath() string { return p.ns.fullPath + "/" + p.path }

type hook struct {
	id            int64
	uuid          string
	projectID     int64
	url           string
	token         string
	signing       string
	push          bool
	tagPush       bool
	mergeRequests bool
	ssl           bool
	created       time.Time
	failures      int
	disabledUntil time.Time
}

// Hook auto-disabling, as GitLab's WebHooks::AutoDisabling does it.
const (
	temporarilyDisabledAfter = 3  // failures before the backoff starts
	permanentlyDisabledAfter = 39 // failures before the hook is disabled for good
	initialBackoff           = time.Minute
	maxBackoff               = 24 * time.Hour
)

func (h *hook) alertStatus(now time.Time) string {
	switch {
	case h.failures > permanentlyDisabledAfter:
		return "disabled"
	case h.failures > temporarilyDisabledAfter && !h.disabledUntil.IsZero() && !h.disabledUntil.Before(now):
		return "temporarily_disabled"
	}
	return "executable"
}

// backoff records a failed delivery: past the third failure in a row the hook rests for a
// minute, doubling with each failure up to a day.
func (h *hook) backoff(now time.Time) {
	if h.alertStatus(now) != "executable" {
		return
	}
	next := min(h.failures+1, permanentlyDisabledAfter+1)
	if next > temporarilyDisabledAfter {
		d := maxBackoff
		if n := h.failures - temporarilyDisabledAfter; n < 11 {
			d = min(initialBackoff<<max(n, 0), maxBackoff)
		}
		h.disabledUntil = now.Add(d)
	}
	h.failures = next
}

func (h *hook) enable() { h.failures, h.disabledUntil = 0, time.Time{} }

type mergeRequest struct {
	id          int64
	iid         int64
	title       string
	description string
	state       string
	source      string
	target      string
	sha         string
	author      *user
	created     time.Time
}

type oauthApp struct {
	clientID string
	secret   string
	redirect string
	scopes   []string
}

type refreshToken struct {
	value   string
	app     *oauthApp
	user    *user
	scopes  []string
	revoked bool
}

type oauthCode struct {
	app      *oauthApp
	user     *user
	redirect string
	scopes   []string
	expires  time.Time
}

func (s *Server) nextID() int64 {
	s.seq++
	return s.seq
}

// User describes a user to create.
type User struct {
	Username string
	Name     string // default: the username
	Email    string // default: username@example.com
	Admin    bool
}

// AddUser creates a user and their personal namespace.
func (s *Server) AddUser(u User) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addUserLocked(u)
}

func (s *Server) addUserLocked(u User) *user {
	if existing, ok := s.users[strings.ToLower(u.Username)]; ok {
		return existing
	}
	if ns, taken := s.namespaces[strings.ToLower(u.Username)]; taken {
		s.t.Fatalf("gitlabfake: user %s would take the path of the %s %s", u.Username, ns.kind, ns.fullPath)
	}
	if u.Name == "" {
		u.Name = u.Username
	}
	if u.Email == "" {
		u.Email = strings.ToLower(u.Username) + "@example.com"
	}
	nu := &user{id: s.nextID(), username: u.Username, name: u.Name, email: u.Email, admin: u.Admin}
	nu.ns = &namespace{id: s.nextID(), name: u.Name, path: u.Username, fullPath: u.Username, kind: "user", members: map[int64]int{nu.id: Owner}}
	s.users[strings.ToLower(u.Username)] = nu
	s.usersByID[nu.id] = nu
	s.namespaces[strings.ToLower(u.Username)] = nu.ns
	return nu
}

// Token describes an access token to issue.
type Token struct {
	Username string   // the token's user; created when missing
	Name     string   // default "forgeway"
	Scopes   []string // default ["api"]
	Expires  time.Time
}

// AddToken issues a personal access token (glpat-…) and returns its value. A group or project
// access token is a personal access token of a bot user that is a member of the group or
// project: make one with AddUser, AddMember and AddToken.
func (s *Server) AddToken(t Token) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.addUserLocked(User{Username: t.Username})
	if t.Name == "" {
		t.Name = "forgeway"
	}
	if t.Scopes == nil {
		t.Scopes = []string{"api"}
	}
	value := "glpat-" + randomHex(20)
	s.tokens[value] = &token{value: value, id: s.nextID(), name: t.Name, kind: kindAccess, user: u,
		scopes: slices.Clone(t.Scopes), created: s.now(), expires: t.Expires}
	return value
}

// RevokeToken revokes a token (access or OAuth), as revoking it in GitLab's settings does.
func (s *Server) RevokeToken(value string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.tokens[value]; ok {
		t.revoked = true
	}
}

// AddGroup creates a group and its parent groups ("acme/platform").
func (s *Server) AddGroup(fullPath string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.groupLocked(fullPath)
}

func (s *Server) groupLocked(fullPath string) *namespace {
	if ns, ok := s.namespaces[strings.ToLower(fullPath)]; ok {
		return ns
	}
	var parent *namespace
	path := fullPath
	if i := strings.LastIndex(fullPath, "/"); i >= 0 {
		parent = s.groupLocked(fullPath[:i])
		path = fullPath[i+1:]
	}
	ns := &namespace{id: s.nextID(), name: path, path: path, fullPath: fullPath, kind: "group", parent: parent, members: map[int64]int{}}
	s.namespaces[strings.ToLower(fullPath)] = ns
	return ns
}

// AddMember gives a user a role (an access level) on a group or a project, by its full path.
func (s *Server) AddMember(fullPath, username string, level int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.addUserLocked(User{Username: username})
	if p, ok := s.byPath[strings.ToLower(fullPath)]; ok {
		p.members[u.id] = level
		return
	}
	ns, ok := s.namespaces[strings.ToLower(fullPath)]
	if !ok {
		s.t.Fatalf("gitlabfake: no group or project %q", fullPath)
	}
	ns.members[u.id] = level
}

// Project describes a project to create.
type Project struct {
	FullPath      string // "group/subgroup/name" or "username/name"; missing groups are created
	Name          string // default: the path
	Visibility    string // private (default), internal or public
	Archived      bool
	Description   string
	DefaultBranch string // default "main"
	ForkedFrom    int64
	// Branches of a project without git: name → head sha; default one branch, the default
	// branch, at a made-up sha.
	Branches map[string]string
}

// AddProject creates a project without git data and returns its id.
func (s *Server) AddProject(p Project) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addProjectLocked(p).id
}

func (s *Server) addProjectLocked(p Project) *project {
	i := strings.LastIndex(p.FullPath, "/")
	if i <= 0 || i == len(p.FullPath)-1 {
		s.t.Fatalf("gitlabfake: project path %q is not namespace/name", p.FullPath)
	}
	if _, dup := s.byPath[strings.ToLower(p.FullPath)]; dup {
		s.t.Fatalf("gitlabfake: project %s exists", p.FullPath)
	}
	nsPath, path := p.FullPath[:i], p.FullPath[i+1:]
	ns, ok := s.namespaces[strings.ToLower(nsPath)]
	if !ok {
		ns = s.groupLocked(nsPath)
	}
	if p.Visibility == "" {
		p.Visibility = "private"
	}
	if p.DefaultBranch == "" {
		p.DefaultBranch = "main"
	}
	if p.Name == "" {
		p.Name = path
	}
	np := &project{
		id: s.nextID(), name: p.Name, path: path, ns: ns, visibility: p.Visibility, archived: p.Archived,
		description: p.Description, defaultBranch: p.DefaultBranch, forkedFrom: p.ForkedFrom, created: s.now(),
		members: map[int64]int{}, branches: map[string]string{}, shas: map[string]bool{},
	}
	if p.Branches == nil {
		p.Branches = map[string]string{p.DefaultBranch: fakeSHA(p.FullPath, p.DefaultBranch)}
	}
	for name, sha := range p.Branches {
		np.branches[name] = sha
		np.shas[sha] = true
	}
	s.projects[np.id] = np
	s.byPath[strings.ToLower(p.FullPath)] = np
	return np
}

// AddProjects creates n private projects named <group>/project-0001… in the group, and
// returns their full paths.
func (s *Server) AddProjects(group string, n int) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.groupLocked(group)
	var out []string
	for i := 1; len(out) < n; i++ {
		full := fmt.Sprintf("%s/project-%04d", group, i)
		if _, taken := s.byPath[strings.ToLower(full)]; taken {
			continue
		}
		s.addProjectLocked(Project{FullPath: full})
		out = append(out, full)
	}
	return out
}

// ProjectID is the id of the project at fullPath.
func (s *Server) ProjectID(fullPath string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.projectLocked(fullPath).id
}

func (s *Server) projectLocked(fullPath string) *project {
	p, ok := s.byPath[strings.ToLower(fullPath)]
	if !ok {
		s.t.Fatalf("gitlabfake: no project %q", fullPath)
	}
	return p
}

// Hook is a webhook as GitLab stores it, tokens included (its API never shows them).
type Hook struct {
	ID                    int64
	URL                   string
	Token                 string
	SigningToken          string
	PushEvents            bool
	TagPushEvents         bool
	MergeRequestsEvents   bool
	EnableSSLVerification bool
	// AlertStatus is executable, temporarily_disabled or disabled.
	AlertStatus   string
	Failures      int
	DisabledUntil time.Time
}

// Hooks lists a project's webhooks.
func (s *Server) Hooks(fullPath string) []Hook {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.projectLocked(fullPath)
	out := make([]Hook, 0, len(p.hooks))
	for _, h := range p.hooks {
		out = append(out, Hook{
			ID: h.id, URL: h.url, Token: h.token, SigningToken: h.signing,
			PushEvents: h.push, TagPushEvents: h.tagPush, MergeRequestsEvents: h.mergeRequests,
			EnableSSLVerification: h.ssl, AlertStatus: h.alertStatus(s.now()), Failures: h.failures, DisabledUntil: h.disabledUntil,
		})
	}
	return out
}

// AddHook creates a webhook as someone doing it in GitLab's settings would (no URL check)
// and returns its id.
func (s *Server) AddHook(fullPath string, h Hook) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.projectLocked(fullPath)
	nh := &hook{id: s.nextID(), uuid: newUUID(), projectID: p.id, url: h.URL, token: h.Token, signing: h.SigningToken,
		push: h.PushEvents, tagPush: h.TagPushEvents, mergeRequests: h.MergeRequestsEvents, ssl: h.EnableSSLVerification,
		created: s.now(), failures: h.Failures, disabledUntil: h.DisabledUntil}
	p.hooks = append(p.hooks, nh)
	return nh.id
}

// DeleteHooks deletes a project's webhooks, as someone doing it in GitLab's settings does.
func (s *Server) DeleteHooks(fullPath string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.projectLocked(fullPath).hooks = nil
}

// SetHookFailures sets a hook's failure count and disabled_until, to arrange a hook GitLab
// disabled: more than 3 failures with disabledUntil ahead is temporarily_disabled, more than
// 39 is disabled.
func (s *Server) SetHookFailures(fullPath string, hookID int64, failures int, disabledUntil time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, h := range s.projectLocked(fullPath).hooks {
		if h.id == hookID {
			h.failures, h.disabledUntil = failures, disabledUntil
			return
		}
	}
	s.t.Fatalf("gitlabfake: no hook %d on %s", hookID, fullPath)
}

// MergeRequest is a merge request as the fake stores it.
type MergeRequest struct {
	IID          int64
	Title        string
	Description  string
	State        string
	SourceBranch string
	TargetBranch string
	Author       string
}

// MergeRequests lists a project's merge requests.
func (s *Server) MergeRequests(fullPath string) []MergeRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []MergeRequest
	for _, m := range s.projectLocked(fullPath).mrs {
		out = append(out, MergeRequest{IID: m.iid, Title: m.title, Description: m.description, State: m.state,
			SourceBranch: m.source, TargetBranch: m.target, Author: m.author.username})
	}
	return out
}

// AddOAuthApp registers an OAuth application with its callback URL and returns its
// application id (client id) and secret.
func (s *Server) AddOAuthApp(redirectURI string, scopes ...string) (clientID, secret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(scopes) == 0 {
		scopes = []string{"api"}
	}
	app := &oauthApp{clientID: randomHex(64), secret: "gloas-" + randomHex(64), redirect: redirectURI, scopes: scopes}
	s.apps[app.clientID] = app
	return app.clientID, app.secret
}

// SetBrowserUser makes GET /oauth/authorize authorize applications as this user, as the
// person signed in to GitLab in the browser would.
func (s *Server) SetBrowserUser(username string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.browserUser = s.addUserLocked(User{Username: username})
}

// IssueOAuthToken authorizes an application for a user and returns the access and refresh
// tokens GitLab's token endpoint would, as a completed authorization code flow does.
func (s *Server) IssueOAuthToken(clientID, username string) (access, refresh string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	app, ok := s.apps[clientID]
	if !ok {
		s.t.Fatalf("gitlabfake: no OAuth application %q", clientID)
	}
	t, r := s.issueOAuthLocked(app, s.addUserLocked(User{Username: username}), app.scopes)
	return t.value, r.value
}

// oauthTokenLife is how long GitLab's OAuth access tokens last.
const oauthTokenLife = 2 * time.Hour

func (s *Server) issueOAuthLocked(app *oauthApp, u *user, scopes []string) (*token, *refreshToken) {
	t := &token{value: randomHex(64), id: s.nextID(), kind: kindOAuth, user: u, scopes: slices.Clone(scopes),
		created: s.now(), expires: s.now().Add(oauthTokenLife), app: app}
	r := &refreshToken{value: randomHex(64), app: app, user: u, scopes: slices.Clone(scopes)}
	s.tokens[t.value] = t
	s.refresh[r.value] = r
	return t, r
}

// Delivery is the outcome of one webhook delivery the fake made.
type Delivery struct {
	HookID int64
	URL    string
	Event  string // the X-Gitlab-Event
	ID     string // the Idempotency-Key
	Body   []byte
	// Status is the receiver's HTTP status; 0 when it could not be reached (Err says why).
	Status int
	Err    error
}

// Deliveries lists the deliveries made so far, in the order they ended.
func (s *Server) Deliveries() []Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.deliveries)
}

// Flush waits until every delivery started so far has ended.
func (s *Server) Flush() { s.sending.Wait() }

func fakeSHA(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:40]
}
