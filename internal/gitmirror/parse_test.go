package gitmirror

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"

	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/gittest"
)

func TestParseProgress(t *testing.T) {
	tests := []struct {
		line string
		want Progress
		ok   bool
	}{
		{"Receiving objects:  45% (9/20), 1.20 MiB | 1.00 MiB/s", Progress{"Receiving objects", 45, 9, 20}, true},
		{"Receiving objects: 100% (20/20), 2.00 MiB | 1.00 MiB/s, done.", Progress{"Receiving objects", 100, 20, 20}, true},
		{"Resolving deltas:   0% (0/7)", Progress{"Resolving deltas", 0, 0, 7}, true},
		{"remote: Counting objects: 100% (3/3), done.", Progress{"Counting objects", 100, 3, 3}, true},
		{"remote: Enumerating objects: 5, done.", Progress{"Enumerating objects", 100, 5, 5}, true},
		{"Writing objects: 100% (3/3), 250 bytes | 250.00 KiB/s, done.", Progress{"Writing objects", 100, 3, 3}, true},
		{"remote: Total 3 (delta 0), reused 0 (delta 0), pack-reused 0", Progress{}, false},
		{"fatal: repository 'https://example.com/a.git/' not found", Progress{}, false},
		{"error: RPC failed; HTTP 500 curl 22 The requested URL returned error: 500", Progress{}, false},
		{"Cloning into bare repository '/tmp/x'...", Progress{}, false},
		{"remote: Counting objects: 12", Progress{"Counting objects", 0, 12, 0}, true},
		{"Receiving objects: xx% (1/2)", Progress{}, false},
	}
	for _, tt := range tests {
		got, ok := parseProgress(tt.line)
		if ok != tt.ok || got != tt.want {
			t.Errorf("parseProgress(%q) = %+v, %v; want %+v, %v", tt.line, got, ok, tt.want, tt.ok)
		}
	}
}

func TestStderrLogSplitsProgressFromMessages(t *testing.T) {
	var got []Progress
	s := &stderrLog{scrub: forge.Scrubber(header(goodToken)), progress: func(p Progress) { got = append(got, p) }}
	// Progress redraws with \r; writes split lines anywhere.
	chunks := []string{
		"Receiving objects:  10% (1/10)\rReceiving obj", "ects:  50% (5/10)\rReceiving objects: 100% (10/10), done.\n",
		"remote: token was " + goodToken + "\n",
		"fatal: unable to access 'https://h/a.git/': The requested URL returned error: 403\n",
	}
	for _, c := range chunks {
		if _, err := s.Write([]byte(c)); err != nil {
			t.Fatal(err)
		}
	}
	s.flush()
	if len(got) != 3 || got[1].Percent != 50 || got[2].Done != 10 {
		t.Fatalf("progress = %+v", got)
	}
	if len(s.tail) != 2 || strings.Contains(s.tail[0], goodToken) || !strings.Contains(s.tail[0], "[redacted]") {
		t.Fatalf("tail = %q", s.tail)
	}
	for range 50 {
		s.Write([]byte("noise\n"))
	}
	if len(s.tail) != maxTailLines {
		t.Fatalf("tail keeps %d lines, want %d", len(s.tail), maxTailLines)
	}
}

func TestClassify(t *testing.T) {
	m := New(t.TempDir(), Options{})
	exitErr := func() error {
		err := exec.Command("false").Run()
		if err == nil {
			t.Fatal("false succeeded")
		}
		return err
	}()
	tests := []struct {
		stderr string
		want   error
	}{
		{"fatal: Authentication failed for 'https://github.com/a/b.git/'", forge.ErrUnauthorized},
		{"fatal: could not read Username for 'https://h': terminal prompts disabled", forge.ErrUnauthorized},
		{"fatal: unable to access 'https://h/a.git/': The requested URL returned error: 403", forge.ErrUnauthorized},
		{"remote: HTTP Basic: Access denied\nfatal: Authentication failed for 'https://gitlab.com/a/b.git/'", forge.ErrUnauthorized},
		{"remote: Permission to a/b.git denied to bot.\nfatal: unable to access 'https://github.com/a/b.git/': The requested URL returned error: 403", forge.ErrForbidden},
		{"remote: You are not allowed to push code to this project.\nfatal: unable to access 'x': The requested URL returned error: 403", forge.ErrForbidden},
		{"remote: Repository not found.\nfatal: repository 'https://github.com/a/b.git/' not found", forge.ErrNotFound},
		{"fatal: unable to access 'x': The requested URL returned error: 404", forge.ErrNotFound},
		{"remote: TF401019: The Git repository with name or identifier r does not exist or you do not have permissions for the operation you are attempting.", forge.ErrNotFound},
		{"fatal: unable to access 'https://h/a.git/': SSL certificate problem: self-signed certificate", ErrTLS},
		{"fatal: unable to access 'https://h/': server certificate verification failed. CAfile: none CRLfile: none", ErrTLS},
		{"fatal: unable to access 'https://nohost/': Could not resolve host: nohost", ErrUnreachable},
		{"fatal: unable to access 'https://h/': Failed to connect to h port 443 after 1 ms: Connection refused", ErrUnreachable},
		{"fatal: unable to access 'https://h/': Operation timed out after 300000 milliseconds", ErrTimeout},
		{" ! [rejected]        main -> main (non-fast-forward)\nerror: failed to push some refs to 'https://h/a.git'", ErrRejected},
		{" ! [remote rejected] main -> main (protected branch hook declined)", ErrRejected},
	}
	for _, tt := range tests {
		var tail []string
		for _, l := range strings.Split(tt.stderr, "\n") {
			tail = append(tail, strings.TrimSpace(l))
		}
		err := m.classify(context.Background(), "fetch mirror k", exitErr, tail)
		var ge *Error
		if !errors.Is(err, tt.want) || !errors.As(err, &ge) || ge.Hint == "" {
			t.Errorf("classify(%q) = %v, want %v with a hint", tt.stderr, err, tt.want)
		}
	}

	err := m.classify(context.Background(), "fetch mirror k", exitErr, []string{"remote: hello", "fatal: the remote end hung up unexpectedly", "more"})
	var ge *Error
	if !errors.As(err, &ge) || ge.Err != nil || !strings.Contains(err.Error(), "fatal: the remote end hung up unexpectedly") {
		t.Errorf("unknown failure = %v, want the fatal line", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := m.classify(ctx, "op", exitErr, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled run = %v", err)
	}
}

func TestArgumentChecks(t *testing.T) {
	for _, k := range []string{"a", "repo_1-2", "0123456789abcdef"} {
		if err := checkKey(k); err != nil {
			t.Errorf("checkKey(%q) = %v", k, err)
		}
	}
	for _, k := range []string{"", "A", "a.b", "../x", "a/b", "a b", strings.Repeat("a", 129)} {
		if err := checkKey(k); !errors.Is(err, ErrInvalid) {
			t.Errorf("checkKey(%q) = %v, want ErrInvalid", k, err)
		}
	}
	for _, h := range []string{"Authorization: Basic eDp5", "PRIVATE-TOKEN: abc"} {
		if err := checkHeader(h); err != nil {
			t.Errorf("checkHeader(%q) = %v", h, err)
		}
	}
	for _, h := range []string{"", "Basic eDp5", "Authorization:", "A: b\r\nX-Other: c", ": v"} {
		if err := checkHeader(h); !errors.Is(err, ErrInvalid) {
			t.Errorf("checkHeader(%q) = %v, want ErrInvalid", h, err)
		}
	}
	for _, r := range []string{"main", "refs/heads/feature/x", "v1.0.0"} {
		if err := checkRef(r); err != nil {
			t.Errorf("checkRef(%q) = %v", r, err)
		}
	}
	for _, r := range []string{"", "-main", "a..b", "main^", "HEAD~1", "a b", "@{-1}", "x:y"} {
		if err := checkRef(r); !errors.Is(err, ErrInvalid) {
			t.Errorf("checkRef(%q) = %v, want ErrInvalid", r, err)
		}
	}
	for _, r := range []string{"refs/heads/a:refs/heads/b", "+refs/heads/*:refs/heads/*", ":refs/heads/gone", strings.Repeat("a", 40) + ":refs/heads/x"} {
		if err := checkRefspec(r); err != nil {
			t.Errorf("checkRefspec(%q) = %v", r, err)
		}
	}
	for _, r := range []string{"", "--mirror", "-f", "a b:c"} {
		if err := checkRefspec(r); !errors.Is(err, ErrInvalid) {
			t.Errorf("checkRefspec(%q) = %v, want ErrInvalid", r, err)
		}
	}
}

func TestReadsOnAMissingMirror(t *testing.T) {
	m := newManager(t, Options{})
	ctx := context.Background()
	if _, err := m.Head(ctx, "none", "main"); !errors.Is(err, ErrNoMirror) {
		t.Errorf("Head: %v", err)
	}
	if _, err := m.HasCommit(ctx, "none", strings.Repeat("a", 40)); !errors.Is(err, ErrNoMirror) {
		t.Errorf("HasCommit: %v", err)
	}
	if _, err := m.HasCommit(ctx, "none", "abc"); !errors.Is(err, ErrInvalid) {
		t.Errorf("HasCommit of a short id: %v", err)
	}
	if _, err := m.Refs(ctx, "none"); !errors.Is(err, ErrNoMirror) {
		t.Errorf("Refs: %v", err)
	}
	if m.Exists("none") || m.Exists("../x") {
		t.Error("Exists is true for a missing mirror")
	}
	if _, err := m.Dir("Bad"); !errors.Is(err, ErrInvalid) {
		t.Errorf("Dir of a bad key: %v", err)
	}
}

func TestEmptyRepositoryClones(t *testing.T) {
	srv := gittest.NewServer(t, gittest.HandlerOptions{})
	gittest.InitBare(t, srv.Root, "empty.git")
	m := newManager(t, Options{})
	res, err := m.Sync(context.Background(), "e", srv.RepoURL("empty.git"), nil, SyncOptions{})
	if err != nil || !res.Cloned || len(res.Updated) != 0 {
		t.Fatalf("Sync of an empty repository = %+v, %v", res, err)
	}
	refs, err := m.Refs(context.Background(), "e")
	if err != nil || len(refs) != 0 {
		t.Fatalf("Refs = %+v, %v", refs, err)
	}
}
