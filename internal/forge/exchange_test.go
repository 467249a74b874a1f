package forge_test

import (
	"context"
	"encoding/base64"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/forgeway/forgeway/internal/forge"
)

func TestExchange(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			w.Header().Set("X-Seen", r.Header.Get("Authorization"))
			w.WriteHeader(http.StatusTeapot)
			_, _ = w.Write([]byte("0123456789"))
		case "/cut":
			// Announce more than is sent, then hang up: the read of the body fails.
			w.Header().Set("Content-Length", "100")
			_, _ = w.Write([]byte("short"))
			hj, _ := w.(http.Hijacker)
			c, _, _ := hj.Hijack()
			_ = c.Close()
		}
	}))
	defer srv.Close()
	ctx := context.Background()
	get := func(ctx context.Context, url, auth string) *http.Request {
		hr, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		if auth != "" {
			hr.Header.Set("Authorization", auth)
		}
		return hr
	}

	t.Run("answer", func(t *testing.T) {
		resp, body, err := forge.Exchange(ctx, srv.Client(), get(ctx, srv.URL+"/ok", "token s3cr3t"), "list things", "Gitea", 4)
		if err != nil {
			t.Fatal(err)
		}
		// Any status is the caller's to judge; the body is cut at the limit.
		if resp.StatusCode != http.StatusTeapot || string(body) != "0123" || resp.Header.Get("X-Seen") != "token s3cr3t" {
			t.Fatalf("status %d, body %q, header %q", resp.StatusCode, body, resp.Header.Get("X-Seen"))
		}
	})

	t.Run("unreachable", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		_ = ln.Close()
		// The credential also stands in the URL: neither the URL nor the credential may reach
		// the message.
		_, _, err = forge.Exchange(ctx, http.DefaultClient, get(ctx, "http://"+addr+"/api/v1/repos?code=s3cr3t", "Bearer s3cr3t"), "list repositories", "Azure DevOps", 1<<20)
		var he *forge.HostError
		if !errors.As(err, &he) || he.Op != "list repositories" || he.Status != 0 {
			t.Fatalf("err = %#v", err)
		}
		msg := err.Error()
		if !strings.Contains(he.Message, "cannot reach Azure DevOps: ") || strings.Contains(msg, "s3cr3t") || strings.Contains(msg, "/api/v1") {
			t.Fatalf("message %q", msg)
		}
	})

	t.Run("credential in a transport error", func(t *testing.T) {
		// A proxy that quotes the header, or the credential inside it: for Basic (Azure
		// DevOps' PATs, Bitbucket's passwords) the decoded password too.
		for _, c := range []struct{ auth, quote string }{
			{"token s3cr3t", "token s3cr3t"},
			{"token s3cr3t", "s3cr3t"},
			{"Basic " + base64.StdEncoding.EncodeToString([]byte(":s3cr3t")), "s3cr3t"},
		} {
			leaky := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
				return nil, errors.New("proxy refused " + c.quote)
			})}
			_, _, err := forge.Exchange(ctx, leaky, get(ctx, srv.URL+"/ok", c.auth), "list things", "Gitea", 1<<20)
			if err == nil || strings.Contains(err.Error(), "s3cr3t") || !strings.Contains(err.Error(), "proxy refused [redacted]") {
				t.Fatalf("%s quoting %q: err = %v", c.auth, c.quote, err)
			}
		}
	})

	t.Run("body cut off", func(t *testing.T) {
		_, _, err := forge.Exchange(ctx, srv.Client(), get(ctx, srv.URL+"/cut", ""), "read a page", "Azure DevOps", 1<<20)
		var he *forge.HostError
		if !errors.As(err, &he) || he.Status != http.StatusOK || !strings.HasPrefix(he.Message, "reading Azure DevOps' answer failed: ") {
			t.Fatalf("err = %#v", err)
		}
	})

	t.Run("cancelled", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		_, _, err := forge.Exchange(cctx, srv.Client(), get(cctx, srv.URL+"/ok", ""), "list things", "GitHub", 1<<20)
		var he *forge.HostError
		if !errors.Is(err, context.Canceled) || errors.As(err, &he) || !strings.HasPrefix(err.Error(), "list things: ") {
			t.Fatalf("err = %#v", err)
		}
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
