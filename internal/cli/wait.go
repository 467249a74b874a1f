package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/forgeway/forgeway/internal/api"
	"github.com/forgeway/forgeway/internal/store"
)

// finished reports whether a job state is final.
func finished(state string) bool {
	return state == store.JobCompleted || state == store.JobDead || state == store.JobCancelled
}

// jobStarted handles an answer of 202 with a job: it waits for the job when wait is set, else
// says how to follow it (or prints the raw answer with --json).
func (e *env) jobStarted(ctx context.Context, c *client, raw []byte, wait bool, what string) error {
	var job api.Job
	if err := json.Unmarshal(raw, &job); err != nil {
		return fmt.Errorf("read the job of %s: %w", what, err)
	}
	if wait {
		return e.waitJob(ctx, c, job, raw)
	}
	if e.json {
		return printRaw(e.stdout, raw)
	}
	fmt.Fprintf(e.stdout, "%s: job %d (%s) is %s; follow it with `forgeway jobs wait %d`\n", what, job.ID, job.Kind, job.State, job.ID)
	return nil
}

// waitJob polls the job until it is finished, showing its progress on stderr: one line
// updated in place on a terminal, else one line per change. It prints the final state (or the
// final job with --json) and fails when the job did not complete.
func (e *env) waitJob(ctx context.Context, c *client, job api.Job, raw []byte) error {
	id := strconv.FormatInt(job.ID, 10)
	last, shown := "", false
	clear := func() {
		if e.terminal && shown {
			fmt.Fprint(e.stderr, "\r\033[K")
			shown = false
		}
	}
	stopped := func() error {
		clear()
		return &hintError{
			err:  fmt.Errorf("stopped waiting for job %s (%s is still %s on the server)", id, job.Kind, job.State),
			hint: "Wait for it again with `forgeway jobs wait " + id + "`.",
		}
	}
	tick := time.NewTicker(e.poll)
	defer tick.Stop()
	for !finished(job.State) {
		if line := jobLine(job); line != last {
			if e.terminal {
				fmt.Fprintf(e.stderr, "\r\033[K%s", line)
			} else {
				fmt.Fprintln(e.stderr, line)
			}
			last, shown = line, true
		}
		select {
		case <-ctx.Done():
			return stopped()
		case <-tick.C:
		}
		var next api.Job
		r, err := c.get(ctx, "/jobs/"+id, nil, &next)
		if err != nil {
			if ctx.Err() != nil {
				return stopped()
			}
			clear()
			return fmt.Errorf("wait for job %s: %w", id, err)
		}
		job, raw = next, r
	}
	clear()
	if e.json {
		if err := printRaw(e.stdout, raw); err != nil {
			return err
		}
	} else {
		fmt.Fprintln(e.stdout, jobLine(job))
	}
	if job.State == store.JobCompleted {
		return nil
	}
	msg := fmt.Sprintf("job %s (%s) is %s", id, job.Kind, job.State)
	if job.LastError != "" {
		msg += ": " + job.LastError
	}
	hint := "See `forgeway jobs get " + id + "`."
	if job.State == store.JobDead {
		hint = "See `forgeway jobs get " + id + "`; once the cause is fixed, run it again with `forgeway jobs retry " + id + "`."
	}
	return &hintError{err: fmt.Errorf("%s", msg), hint: hint}
}

// jobLine is a one-line summary of a job: id, kind, state, attempts and progress or error.
func jobLine(j api.Job) string {
	var b strings.Builder
	fmt.Fprintf(&b, "job %d (%s) %s", j.ID, j.Kind, j.State)
	if j.Attempt > 1 || j.State == store.JobRetryable || j.State == store.JobDead {
		fmt.Fprintf(&b, ", attempt %s", attempts(j))
	}
	if j.State == store.JobRetryable && !j.RunAt.IsZero() {
		fmt.Fprintf(&b, ", next try at %s", ts(j.RunAt))
	}
	if p := progressText(j.Progress); p != "" {
		b.WriteString(": " + p)
	}
	if j.LastError != "" && j.State != store.JobCompleted && j.State != store.JobDead {
		b.WriteString(" (last error: " + oneLine(j.LastError, 120) + ")")
	}
	return b.String()
}

func attempts(j api.Job) string {
	if j.MaxAttempts > 0 {
		return fmt.Sprintf("%d/%d", j.Attempt, j.MaxAttempts)
	}
	return strconv.Itoa(j.Attempt)
}

// progressKeys orders the progress counters jobs report (discovery, sync, reconcile); others
// follow alphabetically.
var progressKeys = []string{"repositories", "pages", "matched", "installations", "removed", "cloned", "updated", "repaired", "duration_ms"}

// progressText renders a job's progress document: "Receiving objects 45% (9/20)" for git,
// "repositories: 1200, pages: 12 (listing)" for counters.
func progressText(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		return oneLine(string(raw), 200)
	}
	m := make(map[string]any, len(doc))
	for k, v := range doc {
		m[strings.ToLower(k)] = v // keys are matched whatever their case
	}
	phase, _ := m["phase"].(string)
	delete(m, "phase")
	if pct, ok := m["percent"].(json.Number); ok && phase != "" {
		s := phase
		done, _ := m["done"].(json.Number)
		total, _ := m["total"].(json.Number)
		if total != "" && total != "0" {
			s += fmt.Sprintf(" %s%% (%s/%s)", pct, done, total)
		} else if done != "" && done != "0" {
			s += fmt.Sprintf(" %s", done)
		}
		return s
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		ia, ib := slices.Index(progressKeys, a), slices.Index(progressKeys, b)
		switch {
		case ia >= 0 && ib >= 0:
			return ia - ib
		case ia >= 0:
			return -1
		case ib >= 0:
			return 1
		}
		return strings.Compare(a, b)
	})
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, progressPart(k, m[k]))
	}
	s := strings.Join(parts, ", ")
	if phase != "" {
		if s == "" {
			return phase
		}
		s += " (" + phase + ")"
	}
	return s
}

func progressPart(k string, v any) string {
	if n, ok := v.(json.Number); ok && k == "duration_ms" {
		if ms, err := n.Int64(); err == nil {
			return "duration: " + (time.Duration(ms) * time.Millisecond).String()
		}
	}
	switch x := v.(type) {
	case string:
		return k + ": " + x
	case json.Number:
		return k + ": " + x.String()
	case bool:
		return k + ": " + strconv.FormatBool(x)
	}
	raw, _ := json.Marshal(v)
	return k + ": " + string(raw)
}

// oneLine flattens s to one line of at most n characters.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}
