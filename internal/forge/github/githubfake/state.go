package githubfake

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"
)

// The in-memory host. Every field of Server below mu is guarded by it; the arrangement
// methods in this file take it, so tests may call them while clients are running.

type account struct {
	id      int64
	login   string
	typ     string            // "User" or "Organization"
	members map[string]string // organizations: member login (lower) → permission on its repos
	created time.Time
}

type app struct {
	id            int64
	slug, name    string
	description   string
	homepage      string
	owner         *account
	clientID      string
	clientSecret  string
	webhookURL    string
	webhookSecret string
	hookID        int64
	key           *rsa.PrivateKey
	permissions   map[string]string
	events        []string
	createdAt     time.Time
}

type installation struct {
	id          int64
	appID       int64
	account     *account
	repos       map[int64]bool // nil: every repository of the account ("all")
	suspended   bool
	suspendedAt time.Time
	createdAt   time.Time
}

func (in *installation) selection() string {
	if in.repos == nil {
		return "all"
	}
	return "selected"
}

func (in *installation) covers(r *repo) bool {
	if in.suspended {
		return false
	}
	if in.repos == nil {
		return r.owner == in.account
	}
	return in.repos[r.id]
}

type hook struct {
	id          int64
	url         string
	events      []string
	active      bool
	contentType string
	insecureSSL string
	secret      string
	last        LastResponse
	createdAt   time.Time
	updatedAt   time.Time
}

type pull struct {
	id, number       int64
	title, body      string
	head, base       string
	headSHA, baseSHA string
	draft            bool
	state            string
	author           *account
	createdAt        time.Time
}

type repo struct {
	id                   int64
	owner                *account
	name                 string
	description          string
	visibility           string // public, private, internal
	archived, fork       bool
	defaultBranch        string
	branches             map[string]string // name → sha
	commits              map[string]bool   // every sha the repository is known to contain
	collaborators        map[string]string // login (lower) → pull, push or admin
	hooks                []*hook
	pulls                []*pull
	createdAt, updatedAt time.Time
	pushedAt             time.Time
}

func (r *repo) fullName() string { return r.owner.login + "/" + r.name }

// tokenKind tells credentials apart.
type tokenKind int

const (
	kindInstallation tokenKind = iota + 1 // ghs_
	kindPAT                               // ghp_ (classic) or github_pat_ (fine-grained)
	kindUser                              // ghu_: a user-to-server token of an App
)

type token struct {
	kind        tokenKind
	fine        bool              // fine-grained PAT
	scopes      []string          // classic PAT
	permissions map[string]string // installation token, fine-grained PAT
	repos       map[int64]bool    // installation token restricted to repositories; nil: all
	install     *installation
	user        *account
	app         *app // user tokens: the App they act through
	expires     time.Time
	revoked     bool
}

type refreshToken struct {
	app     *app
	user    *account
	expires time.Time
	used    bool
}

type oauthCode struct {
	app     *app
	user    *account
	expires time.Time
}

type manifestCode struct {
	manifest appManifest
	owner    *account
	expires  time.Time
}

// appManifest is the manifest a user posts to create an App.
type appManifest struct {
	Name           string `json:"name"`
	URL            string `json:"url"`
	Description    string `json:"description"`
	HookAttributes struct {
		URL    string `json:"url"`
		Active *bool  `json:"active"`
	} `json:"hook_attributes"`
	RedirectURL        string            `json:"redirect_url"`
	CallbackURLs       []string          `json:"callback_urls"`
	SetupURL           string            `json:"setup_url"`
	Public             bool              `json:"public"`
	DefaultPermissions map[string]string `json:"default_permissions"`
	DefaultEvents      []string          `json:"default_events"`
}

// App is a GitHub App registered on the fake. Zero fields of the value given to AddApp are
// filled in (ids, slug, client credentials, a 2048-bit key) and the complete App returned.
type App struct {
	ID            int64
	Slug          string
	Name          string
	Owner         string // the account owning the App; default "octo-org"
	ClientID      string
	ClientSecret  string
	WebhookURL    string // the App's webhook: where installation-wide deliveries go
	WebhookSecret string
	Key           *rsa.PrivateKey
	// Permissions default to DefaultPermissions; Events to push, pull_request, create,
	// delete, repository.
	Permissions map[string]string
	Events      []string
}

// PrivateKeyPEM is the App's key as GitHub hands it out: a PKCS#1 "RSA PRIVATE KEY" block.
func (a App) PrivateKeyPEM() string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(a.Key)}))
}

// DefaultPermissions are the permissions an App gets when AddApp is not told others.
func DefaultPermissions() map[string]string {
	return map[string]string{
		"administration": "write", "contents": "write", "metadata": "read", "pull_requests": "write",
		"repository_hooks": "write", "members": "read",
	}
}

// Installation is an App installed on an account. Repositories lists the full names it was
// granted; empty means every repository of the account, present and future.
type Installation struct {
	ID           int64
	AppID        int64
	Account      string
	Repositories []string
	Suspended    bool
}

// Repo is a repository. FullName is "owner/name"; the owner account is created as a user
// unless AddOrg made it an organization. Zero fields are filled in: a fresh ID, visibility
// from Private, DefaultBranch "main" with one commit.
type Repo struct {
	ID            int64
	FullName      string
	Private       bool
	Visibility    string // public, private or internal; default from Private
	Archived      bool
	Fork          bool
	Description   string
	DefaultBranch string
	Branches      map[string]string // branch → head sha
}

// PAT describes a personal access token to issue.
type PAT struct {
	Login string
	// FineGrained issues a github_pat_ token with Permissions; otherwise a classic ghp_
	// token with Scopes (default: repo, admin:repo_hook, read:org).
	FineGrained bool
	Scopes      []string
	Permissions map[string]string
	// Expires is when the token stops working; zero: never.
	Expires time.Time
}

// LastResponse is the outcome of a hook's last delivery, as GitHub reports it.
type LastResponse struct {
	Code    *int
	Status  string // "unused" before the first delivery, "active" after a 2xx, …
	Message string
}

// Hook is a repository webhook, including its secret (which the API never shows).
type Hook struct {
	ID           int64
	URL          string
	Events       []string
	Active       bool
	ContentType  string
	InsecureSSL  string
	Secret       string
	LastResponse LastResponse
}

// PullRequest is a pull request as the fake stores it.
type PullRequest struct {
	Number      int64
	Title, Body string
	Head, Base  string
	HeadSHA     string
	Draft       bool
	Author      string
}

// repoIndex orders the repositories for listings; it is rebuilt after a change.
type repoIndex struct {
	byID   []*repo
	byName []*repo // by lower-case full name, GitHub's order for /user/repos
}

func (s *Server) index() *repoIndex {
	if s.idx != nil {
		return s.idx
	}
	idx := &repoIndex{}
	for _, r := range s.repos {
		idx.byID = append(idx.byID, r)
	}
	sort.Slice(idx.byID, func(i, j int) bool { return idx.byID[i].id < idx.byID[j].id })
	keys := make(map[*repo]string, len(s.repos))
	for _, r := range idx.byID {
		keys[r] = strings.ToLower(r.fullName())
	}
	idx.byName = slices.Clone(idx.byID)
	sort.Slice(idx.byName, func(i, j int) bool { return keys[idx.byName[i]] < keys[idx.byName[j]] })
	s.idx = idx
	return idx
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

const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// randomToken is prefix plus 36 random alphanumerics, GitHub's token format.
func randomToken(prefix string) string {
	b := make([]byte, 36)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alnum[int(b[i])%len(alnum)]
	}
	return prefix + string(b)
}

// fakeSHA is a deterministic commit id for seeded content.
func fakeSHA(parts ...string) string {
	h := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(h[:20])
}

func (s *Server) accountLocked(login, typ string) *account {
	k := strings.ToLower(login)
	if a, ok := s.accounts[k]; ok {
		return a
	}
	a := &account{id: s.nextID(), login: login, typ: typ, created: s.now()}
	if typ == "Organization" {
		a.members = map[string]string{}
	}
	s.accounts[k] = a
	return a
}

// AddUser registers a user account (repositories and tokens create theirs on demand).
func (s *Server) AddUser(login string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.accountLocked(login, "User")
}

// AddOrg registers an organization; add it before its repositories.
func (s *Server) AddOrg(login string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.accountLocked(login, "Organization")
	if a.typ != "Organization" {
		s.t.Fatalf("githubfake: %s already exists as a user", login)
	}
}

// AddOrgMember makes login a member of org with permission (pull, push or admin) on every
// repository of the organization.
func (s *Server) AddOrgMember(org, login, permission string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.accountLocked(org, "Organization")
	s.accountLocked(login, "User")
	o.members[strings.ToLower(login)] = permission
}

// AddCollaborator gives login permission (pull, push or admin) on repo.
func (s *Server) AddCollaborator(repoName, login, permission string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.mustRepo(repoName)
	s.accountLocked(login, "User")
	r.collaborators[strings.ToLower(login)] = permission
}

// AddApp registers a GitHub App and returns it complete (see App).
func (s *Server) AddApp(a App) App {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a.ID == 0 {
		a.ID = s.nextID()
	}
	if a.Slug == "" {
		a.Slug = fmt.Sprintf("forgeway-%d", a.ID)
	}
	if a.Name == "" {
		a.Name = a.Slug
	}
	if a.Owner == "" {
		a.Owner = "octo-org"
	}
	if a.ClientID == "" {
		a.ClientID = "Iv1." + randomHex(8)
	}
	if a.ClientSecret == "" {
		a.ClientSecret = randomHex(20)
	}
	if a.Key == nil {
		k, err := s.newKey()
		if err != nil {
			s.t.Fatalf("githubfake: generate App key: %v", err)
		}
		a.Key = k
	}
	if a.Permissions == nil {
		a.Permissions = DefaultPermissions()
	}
	if a.Events == nil {
		a.Events = []string{"create", "delete", "pull_request", "push", "repository"}
	}
	owner := s.accountLocked(a.Owner, "Organization")
	s.apps[a.ID] = &app{
		id: a.ID, slug: a.Slug, name: a.Name, owner: owner, homepage: s.URL,
		clientID: a.ClientID, clientSecret: a.ClientSecret,
		webhookURL: a.WebhookURL, webhookSecret: a.WebhookSecret, hookID: s.nextID(),
		key: a.Key, permissions: maps.Clone(a.Permissions), events: slices.Clone(a.Events),
		createdAt: s.now(),
	}
	return a
}

// SetAppWebhook changes where an App's webhook delivers, and its secret.
func (s *Server) SetAppWebhook(appID int64, url, secret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.apps[appID]
	if a == nil {
		s.t.Fatalf("githubfake: no App %d", appID)
	}
	a.webhookURL, a.webhookSecret = url, secret
}

// AddInstallation installs an App on an account and returns it with its ID.
func (s *Server) AddInstallation(in Installation) Installation {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.apps[in.AppID] == nil {
		s.t.Fatalf("githubfake: AddInstallation: no App %d", in.AppID)
	}
	if in.ID == 0 {
		in.ID = s.nextID()
	}
	typ := "User"
	if a, ok := s.accounts[strings.ToLower(in.Account)]; ok {
		typ = a.typ
	}
	acc := s.accountLocked(in.Account, typ)
	inst := &installation{id: in.ID, appID: in.AppID, account: acc, suspended: in.Suspended, createdAt: s.now()}
	if in.Suspended {
		inst.suspendedAt = s.now()
	}
	if len(in.Repositories) > 0 {
		inst.repos = map[int64]bool{}
		for _, n := range in.Repositories {
			inst.repos[s.mustRepo(n).id] = true
		}
	}
	s.installs[in.ID] = inst
	return in
}

// SuspendInstallation suspends (or unsuspends) an installation: its tokens stop working.
func (s *Server) SuspendInstallation(id int64, suspended bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	in := s.installs[id]
	if in == nil {
		s.t.Fatalf("githubfake: no installation %d", id)
	}
	in.suspended = suspended
	in.suspendedAt = s.now()
}

// AddRepository creates a repository and returns it complete (see Repo).
func (s *Server) AddRepository(r Repo) Repo {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addRepoLocked(r)
}

// AddRepositories creates n repositories owner/repo-0001 … owner/repo-n (private, every
// third one public) and returns them in that order.
func (s *Server) AddRepositories(owner string, n int) []Repo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Repo, 0, n)
	for i := 1; i <= n; i++ {
		out = append(out, s.addRepoLocked(Repo{FullName: fmt.Sprintf("%s/repo-%04d", owner, i), Private: i%3 != 0}))
	}
	return out
}

func (s *Server) addRepoLocked(r Repo) Repo {
	owner, name, ok := strings.Cut(r.FullName, "/")
	if !ok || owner == "" || name == "" || strings.Contains(name, "/") {
		s.t.Fatalf("githubfake: repository name %q is not owner/name", r.FullName)
	}
	if _, exists := s.names[strings.ToLower(r.FullName)]; exists {
		s.t.Fatalf("githubfake: repository %s already exists", r.FullName)
	}
	if r.ID == 0 {
		r.ID = s.nextID()
	}
	if r.Visibility == "" {
		r.Visibility = "public"
		if r.Private {
			r.Visibility = "private"
		}
	}
	r.Private = r.Visibility != "public"
	if r.DefaultBranch == "" {
		r.DefaultBranch = "main"
	}
	if r.Branches == nil {
		r.Branches = map[string]string{r.DefaultBranch: fakeSHA(r.FullName, r.DefaultBranch)}
	}
	r.Branches = maps.Clone(r.Branches)
	typ := "User"
	if a, ok := s.accounts[strings.ToLower(owner)]; ok {
		typ = a.typ
	}
	now := s.now()
	rp := &repo{
		id: r.ID, owner: s.accountLocked(owner, typ), name: name, description: r.Description,
		visibility: r.Visibility, archived: r.Archived, fork: r.Fork, defaultBranch: r.DefaultBranch,
		branches: maps.Clone(r.Branches), commits: map[string]bool{}, collaborators: map[string]string{},
		createdAt: now, updatedAt: now, pushedAt: now,
	}
	for _, sha := range r.Branches {
		rp.commits[sha] = true
	}
	s.repos[r.ID] = rp
	s.names[strings.ToLower(r.FullName)] = r.ID
	s.idx = nil
	return r
}

func (s *Server) mustRepo(fullName string) *repo {
	id, ok := s.names[strings.ToLower(fullName)]
	if !ok {
		s.t.Fatalf("githubfake: no repository %s", fullName)
	}
	return s.repos[id]
}

// Repository returns the repository's current state.
func (s *Server) Repository(fullName string) (Repo, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.names[strings.ToLower(fullName)]
	if !ok {
		return Repo{}, false
	}
	r := s.repos[id]
	return Repo{
		ID: r.id, FullName: r.fullName(), Private: r.visibility != "public", Visibility: r.visibility,
		Archived: r.archived, Fork: r.fork, Description: r.description, DefaultBranch: r.defaultBranch,
		Branches: maps.Clone(r.branches),
	}, true
}

// RenameRepository renames (newName "name") or transfers (newName "owner/name") a
// repository. The old name keeps answering with a 301 to the repository's id, as GitHub does.
func (s *Server) RenameRepository(fullName, newName string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.mustRepo(fullName)
	delete(s.names, strings.ToLower(fullName))
	if owner, name, ok := strings.Cut(newName, "/"); ok {
		r.owner = s.accountLocked(owner, "User")
		r.name = name
	} else {
		r.name = newName
	}
	s.names[strings.ToLower(r.fullName())] = r.id
	s.moved[strings.ToLower(fullName)] = r.id
	r.updatedAt = s.now()
	s.idx = nil
}

// DeleteRepository removes a repository; its old names answer 404.
func (s *Server) DeleteRepository(fullName string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.mustRepo(fullName)
	delete(s.names, strings.ToLower(fullName))
	delete(s.repos, r.id)
	s.idx = nil
	for k, id := range s.moved {
		if id == r.id {
			delete(s.moved, k)
		}
	}
}

// SetBranch points a branch at sha (creating it), as a push would.
func (s *Server) SetBranch(repoName, branch, sha string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.mustRepo(repoName)
	r.branches[branch] = sha
	r.commits[sha] = true
	r.pushedAt = s.now()
}

// Branches returns the repository's branches and their heads.
func (s *Server) Branches(repoName string) map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.mustRepo(repoName).branches)
}

// IssuePAT creates a personal access token for p.Login and returns it.
func (s *Server) IssuePAT(p PAT) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.accountLocked(p.Login, "User")
	t := &token{kind: kindPAT, user: u, expires: p.Expires}
	var v string
	if p.FineGrained {
		t.fine = true
		t.permissions = maps.Clone(p.Permissions)
		if t.permissions == nil {
			t.permissions = map[string]string{}
		}
		v = "github_pat_" + randomToken("")[:22] + "_" + randomToken("")
	} else {
		t.scopes = slices.Clone(p.Scopes)
		if t.scopes == nil {
			t.scopes = []string{"repo", "admin:repo_hook", "read:org"}
		}
		v = randomToken("ghp_")
	}
	s.tokens[v] = t
	return v
}

// IssueOAuthCode returns a code GitHub would append to the App's callback URL after login
// authorized it (or installed it with "request user authorization"). It is valid for
// 10 minutes, once.
func (s *Server) IssueOAuthCode(appID int64, login string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.apps[appID]
	if a == nil {
		s.t.Fatalf("githubfake: no App %d", appID)
	}
	c := randomHex(10)
	s.oauthCodes[c] = &oauthCode{app: a, user: s.accountLocked(login, "User"), expires: s.now().Add(10 * time.Minute)}
	return c
}

// ExpireToken makes a token (installation, personal, user or refresh) expire now.
func (s *Server) ExpireToken(tok string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.tokens[tok]; ok {
		t.expires = s.now().Add(-time.Second)
	}
	if r, ok := s.refresh[tok]; ok {
		r.expires = s.now().Add(-time.Second)
	}
}

// ExpireInstallationTokens makes every token issued for an installation expire now, as if
// an hour had passed for them.
func (s *Server) ExpireInstallationTokens(installationID int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.tokens {
		if t.install != nil && t.install.id == installationID {
			t.expires = s.now().Add(-time.Second)
		}
	}
}

// RevokeToken revokes a token: it answers 401 from now on.
func (s *Server) RevokeToken(tok string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.tokens[tok]; ok {
		t.revoked = true
	}
}

// InstallationTokens returns the unexpired tokens issued for an installation.
func (s *Server) InstallationTokens(installationID int64) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for v, t := range s.tokens {
		if t.install != nil && t.install.id == installationID && s.now().Before(t.expires) && !t.revoked {
			out = append(out, v)
		}
	}
	sort.Strings(out)
	return out
}

// Hooks returns the repository's webhooks, secrets included, by id.
func (s *Server) Hooks(repoName string) []Hook {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.mustRepo(repoName)
	out := make([]Hook, 0, len(r.hooks))
	for _, h := range r.hooks {
		out = append(out, exportHook(h))
	}
	return out
}

func exportHook(h *hook) Hook {
	return Hook{
		ID: h.id, URL: h.url, Events: slices.Clone(h.events), Active: h.active, ContentType: h.contentType,
		InsecureSSL: h.insecureSSL, Secret: h.secret, LastResponse: h.last,
	}
}

// AddHook creates a webhook directly (as someone did by hand on the host) and returns its id.
func (s *Server) AddHook(repoName string, h Hook) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.mustRepo(repoName)
	nh := &hook{
		id: s.nextID(), url: h.URL, events: slices.Clone(h.Events), active: h.Active,
		contentType: h.ContentType, insecureSSL: h.InsecureSSL, secret: h.Secret, last: h.LastResponse,
		createdAt: s.now(), updatedAt: s.now(),
	}
	if nh.contentType == "" {
		nh.contentType = "form"
	}
	if nh.insecureSSL == "" {
		nh.insecureSSL = "0"
	}
	if nh.last.Status == "" {
		nh.last.Status = "unused"
	}
	r.hooks = append(r.hooks, nh)
	return nh.id
}

// UpdateHook changes a webhook in place (disable it, record a failed delivery, …).
func (s *Server) UpdateHook(repoName string, id int64, fn func(*Hook)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.mustRepo(repoName)
	for _, h := range r.hooks {
		if h.id == id {
			e := exportHook(h)
			fn(&e)
			h.url, h.events, h.active, h.contentType = e.URL, e.Events, e.Active, e.ContentType
			h.insecureSSL, h.secret, h.last = e.InsecureSSL, e.Secret, e.LastResponse
			h.updatedAt = s.now()
			return
		}
	}
	s.t.Fatalf("githubfake: no hook %d on %s", id, repoName)
}

// PullRequests returns the repository's pull requests in creation order.
func (s *Server) PullRequests(repoName string) []PullRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.mustRepo(repoName)
	out := make([]PullRequest, 0, len(r.pulls))
	for _, p := range r.pulls {
		out = append(out, PullRequest{
			Number: p.number, Title: p.title, Body: p.body, Head: p.head, Base: p.base,
			HeadSHA: p.headSHA, Draft: p.draft, Author: p.author.login,
		})
	}
	return out
}

// DeleteHooks deletes every webhook of the repository, as a person would on GitHub.
func (s *Server) DeleteHooks(repoName string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mustRepo(repoName).hooks = nil
}
