package githubfake

import (
	"crypto/subtle"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const kindApp tokenKind = 100 // an App authenticating with its JWT

// principal is who an API request authenticated as.
type principal struct {
	kind  tokenKind // 0: anonymous
	app   *app      // kindApp; kindUser: the App the token acts through
	token *token
}

func (p principal) subject() string {
	switch p.kind {
	case kindApp:
		return fmt.Sprintf("app:%d", p.app.id)
	case kindInstallation:
		return fmt.Sprintf("installation:%d", p.token.install.id)
	case kindPAT, kindUser:
		return "user:" + p.token.user.login
	}
	return "anonymous"
}

func (p principal) describe() string {
	switch p.kind {
	case kindApp:
		return fmt.Sprintf("app ID %d", p.app.id)
	case kindInstallation:
		return fmt.Sprintf("installation ID %d", p.token.install.id)
	case kindPAT, kindUser:
		return fmt.Sprintf("user ID %d", p.token.user.id)
	}
	return "this IP address"
}

// authenticate reads the Authorization header ("Bearer", "token", or Basic with the token as
// password). It returns the reply to send instead when the credential is refused.
func (s *Server) authenticate(r *http.Request) (principal, *reply) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return principal{}, nil
	}
	scheme, cred, _ := strings.Cut(h, " ")
	switch strings.ToLower(scheme) {
	case "bearer", "token":
	case "basic":
		_, pw, ok := r.BasicAuth()
		if !ok {
			rep := badCredentials()
			return principal{}, &rep
		}
		cred = pw
	default:
		rep := badCredentials()
		return principal{}, &rep
	}
	cred = strings.TrimSpace(cred)
	if strings.Count(cred, ".") == 2 {
		a, msg := s.verifyJWT(cred)
		if a == nil {
			rep := errReply(http.StatusUnauthorized, msg)
			return principal{}, &rep
		}
		return principal{kind: kindApp, app: a}, nil
	}
	t, ok := s.tokens[cred]
	if !ok || t.revoked || (!t.expires.IsZero() && !s.now().Before(t.expires)) {
		rep := badCredentials()
		return principal{}, &rep
	}
	if t.kind == kindInstallation && t.install.suspended {
		rep := errReply(http.StatusForbidden, "This installation has been suspended")
		return principal{}, &rep
	}
	return principal{kind: t.kind, app: t.app, token: t}, nil
}

// verifyJWT checks an App JWT as GitHub documents it and returns the App, or GitHub's
// message for why it refused the token.
func (s *Server) verifyJWT(raw string) (*app, string) {
	const undecodable = "A JSON web token could not be decoded"
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(raw, claims); err != nil {
		return nil, undecodable
	}
	var a *app
	switch iss := claims["iss"].(type) {
	case float64:
		a = s.apps[int64(iss)]
	case string:
		if id, err := strconv.ParseInt(iss, 10, 64); err == nil {
			a = s.apps[id]
		} else {
			for _, x := range s.apps {
				if x.clientID == iss {
					a = x
				}
			}
		}
	default:
		return nil, "'Issuer' claim ('iss') must be an Integer"
	}
	if a == nil {
		return nil, undecodable
	}
	_, err := jwt.Parse(raw, func(*jwt.Token) (any, error) { return &a.key.PublicKey, nil },
		jwt.WithValidMethods([]string{"RS256"}), jwt.WithoutClaimsValidation())
	if err != nil {
		return nil, undecodable
	}
	iat, okIat := claims["iat"].(float64)
	exp, okExp := claims["exp"].(float64)
	now := float64(s.now().Unix())
	switch {
	case !okIat || iat > now+60:
		return nil, "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued"
	case !okExp || exp <= now:
		return nil, "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires"
	case exp-iat > 600:
		return nil, "'Expiration time' claim ('exp') is too far in the future"
	}
	return a, ""
}

var levels = map[string]int{"": 0, "read": 1, "write": 2, "admin": 3}

var roles = map[string]int{"": 0, "pull": 1, "push": 2, "admin": 3}

// userRole is what a user may do on a repository by ownership, membership or collaboration.
func (s *Server) userRole(u *account, r *repo) string {
	best := ""
	raise := func(role string) {
		if roles[role] > roles[best] {
			best = role
		}
	}
	if r.owner == u {
		raise("admin")
	}
	if r.owner.members != nil {
		raise(r.owner.members[strings.ToLower(u.login)])
	}
	raise(r.collaborators[strings.ToLower(u.login)])
	if r.visibility == "public" {
		raise("pull")
	}
	return best
}

func hasScope(scopes []string, want string) bool {
	implied := map[string][]string{
		"public_repo":     {"repo"},
		"read:repo_hook":  {"write:repo_hook", "admin:repo_hook"},
		"write:repo_hook": {"admin:repo_hook"},
	}
	for _, s := range scopes {
		if s == want || slices.Contains(implied[want], s) {
			return true
		}
	}
	return false
}

// role is what the principal may do on r: "", pull, push or admin. "" means the repository
// is invisible to it.
func (s *Server) role(p principal, r *repo) string {
	switch p.kind {
	case kindInstallation:
		t := p.token
		if !t.install.covers(r) || (t.repos != nil && !t.repos[r.id]) {
			if r.visibility == "public" {
				return "pull"
			}
			return ""
		}
		switch {
		case levels[t.permissions["administration"]] >= levels["write"]:
			return "admin"
		case levels[t.permissions["contents"]] >= levels["write"]:
			return "push"
		}
		return "pull"
	case kindPAT:
		role := s.userRole(p.token.user, r)
		if !p.token.fine && r.visibility != "public" && !hasScope(p.token.scopes, "repo") {
			return ""
		}
		return role
	case kindUser:
		covered := false
		for _, in := range s.installs {
			if in.appID == p.app.id && in.covers(r) {
				covered = true
			}
		}
		if !covered {
			return ""
		}
		return s.userRole(p.token.user, r)
	}
	if r.visibility == "public" {
		return "pull"
	}
	return ""
}

// need is what an endpoint requires on a repository.
type need struct {
	role       string   // pull, push, admin
	permission string   // App / fine-grained permission name
	level      string   // read, write
	scopes     []string // classic PAT: one of these
}

// allow checks the principal against what the endpoint needs and returns the refusal GitHub
// would send, or nil.
func (s *Server) allow(p principal, r *repo, n need) *reply {
	role := s.role(p, r)
	if role == "" {
		rep := notFound()
		return &rep
	}
	refuse := func(status int, msg string) *reply {
		rep := errReply(status, msg)
		return &rep
	}
	switch p.kind {
	case kindInstallation:
		if levels[p.token.permissions[n.permission]] < levels[n.level] {
			return refuse(http.StatusForbidden, "Resource not accessible by integration")
		}
	case kindUser:
		if levels[p.app.permissions[n.permission]] < levels[n.level] {
			return refuse(http.StatusForbidden, "Resource not accessible by integration")
		}
	case kindPAT:
		if p.token.fine {
			if levels[p.token.permissions[n.permission]] < levels[n.level] {
				return refuse(http.StatusForbidden, "Resource not accessible by personal access token")
			}
		} else if len(n.scopes) > 0 {
			ok := false
			for _, sc := range n.scopes {
				ok = ok || hasScope(p.token.scopes, sc)
			}
			if !ok {
				// GitHub hides what a token may not reach behind a 404, and says which
				// scopes would have done.
				rep := notFound()
				rep.header = http.Header{"X-Accepted-Oauth-Scopes": {strings.Join(n.scopes, ", ")}}
				return &rep
			}
		}
	case kindApp:
		return refuse(http.StatusForbidden, "Resource not accessible by integration")
	case 0:
		if n.role != "pull" {
			return refuse(http.StatusUnauthorized, "Requires authentication")
		}
	}
	if roles[role] < roles[n.role] {
		if n.role == "admin" {
			return refuse(http.StatusNotFound, "Not Found")
		}
		return refuse(http.StatusForbidden, "Resource not accessible by integration")
	}
	return nil
}

func (s *Server) requireJWT(c *call) (*app, *reply) {
	if c.who.kind != kindApp {
		rep := errReply(http.StatusUnauthorized, "A JSON web token could not be decoded")
		return nil, &rep
	}
	return c.who.app, nil
}

func (s *Server) getApp(c *call) reply {
	a, fail := s.requireJWT(c)
	if fail != nil {
		return *fail
	}
	return jsonReply(http.StatusOK, s.integrationJSON(a))
}

func (s *Server) appInstallations(a *app) []*installation {
	var out []*installation
	for _, in := range s.installs {
		if in.appID == a.id {
			out = append(out, in)
		}
	}
	slices.SortFunc(out, func(x, y *installation) int { return int(x.id - y.id) })
	return out
}

func (s *Server) listInstallations(c *call) reply {
	a, fail := s.requireJWT(c)
	if fail != nil {
		return *fail
	}
	items, links, bad := paginate(c.r, s.appInstallations(a))
	if bad != nil {
		return *bad
	}
	out := make([]installationJSON, 0, len(items))
	for _, in := range items {
		out = append(out, s.installationJSON(in))
	}
	rep := jsonReply(http.StatusOK, out)
	rep.link = links
	return rep
}

func (s *Server) installationOf(c *call, a *app) (*installation, *reply) {
	id, err := strconv.ParseInt(c.r.PathValue("id"), 10, 64)
	in := s.installs[id]
	if err != nil || in == nil || in.appID != a.id {
		rep := notFound()
		return nil, &rep
	}
	return in, nil
}

func (s *Server) getInstallation(c *call) reply {
	a, fail := s.requireJWT(c)
	if fail != nil {
		return *fail
	}
	in, fail := s.installationOf(c, a)
	if fail != nil {
		return *fail
	}
	return jsonReply(http.StatusOK, s.installationJSON(in))
}

func (s *Server) repoInstallation(c *call) reply {
	a, fail := s.requireJWT(c)
	if fail != nil {
		return *fail
	}
	id, ok := s.names[strings.ToLower(c.r.PathValue("owner")+"/"+c.r.PathValue("repo"))]
	if !ok {
		return notFound()
	}
	for _, in := range s.appInstallations(a) {
		if in.covers(s.repos[id]) {
			return jsonReply(http.StatusOK, s.installationJSON(in))
		}
	}
	return notFound()
}

func (s *Server) createInstallationToken(c *call) reply {
	a, fail := s.requireJWT(c)
	if fail != nil {
		return *fail
	}
	in, fail := s.installationOf(c, a)
	if fail != nil {
		return *fail
	}
	if in.suspended {
		return errReply(http.StatusForbidden, "This installation has been suspended")
	}
	var req struct {
		Repositories  []string          `json:"repositories"`
		RepositoryIDs []int64           `json:"repository_ids"`
		Permissions   map[string]string `json:"permissions"`
	}
	if bad := c.decode(&req); bad != nil {
		return *bad
	}
	t := &token{kind: kindInstallation, install: in, permissions: maps.Clone(a.permissions), expires: s.now().Add(time.Hour)}
	if req.Permissions != nil {
		for k, v := range req.Permissions {
			if levels[a.permissions[k]] < levels[v] {
				return validationFailed("The permissions requested are not granted to this installation.")
			}
		}
		t.permissions = maps.Clone(req.Permissions)
		t.permissions["metadata"] = "read"
	}
	var granted []repoJSON
	if len(req.Repositories) > 0 || len(req.RepositoryIDs) > 0 {
		t.repos = map[int64]bool{}
		for _, n := range req.Repositories {
			id, ok := s.names[strings.ToLower(in.account.login+"/"+n)]
			if !ok || !in.covers(s.repos[id]) {
				return validationFailed("There is at least one repository that does not exist or is not accessible to the parent installation.")
			}
			t.repos[id] = true
		}
		for _, id := range req.RepositoryIDs {
			r := s.repos[id]
			if r == nil || !in.covers(r) {
				return validationFailed("There is at least one repository that does not exist or is not accessible to the parent installation.")
			}
			t.repos[id] = true
		}
		for id := range t.repos {
			granted = append(granted, s.repoJSON(s.repos[id], nil, false))
		}
	}
	v := randomToken("ghs_")
	s.tokens[v] = t
	sel := in.selection()
	if t.repos != nil {
		sel = "selected"
	}
	return jsonReply(http.StatusCreated, installationTokenJSON{
		Token: v, ExpiresAt: ts(t.expires), Permissions: t.permissions, RepositorySelection: sel, Repositories: granted,
	})
}

// convertManifest is POST /app-manifests/{code}/conversions: the code from the manifest
// flow's redirect becomes an App; it works once, within an hour.
func (s *Server) convertManifest(c *call) reply {
	code := c.r.PathValue("code")
	mc, ok := s.manifestCodes[code]
	if !ok || !s.now().Before(mc.expires) {
		return notFound()
	}
	delete(s.manifestCodes, code)
	m := mc.manifest
	key, err := s.newKey()
	if err != nil {
		return errReply(http.StatusInternalServerError, "generate key")
	}
	id := s.nextID()
	slug := strings.ToLower(strings.Join(strings.Fields(m.Name), "-"))
	if slug == "" {
		slug = fmt.Sprintf("app-%d", id)
	}
	for _, x := range s.apps {
		if x.slug == slug {
			return validationFailed("Validation Failed", validationEntry{Resource: "Integration", Field: "name", Code: "already_exists", Message: "Name is already in use"})
		}
	}
	webhookSecret := randomHex(20)
	perms := maps.Clone(m.DefaultPermissions)
	if perms == nil {
		perms = map[string]string{}
	}
	perms["metadata"] = "read"
	a := &app{
		id: id, slug: slug, name: m.Name, description: m.Description, homepage: m.URL, owner: mc.owner,
		clientID: "Iv1." + randomHex(8), clientSecret: randomHex(20),
		webhookURL: m.HookAttributes.URL, webhookSecret: webhookSecret, hookID: s.nextID(),
		key: key, permissions: perms, events: slices.Clone(m.DefaultEvents), createdAt: s.now(),
	}
	if a.events == nil {
		a.events = []string{}
	}
	s.apps[id] = a
	pemText := string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))
	return jsonReply(http.StatusCreated, manifestAppJSON{
		integrationJSON: s.integrationJSON(a),
		ClientID:        a.clientID,
		ClientSecret:    a.clientSecret,
		WebhookSecret:   &webhookSecret,
		PEM:             pemText,
	})
}

// ManifestApp returns the App a manifest conversion created, by slug, with its key.
func (s *Server) ManifestApp(slug string) (App, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range s.apps {
		if a.slug == slug {
			return App{
				ID: a.id, Slug: a.slug, Name: a.name, Owner: a.owner.login, ClientID: a.clientID,
				ClientSecret: a.clientSecret, WebhookURL: a.webhookURL, WebhookSecret: a.webhookSecret,
				Key: a.key, Permissions: maps.Clone(a.permissions), Events: slices.Clone(a.events),
			}, true
		}
	}
	return App{}, false
}

// ManifestCode registers an App manifest as if a user had submitted it on GitHub and
// confirmed, and returns the code GitHub appends to the manifest's redirect_url. owner is
// the organization creating it ("" for the user "octocat").
func (s *Server) ManifestCode(manifest []byte, owner string) (string, error) {
	var m appManifest
	if err := json.Unmarshal(manifest, &m); err != nil {
		return "", fmt.Errorf("parse manifest: %w", err)
	}
	if m.URL == "" {
		return "", fmt.Errorf("manifest has no url")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	typ := "Organization"
	if owner == "" {
		owner, typ = "octocat", "User"
	}
	code := randomHex(10)
	s.manifestCodes[code] = &manifestCode{manifest: m, owner: s.accountLocked(owner, typ), expires: s.now().Add(time.Hour)}
	return code, nil
}

// manifestForm is POST /settings/apps/new (and the organization's): where the browser posts
// the manifest. GitHub shows a confirmation page; the fake confirms at once and redirects to
// the manifest's redirect_url with the code and the state.
func (s *Server) manifestForm(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	raw := r.PostForm.Get("manifest")
	code, err := s.ManifestCode([]byte(raw), r.PathValue("org"))
	if err != nil {
		http.Error(w, "Invalid GitHub App configuration: "+err.Error(), http.StatusUnprocessableEntity)
		return
	}
	var m appManifest
	_ = json.Unmarshal([]byte(raw), &m)
	target := m.RedirectURL
	if target == "" {
		target = m.URL
	}
	u, err := url.Parse(target)
	if err != nil {
		http.Error(w, "bad redirect_url", http.StatusUnprocessableEntity)
		return
	}
	q := u.Query()
	q.Set("code", code)
	if st := r.URL.Query().Get("state"); st != "" {
		q.Set("state", st)
	}
	u.RawQuery = q.Encode()
	http.Redirect(w, r, u.String(), http.StatusFound)
}

func (s *Server) installPage(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	found := false
	for _, a := range s.apps {
		found = found || a.slug == r.PathValue("slug")
	}
	s.mu.Unlock()
	if !found {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = io.WriteString(w, "<!doctype html><title>Install</title><h1>Install "+r.PathValue("slug")+"</h1>")
}

// oauthAccessToken is POST /login/oauth/access_token: a code or a refresh token becomes a
// user token. Errors come back with status 200 and an "error" field, as on GitHub.
func (s *Server) oauthAccessToken(w http.ResponseWriter, r *http.Request) {
	params := url.Values{}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		var m map[string]any
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&m); err != nil {
			http.Error(w, "Problems parsing JSON", http.StatusBadRequest)
			return
		}
		for k, v := range m {
			params.Set(k, fmt.Sprint(v))
		}
	} else {
		if err := r.ParseForm(); err != nil {
			http.Error(w, "bad form", http.StatusBadRequest)
			return
		}
		params = r.Form
	}
	reply := func(v map[string]any) {
		if strings.Contains(r.Header.Get("Accept"), "application/json") {
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			_ = json.NewEncoder(w).Encode(v)
			return
		}
		f := url.Values{}
		for k, x := range v {
			f.Set(k, fmt.Sprint(x))
		}
		w.Header().Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
		_, _ = io.WriteString(w, f.Encode())
	}
	fail := func(code, desc string) {
		reply(map[string]any{"error": code, "error_description": desc,
			"error_uri": "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/#" + strings.ReplaceAll(code, "_", "-")})
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var a *app
	for _, x := range s.apps {
		if x.clientID == params.Get("client_id") {
			a = x
		}
	}
	if a == nil || subtle.ConstantTimeCompare([]byte(a.clientSecret), []byte(params.Get("client_secret"))) != 1 {
		fail("incorrect_client_credentials", "The client_id and/or client_secret passed are incorrect.")
		return
	}
	var user *account
	if params.Get("grant_type") == "refresh_token" {
		rt, ok := s.refresh[params.Get("refresh_token")]
		if !ok || rt.used || rt.app != a || !s.now().Before(rt.expires) {
			fail("bad_refresh_token", "The refresh token passed is incorrect or expired.")
			return
		}
		rt.used = true
		user = rt.user
	} else {
		code, ok := s.oauthCodes[params.Get("code")]
		if !ok || code.app != a || !s.now().Before(code.expires) {
			fail("bad_verification_code", "The code passed is incorrect or expired.")
			return
		}
		delete(s.oauthCodes, params.Get("code"))
		user = code.user
	}
	access, refresh := randomToken("ghu_"), randomToken("ghr_")+randomToken("")
	s.tokens[access] = &token{kind: kindUser, user: user, app: a, expires: s.now().Add(8 * time.Hour)}
	s.refresh[refresh] = &refreshToken{app: a, user: user, expires: s.now().Add(15811200 * time.Second)}
	reply(map[string]any{
		"access_token": access, "expires_in": 28800, "refresh_token": refresh,
		"refresh_token_expires_in": 15811200, "scope": "", "token_type": "bearer",
	})
}

// serveGit guards git smart HTTP: Basic credentials whose password is a token that may
// read the repository (write, for a push), then Options.Git.
func (s *Server) serveGit(w http.ResponseWriter, r *http.Request) {
	name, ok := strings.CutSuffix(r.PathValue("repo"), ".git")
	if !ok || s.opts.Git == nil {
		http.NotFound(w, r)
		return
	}
	push := r.URL.Query().Get("service") == "git-receive-pack" || strings.HasSuffix(r.URL.Path, "/git-receive-pack")
	s.mu.Lock()
	id, found := s.names[strings.ToLower(r.PathValue("owner")+"/"+name)]
	var who principal
	var authFail *reply
	if _, pw, ok := r.BasicAuth(); ok {
		r2 := r.Clone(r.Context())
		r2.Header.Set("Authorization", "token "+pw)
		who, authFail = s.authenticate(r2)
	}
	role := ""
	if found && authFail == nil {
		role = s.role(who, s.repos[id])
	}
	s.mu.Unlock()
	if !found {
		http.NotFound(w, r)
		return
	}
	if role == "" || (push && roles[role] < roles["push"]) {
		w.Header().Set("WWW-Authenticate", `Basic realm="GitHub"`)
		http.Error(w, "Invalid username or token. Password authentication is not supported for Git operations.", http.StatusUnauthorized)
		return
	}
	s.opts.Git.ServeHTTP(w, r)
}
