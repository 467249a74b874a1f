package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/forgeway/forgeway/internal/api"
	"github.com/forgeway/forgeway/internal/testserver"
)

// buildBinary builds cmd/forgeway once for the test.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "forgeway")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/forgeway")
	cmd.Dir = filepath.Join("..", "..")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build forgeway: %v\n%s", err, out)
	}
	return bin
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// process is a `forgeway serve` child process.
type process struct {
	cmd *exec.Cmd
	URL string
	log *os.File
}

func startProcess(t *testing.T, bin, dataDir, addr, token string, extraEnv ...string) *process {
	t.Helper()
	logf, err := os.OpenFile(filepath.Join(t.TempDir(), "serve.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", "--data-dir", dataDir, "--listen", addr, "--public-url", "http://"+addr, "--log-format", "json", "--job-poll", "50ms", "--job-lease", "3s")
	cmd.Env = append(os.Environ(), "FORGEWAY_ADMIN_TOKEN="+token)
	cmd.Env = append(cmd.Env, extraEnv...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd, URL: "http://" + addr, log: logf}
	t.Cleanup(func() { p.kill(); logf.Close() })
	testserver.Eventually(t, 30*time.Second, "server ready", func() bool {
		resp, err := http.Get(p.URL + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return p
}

// waitHealthy waits for a listener's /healthz to answer 200.
func waitHealthy(t *testing.T, base string) {
	t.Helper()
	testserver.Eventually(t, 30*time.Second, base+" healthy", func() bool {
		resp, err := http.Get(base + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
}

func (p *process) kill() {
	if p.cmd.ProcessState == nil {
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		_ = p.cmd.Wait()
	}
}

// TestCrashLosesNoAcknowledgedDelivery kills the server with SIGKILL while signed deliveries
// stream in, restarts it on the same data, and checks that every delivery that got a 202 is
// there and processed exactly once (one event each), and that a host retrying them all gets
// "duplicate" for each. Half the deliveries go to the webhook listener, which the process
// opens from its FORGEWAY_WEBHOOK_LISTEN setting: a 202 from either listener is durable.
func TestCrashLosesNoAcknowledgedDelivery(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills a server process")
	}
	bin := buildBinary(t)
	eachEngine(t, func(t *testing.T, eng engine) {
		data := t.TempDir()
		addr := freeAddr(t)
		hooks := "http://" + freeAddr(t)
		token := "fwt_crashtestadmintoken"
		extra := []string{"FORGEWAY_WEBHOOK_LISTEN=" + hooks[len("http://"):]}
		if dsn := eng.dsn(t); dsn != "" {
			extra = append(extra, "FORGEWAY_DATABASE_URL="+dsn)
		}
		p := startProcess(t, bin, data, addr, token, extra...)
		waitHealthy(t, hooks)
		e := newEnv(t, p.URL, token)
		id := e.githubTokenIntegration(nil)
		body := corpusFile(t, "github", "push.json")
		sig := sign(hookSecret, body)

		var mu sync.Mutex
		var acked []string
		ackedBy := map[string]int{} // by listener
		var wg sync.WaitGroup
		stop := make(chan struct{})
		for w := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				client := &http.Client{Timeout: 5 * time.Second}
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					hostID := fmt.Sprintf("crash-%d-%d", w, i)
					base := p.URL
					if w%2 == 1 {
						base = hooks
					}
					req, _ := http.NewRequest("POST", base+"/webhooks/github/"+id, bytes.NewReader(body))
					req.Header.Set("Content-Type", "application/json")
					req.Header.Set("X-GitHub-Event", "push")
					req.Header.Set("X-GitHub-Delivery", hostID)
					req.Header.Set("X-Hub-Signature-256", sig)
					resp, err := client.Do(req)
					if err != nil {
						return // the server is gone
					}
					resp.Body.Close()
					if resp.StatusCode == http.StatusAccepted {
						mu.Lock()
						acked = append(acked, hostID)
						ackedBy[base]++
						mu.Unlock()
					}
				}
			}()
		}
		// Let deliveries stream in (and processing run) for a while, then kill -9 mid-stream.
		testserver.Eventually(t, 30*time.Second, "200 acknowledged deliveries", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(acked) >= 200
		})
		p.kill()
		close(stop)
		wg.Wait()
		t.Logf("%d deliveries acknowledged before SIGKILL: %v", len(acked), ackedBy)
		if ackedBy[p.URL] == 0 || ackedBy[hooks] == 0 {
			t.Errorf("acknowledged by listener: %v; want some by each", ackedBy)
		}

		p2 := startProcess(t, bin, data, addr, token, extra...)
		e.URL = p2.URL
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		// Every stored delivery gets processed after the restart.
		testserver.Eventually(t, 90*time.Second, "no delivery left unprocessed", func() bool {
			var page api.List[api.Delivery]
			e.MustCall("GET", "/api/v1/deliveries?status=received&integration="+id, nil, &page, 200)
			return len(page.Items) == 0
		})
		stored := map[string]api.Delivery{}
		cursor := ""
		for ctx.Err() == nil {
			var page api.List[api.Delivery]
			e.MustCall("GET", "/api/v1/deliveries?limit=500&integration="+id+"&cursor="+cursor, nil, &page, 200)
			for _, d := range page.Items {
				stored[d.HostID] = d
			}
			if cursor = page.NextCursor; cursor == "" {
				break
			}
		}
		for _, hostID := range acked {
			d, ok := stored[hostID]
			if !ok {
				t.Errorf("delivery %s was acknowledged but is not stored", hostID)
				continue
			}
			if d.Status != "processed" || len(d.EventIDs) != 1 {
				t.Errorf("delivery %s: status %s, %d events", hostID, d.Status, len(d.EventIDs))
			}
		}
		// Exactly once: one event per stored delivery, no more.
		perDelivery := map[string]int{}
		after := "0"
		for ctx.Err() == nil {
			var page api.List[json.RawMessage]
			e.MustCall("GET", "/api/v1/events?limit=1000&integration="+id+"&after="+after, nil, &page, 200)
			for _, raw := range page.Items {
				var ev struct {
					Delivery string `json:"forgewaydelivery"`
				}
				json.Unmarshal(raw, &ev)
				perDelivery[ev.Delivery]++
			}
			if len(page.Items) == 0 {
				break
			}
			after = page.NextCursor
		}
		if len(perDelivery) != len(stored) {
			t.Errorf("%d deliveries have events, %d are stored", len(perDelivery), len(stored))
		}
		for hostID, n := range perDelivery {
			if n != 1 {
				t.Errorf("delivery %s has %d events", hostID, n)
			}
		}
		// A host retrying every acknowledged delivery is told each is a duplicate.
		for _, hostID := range acked[:min(len(acked), 50)] {
			status, out := e.post("/webhooks/github/"+id, delivery{event: "push", id: hostID, body: body, signature: sig})
			if status != http.StatusAccepted || out["duplicate"] != true {
				t.Errorf("retry of %s: %d %v", hostID, status, out)
			}
		}
	})
}
