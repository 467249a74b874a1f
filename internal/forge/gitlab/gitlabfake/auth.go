package gitlabfake

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// invalidToken is GitLab's answer to an expired or revoked token (Rack::OAuth2's bearer
// error, raised by its API guard).
func invalidToken(desc string) reply {
	return reply{
		status: http.StatusUnauthorized,
		body:   map[string]any{"error": "invalid_token", "error_description": desc},
		header: http.Header{"Www-Authenticate": {`Bearer realm="Protected by OAuth 2.0", error="invalid_token", error_description="` + desc + `"`}},
	}
}

// expired reports whether a token is past its expiry: an access token from the start of its
// expiry date (UTC), an OAuth token from its expiry instant.
func (s *Server) expired(t *token) bool {
	if t.expires.IsZero() {
		return false
	}
	end := t.expires
	if t.kind == kindAccess {
		end = time.Date(end.Year(), end.Month(), end.Day(), 0, 0, 0, 0, time.UTC)
	}
	return !s.now().Before(end)
}

// authenticate reads "Authorization: Bearer <token>" (access or OAuth token) or
// "PRIVATE-TOKEN: <token>" (access token). No credential is anonymous (nil, nil).
func (s *Server) authenticate(r *http.Request) (*token, *reply) {
	value, accessOnly := "", false
	if v := r.Header.Get("Authorization"); v != "" {
		scheme, rest, _ := strings.Cut(v, " ")
		if !strings.EqualFold(scheme, "Bearer") {
			rep := unauthorized()
			return nil, &rep
		}
		value = strings.TrimSpace(rest)
	} else if v := r.Header.Get("Private-Token"); v != "" {
		value, accessOnly = v, true
	} else {
		return nil, nil
	}
	t, ok := s.tokens[value]
	if !ok || (accessOnly && t.kind != kindAccess) {
		rep := unauthorized()
		return nil, &rep
	}
	if t.revoked {
		rep := invalidToken("Token was revoked. You have to re-authorize from the user.")
		return nil, &rep
	}
	if s.expired(t) {
		rep := invalidToken("Token has expired.")
		return nil, &rep
	}
	return t, nil
}

// levelLocked is a user's role on a project: their own membership or a parent group's,
// whichever is higher; administrators are owners of everything.
func (s *Server) levelLocked(u *user, p *project) int {
	if u == nil {
		return 0
	}
	if u.admin {
		return Owner
	}
	level := p.members[u.id]
	for ns := p.ns; ns != nil; ns = ns.parent {
		level = max(level, ns.members[u.id])
	}
	return level
}

// visibleLocked: public projects to everyone, internal ones to every signed-in user, private
// ones to members.
func (s *Server) visibleLocked(u *user, p *project) bool {
	switch {
	case p.visibility == "public":
		return true
	case u == nil:
		return false
	case p.visibility == "internal":
		return true
	}
	return s.levelLocked(u, p) >= Guest
}

// canReadCodeLocked: the repository of a private project is for Reporters and up.
func (s *Server) canReadCodeLocked(u *user, p *project) bool {
	return p.visibility != "private" && s.visibleLocked(u, p) || s.levelLocked(u, p) >= Reporter
}

// findProject resolves the :id of a path: a numeric id or a URL-encoded full path.
func (s *Server) findProject(c *call) (*project, *reply) {
	id := c.r.PathValue("id")
	var p *project
	if n, err := strconv.ParseInt(id, 10, 64); err == nil {
		p = s.projects[n]
	} else {
		p = s.byPath[strings.ToLower(id)]
	}
	if p == nil || !s.visibleLocked(c.user(), p) {
		rep := notFound("Project")
		return nil, &rep
	}
	return p, nil
}

// requireLevel answers 403 unless the caller has level on p (401 when anonymous).
func (s *Server) requireLevel(c *call, p *project, level int) *reply {
	if c.tok == nil {
		rep := unauthorized()
		return &rep
	}
	if s.levelLocked(c.user(), p) < level {
		rep := forbidden()
		return &rep
	}
	return nil
}

// oauthError writes an OAuth 2.0 error, as GitLab's Doorkeeper does.
func oauthError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}

// oauthAuthorize authorizes the application as the browser user and redirects back with a
// code, as GitLab does once the person clicks "Authorize".
func (s *Server) oauthAuthorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	s.mu.Lock()
	defer s.mu.Unlock()
	app, ok := s.apps[q.Get("client_id")]
	if !ok || q.Get("redirect_uri") != app.redirect {
		http.Error(w, "The redirect URI included is not valid.", http.StatusBadRequest)
		return
	}
	if s.browserUser == nil {
		http.Error(w, "You need to sign in or sign up before continuing.", http.StatusUnauthorized)
		return
	}
	redirect, _ := url.Parse(app.redirect)
	back := redirect.Query()
	if q.Get("response_type") != "code" {
		back.Set("error", "unsupported_response_type")
		redirect.RawQuery = back.Encode()
		http.Redirect(w, r, redirect.String(), http.StatusFound)
		return
	}
	scopes := strings.Fields(q.Get("scope"))
	if len(scopes) == 0 {
		scopes = app.scopes
	}
	for _, sc := range scopes {
		if !slices.Contains(app.scopes, sc) {
			back.Set("error", "invalid_scope")
			redirect.RawQuery = back.Encode()
			http.Redirect(w, r, redirect.String(), http.StatusFound)
			return
		}
	}
	code := randomHex(64)
	s.codes[code] = &oauthCode{app: app, user: s.browserUser, redirect: app.redirect, scopes: scopes, expires: s.now().Add(10 * time.Minute)}
	back.Set("code", code)
	if st := q.Get("state"); st != "" {
		back.Set("state", st)
	}
	redirect.RawQuery = back.Encode()
	http.Redirect(w, r, redirect.String(), http.StatusFound)
}

// oauthToken is GitLab's token endpoint: authorization_code and refresh_token grants. A
// refresh revokes the refresh token it used.
func (s *Server) oauthToken(w http.ResponseWriter, r *http.Request) {
	params, err := readParams(r)
	if err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "The request is missing a required parameter, includes an unsupported parameter value, or is otherwise malformed.")
		return
	}
	get := func(k string) string { v, _ := params[k].(string); return v }
	clientID, secret := get("client_id"), get("client_secret")
	if u, p, ok := r.BasicAuth(); ok {
		clientID, secret = u, p
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	app, ok := s.apps[clientID]
	if !ok || app.secret != secret {
		oauthError(w, http.StatusUnauthorized, "invalid_client", "Client authentication failed due to unknown client, no client authentication included, or unsupported authentication method.")
		return
	}
	const badGrant = "The provided authorization grant is invalid, expired, revoked, does not match the redirection URI used in the authorization request, or was issued to another client."
	var u *user
	var scopes []string
	switch get("grant_type") {
	case "authorization_code":
		code, ok := s.codes[get("code")]
		if !ok || code.app != app || code.redirect != get("redirect_uri") || !s.now().Before(code.expires) {
			oauthError(w, http.StatusBadRequest, "invalid_grant", badGrant)
			return
		}
		delete(s.codes, get("code"))
		u, scopes = code.user, code.scopes
	case "refresh_token":
		rt, ok := s.refresh[get("refresh_token")]
		if !ok || rt.revoked || rt.app != app {
			oauthError(w, http.StatusBadRequest, "invalid_grant", badGrant)
			return
		}
		rt.revoked = true
		u, scopes = rt.user, rt.scopes
	default:
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "The authorization grant type is not supported by the authorization server.")
		return
	}
	t, rt := s.issueOAuthLocked(app, u, scopes)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"access_token": t.value, "token_type": "Bearer", "expires_in": int(oauthTokenLife.Seconds()),
		"refresh_token": rt.value, "scope": strings.Join(scopes, " "), "created_at": t.created.Unix(),
	})
}

// oauthTokenInfo describes the OAuth token the request carries.
func (s *Server) oauthTokenInfo(w http.ResponseWriter, r *http.Request) {
	value := strings.TrimSpace(strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tokens[value]
	if !ok || t.kind != kindOAuth || t.revoked {
		oauthError(w, http.StatusUnauthorized, "invalid_token", "The access token is invalid")
		return
	}
	if s.expired(t) {
		oauthError(w, http.StatusUnauthorized, "invalid_token", "The access token expired")
		return
	}
	left := int64(t.expires.Sub(s.now()).Seconds())
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"resource_owner_id": t.user.id, "scope": t.scopes, "scopes": t.scopes, "expires_in": left,
		"expires_in_seconds": left, "application": map[string]string{"uid": t.app.clientID}, "created_at": t.created.Unix(),
	})
}

// gitCredential checks the Basic credentials of a git request: an access token with any
// user name, or an OAuth token with the user name "oauth2", carrying a scope that allows the
// operation. No credentials is anonymous (nil, true).
func (s *Server) gitCredential(r *http.Request, write bool) (*user, bool) {
	name, pw, ok := r.BasicAuth()
	if !ok {
		return nil, true
	}
	t, found := s.tokens[pw]
	if !found || t.revoked || s.expired(t) || (t.kind == kindOAuth && name != "oauth2") {
		return nil, false
	}
	scopes := []string{"api", "read_repository", "write_repository"}
	if write {
		scopes = []string{"api", "write_repository"}
	}
	if !t.hasScope(scopes...) {
		return nil, false
	}
	return t.user, true
}

// serveGit guards git smart HTTP (/{namespace…}/{project}.git/…): reading needs the
// repository to be readable by the credential's user (or public), pushing the Developer role.
// A push's user is kept for the push event it sends.
func (s *Server) serveGit(w http.ResponseWriter, r *http.Request) {
	i := strings.Index(r.URL.Path, ".git/")
	if i <= 1 {
		http.NotFound(w, r)
		return
	}
	full := r.URL.Path[1:i]
	write := r.URL.Query().Get("service") == "git-receive-pack" || strings.HasSuffix(r.URL.Path, "/git-receive-pack")
	s.mu.Lock()
	p, found := s.byPath[strings.ToLower(full)]
	u, credOK := s.gitCredential(r, write)
	allowed := found && p.gitDir != "" && credOK && s.canReadCodeLocked(u, p)
	canPush := allowed && u != nil && s.levelLocked(u, p) >= Developer
	s.mu.Unlock()
	switch {
	case !found || p.gitDir == "":
		http.NotFound(w, r)
		return
	case !credOK || (!allowed && u == nil) || (write && u == nil):
		w.Header().Set("WWW-Authenticate", `Basic realm="GitLab"`)
		http.Error(w, "HTTP Basic: Access denied. If a password was provided for Git authentication, the password was incorrect or you're required to use a token instead of a password.", http.StatusUnauthorized)
		return
	case !allowed:
		http.NotFound(w, r)
		return
	case write && !canPush:
		http.Error(w, "You are not allowed to push code to this project.", http.StatusForbidden)
		return
	}
	if strings.HasSuffix(r.URL.Path, "/git-receive-pack") {
		mu, _ := s.pushMu.LoadOrStore(p.id, &sync.Mutex{})
		lock := mu.(*sync.Mutex)
		lock.Lock()
		defer lock.Unlock()
		s.mu.Lock()
		s.pusher[p.id] = u
		s.mu.Unlock()
		defer func() {
			s.mu.Lock()
			delete(s.pusher, p.id)
			s.mu.Unlock()
		}()
	}
	s.gitHandler().ServeHTTP(w, r)
}
