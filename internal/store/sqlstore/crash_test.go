package sqlstore

import (
	"bufio"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/forgeway/forgeway/internal/store"
)

// crashChildEnv makes the test binary the child of TestCrashDuringCheckpoints: it commits
// deliveries into the database file it names until it is killed.
const crashChildEnv = "FORGEWAY_SQLSTORE_CRASH_CHILD"

// TestCrashDuringCheckpoints kills a process with SIGKILL while it group-commits deliveries
// and checkpoints its WAL every few commits; every delivery InsertDelivery had returned is
// there after reopening, and the database is sound.
func TestCrashDuringCheckpoints(t *testing.T) {
	if path := os.Getenv(crashChildEnv); path != "" {
		crashChild(path)
		return
	}
	path := filepath.Join(t.TempDir(), "f.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashDuringCheckpoints$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := map[string]bool{}
	var passes string
	sc := bufio.NewScanner(out)
	deadline := time.Now().Add(1500 * time.Millisecond)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "ok "):
			acked[strings.TrimPrefix(line, "ok ")] = true
		case strings.HasPrefix(line, "checkpoints "):
			passes = strings.TrimPrefix(line, "checkpoints ")
		}
		if time.Now().After(deadline) && passes != "" && passes != "0" {
			break
		}
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	if len(acked) == 0 {
		t.Fatal("the child acknowledged no delivery")
	}
	if passes == "" || passes == "0" {
		t.Fatal("the child ran no checkpoint before it was killed")
	}

	db := openSQLite(t, path)
	ctx := t.Context()
	var check string
	if err := db.writer.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
		t.Fatalf("integrity_check after SIGKILL: %q (%v)", check, err)
	}
	stored := map[string]bool{}
	rows, err := db.reader.QueryContext(ctx, "SELECT host_id FROM deliveries")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		stored[id] = true
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for id := range acked {
		if !stored[id] {
			t.Errorf("delivery %s was acknowledged but is not stored", id)
		}
	}
	t.Logf("%d deliveries acknowledged, %d stored, %s checkpoints before SIGKILL", len(acked), len(stored), passes)
}

// crashChild commits deliveries from 16 goroutines, printing each one's id once
// InsertDelivery has returned, and the checkpoint count every 50 ms, until killed.
func crashChild(path string) {
	o := quietOptions()
	o.CheckpointFrames = 16
	db, err := Open(context.Background(), path, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var mu sync.Mutex
	w := bufio.NewWriter(os.Stdout)
	say := func(s string) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintln(w, s)
		_ = w.Flush()
	}
	go func() {
		for {
			time.Sleep(50 * time.Millisecond)
			passes, _ := db.CheckpointStats()
			say(fmt.Sprint("checkpoints ", passes))
		}
	}()
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := 0; ; i++ {
				d := store.Delivery{IntegrationID: "int_a", Kind: "github", HostID: fmt.Sprintf("%d-%d", g, i)}
				for len(d.Body) < 2000 { // incompressible: each delivery writes a share of a page
					d.Body = append(d.Body, rand.Text()...)
				}
				if _, err := db.InsertDelivery(context.Background(), &d, store.NewJob{Kind: "p"}); err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(2)
				}
				say("ok " + d.HostID)
			}
		})
	}
	wg.Wait()
}
