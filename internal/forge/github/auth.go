package github

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/forgeway/forgeway/internal/forge"
)

// installationToken is a cached installation access token.
type installationToken struct {
	token       string
	expires     time.Time
	permissions map[string]string
}

// renewBefore is how much validity a cached installation token must have left to be used;
// tokens last an hour, so one is minted at most every 55 minutes per installation.
const renewBefore = 5 * time.Minute

// appJWT signs the App's JSON web token: RS256, issued a minute in the past to allow for
// clock drift, expiring in 9 minutes (GitHub refuses more than 10).
func (c *Client) appJWT() (string, error) {
	now := c.now()
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
		"iat": now.Add(-60 * time.Second).Unix(),
		"exp": now.Add(9 * time.Minute).Unix(),
		"iss": c.cfg.appID,
	})
	s, err := tok.SignedString(c.cfg.key)
	if err != nil {
		return "", fmt.Errorf("sign the App's JWT: %w", err)
	}
	return s, nil
}

// appCredential authenticates as the App itself (its JWT).
func (c *Client) appCredential() credential {
	return credential{header: func(context.Context) (string, error) {
		s, err := c.appJWT()
		if err != nil {
			return "", err
		}
		return "Bearer " + s, nil
	}}
}

// installationTokenFor returns a token for the installation valid for at least
// max(renewBefore, minValidity), minting one when the cached token is missing, too old, or
// the refused one (GitHub turned it down; concurrent callers that saw the same refusal then
// share the one replacement).
func (c *Client) installationTokenFor(ctx context.Context, id int64, minValidity time.Duration, refused string) (installationToken, error) {
	need := max(renewBefore, minValidity)
	if need > 55*time.Minute {
		return installationToken{}, fmt.Errorf("installation tokens last an hour; %s of validity cannot be guaranteed", minValidity)
	}
	c.mintMu.Lock()
	defer c.mintMu.Unlock()
	c.mu.Lock()
	cached, ok := c.tokens[id]
	c.mu.Unlock()
	if ok && cached.token != refused && cached.expires.Sub(c.now()) >= need {
		return cached, nil
	}
	var out struct {
		Token       string            `json:"token"`
		ExpiresAt   time.Time         `json:"expires_at"`
		Permissions map[string]string `json:"permissions"`
	}
	_, err := c.do(ctx, request{
		op:     fmt.Sprintf("mint an installation token for installation %d", id),
		method: http.MethodPost,
		path:   fmt.Sprintf("/app/installations/%d/access_tokens", id),
		cred:   c.appCredential(),
		out:    &out,
	})
	if err != nil {
		return installationToken{}, err
	}
	if out.Token == "" {
		return installationToken{}, &forge.HostError{Op: "mint an installation token", Message: "GitHub answered without a token"}
	}
	t := installationToken{token: out.Token, expires: out.ExpiresAt, permissions: out.Permissions}
	c.mu.Lock()
	c.tokens[id] = t
	c.mu.Unlock()
	return t, nil
}

// installationCredential authenticates as one installation, renewing its token per use.
func (c *Client) installationCredential(id int64) credential {
	get := func(ctx context.Context, refused string) (string, error) {
		t, err := c.installationTokenFor(ctx, id, 0, strings.TrimPrefix(refused, "token "))
		if err != nil {
			return "", err
		}
		return "token " + t.token, nil
	}
	return credential{header: func(ctx context.Context) (string, error) { return get(ctx, "") }, renew: get}
}

func (c *Client) tokenCredential() credential { return staticCredential("token " + c.cfg.token) }

func userCredential(u *forge.UserCredential) credential {
	return staticCredential("token " + u.Token)
}

// installationID reads a repository's installation, asking GitHub when the catalog has none.
func (c *Client) installationID(ctx context.Context, repo forge.Repository) (int64, error) {
	if repo.Installation != "" {
		id, err := strconv.ParseInt(repo.Installation, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("repository %s: installation %q is not a GitHub installation id", repo.FullName, repo.Installation)
		}
		return id, nil
	}
	owner, name, err := splitFullName(repo)
	if err != nil {
		return 0, err
	}
	var out struct {
		ID int64 `json:"id"`
	}
	_, err = c.do(ctx, request{
		op: "find the App installation of " + repo.FullName, method: http.MethodGet,
		path: "/repos/" + owner + "/" + name + "/installation", cred: c.appCredential(), out: &out,
	})
	if err != nil {
		return 0, err
	}
	return out.ID, nil
}

// repoCredential is the integration's own credential for a repository: the installation's
// token for an App, the personal token otherwise.
func (c *Client) repoCredential(ctx context.Context, repo forge.Repository) (credential, error) {
	if c.cfg.auth != AuthApp {
		return c.tokenCredential(), nil
	}
	id, err := c.installationID(ctx, repo)
	if err != nil {
		return credential{}, err
	}
	return c.installationCredential(id), nil
}

// actingCredential is the acting person's token when as is set, else the integration's.
func (c *Client) actingCredential(ctx context.Context, repo forge.Repository, as *forge.UserCredential) (credential, error) {
	if as != nil && as.Token != "" {
		return userCredential(as), nil
	}
	return c.repoCredential(ctx, repo)
}

// GitAuth returns an HTTP Basic header for git with the installation's token (valid for at
// least minValidity), the personal token, or the acting person's token.
func (c *Client) GitAuth(ctx context.Context, repo forge.Repository, as *forge.UserCredential, minValidity time.Duration) (forge.GitAuth, error) {
	basic := func(tok string, exp time.Time) forge.GitAuth {
		return forge.GitAuth{
			Header:  "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte("x-access-token:"+tok)),
			Expires: exp,
		}
	}
	switch {
	case as != nil && as.Token != "":
		if !as.Expires.IsZero() && as.Expires.Sub(c.now()) < minValidity {
			return forge.GitAuth{}, &forge.HostError{
				Op:      "git credentials for " + repo.FullName,
				Message: fmt.Sprintf("%s's GitHub token expires at %s, before the operation would end; refresh it first", as.Login, as.Expires.UTC().Format(time.RFC3339)),
				Err:     forge.ErrUnauthorized,
			}
		}
		return basic(as.Token, as.Expires), nil
	case c.cfg.auth == AuthApp:
		id, err := c.installationID(ctx, repo)
		if err != nil {
			return forge.GitAuth{}, err
		}
		t, err := c.installationTokenFor(ctx, id, minValidity, "")
		if err != nil {
			return forge.GitAuth{}, err
		}
		return basic(t.token, t.expires), nil
	default:
		c.mu.Lock()
		exp := c.patExp
		c.mu.Unlock()
		return basic(c.cfg.token, exp), nil
	}
}

func splitFullName(repo forge.Repository) (string, string, error) {
	owner, name, ok := strings.Cut(repo.FullName, "/")
	if !ok || owner == "" || name == "" || strings.Contains(name, "/") {
		return "", "", fmt.Errorf("repository full name %q is not owner/name", repo.FullName)
	}
	return url.PathEscape(owner), url.PathEscape(name), nil
}
