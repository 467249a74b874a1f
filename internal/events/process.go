package events

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/integrations"
	"github.com/forgeway/forgeway/internal/jobs"
	"github.com/forgeway/forgeway/internal/store"
)

// JobProcess is the job kind that processes stored deliveries: one, or the deliveries the
// store committed together.
const JobProcess = store.JobProcessDelivery

// ProcessArgs are the arguments of a processing job: the store writes them with the
// deliveries (one job per group commit), Replay with one delivery.
type ProcessArgs = store.DeliveryJobArgs

// Applier writes a delivery's effects on the catalog inside the processing transaction.
type Applier interface {
	Apply(ctx context.Context, tx store.Tx, rec store.Integration, res forge.Result) error
}

// Processor turns stored deliveries into events, exactly once in effect: every write of a
// processing run (events, catalog effects, follow-up jobs, the delivery's outcome) commits in
// one transaction, and event ids derive from the delivery, so a run repeated after a crash or a
// replay writes nothing twice.
type Processor struct {
	ints    *integrations.Service
	st      store.Store
	applier Applier
	broker  *Broker
	log     *slog.Logger
	notify  func()
	outcome func(kind, status string)
}

// ProcessorOptions configures a Processor.
type ProcessorOptions struct {
	Integrations *integrations.Service
	Applier      Applier
	Broker       *Broker
	Logger       *slog.Logger
	Notify       func()                    // wakes the job runner; optional
	Outcome      func(kind, status string) // metrics; optional
}

// NewProcessor returns a Processor.
func NewProcessor(o ProcessorOptions) *Processor {
	p := &Processor{ints: o.Integrations, st: o.Integrations.Store(), applier: o.Applier, broker: o.Broker, log: o.Logger, notify: o.Notify, outcome: o.Outcome}
	if p.log == nil {
		p.log = slog.Default()
	}
	if p.notify == nil {
		p.notify = func() {}
	}
	if p.outcome == nil {
		p.outcome = func(string, string) {}
	}
	if p.broker == nil {
		p.broker = NewBroker()
	}
	return p
}

// Register adds the processing job to a runner.
func (p *Processor) Register(r *jobs.Runner) {
	r.Register(JobProcess, p.run, jobs.KindOptions{MaxAttempts: 12, Timeout: 2 * time.Minute})
}

func (p *Processor) run(ctx context.Context, j *jobs.Job) error {
	var a ProcessArgs
	if err := j.Decode(&a); err != nil {
		return jobs.Permanent(err)
	}
	ids := a.IDs()
	switch len(ids) {
	case 0:
		return jobs.Permanent(errors.New("the job names no delivery"))
	case 1:
		err := p.Process(ctx, ids[0])
		if err != nil && !errors.Is(err, errPermanent) && j.Attempt >= j.MaxAttempts {
			p.fail(ctx, ids[0], err)
		}
		if errors.Is(err, errPermanent) {
			return jobs.Permanent(err)
		}
		return err
	}
	if err := p.processBatch(ctx, ids); err == nil {
		return nil
	}
	// Something in the batch failed: take the deliveries one at a time, so that one that
	// cannot be processed is recorded as failed without holding up the others; a transient
	// error fails the job after the others had their turn, and its next attempt skips those
	// already done.
	var retry error
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return err
		}
		err := p.process(ctx, id, true)
		switch {
		case err == nil, errors.Is(err, errPermanent):
		case j.Attempt >= j.MaxAttempts:
			p.fail(ctx, id, err)
		default:
			retry = cmp.Or(retry, err)
		}
	}
	return retry
}

var errPermanent = errors.New("cannot be processed")

// Process normalizes one stored delivery and commits its events and effects.
func (p *Processor) Process(ctx context.Context, deliveryID string) error {
	return p.process(ctx, deliveryID, false)
}

// process is Process; onlyNew skips a delivery that is no longer in the received state (a
// shared job's earlier attempt, or a replay, processed it).
func (p *Processor) process(ctx context.Context, deliveryID string, onlyNew bool) error {
	d, err := p.st.GetDelivery(ctx, deliveryID)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("delivery %s: %w: %w", deliveryID, errPermanent, err)
	}
	if err != nil {
		return fmt.Errorf("load delivery %s: %w", deliveryID, err)
	}
	pd, err := p.prepare(ctx, d, onlyNew, nil, nil)
	if err != nil || pd == nil {
		return err
	}
	if err := p.st.Tx(ctx, func(tx store.Tx) error { return p.write(ctx, tx, pd) }); err != nil {
		return fmt.Errorf("commit delivery %s: %w", pd.d.ID, err)
	}
	p.finished(pd)
	p.published()
	return nil
}

// processBatch processes the deliveries a group commit stored together in one transaction:
// each delivery's own transaction rewrote the same pages (the deliveries' rows, the right
// edges of the event log's indexes), and every commit cost the single writer those pages
// again. It normalizes them in order outside the transaction (a pull request's head set by
// an earlier delivery of the batch is seen by a later one), then writes them all. A delivery
// that can never be processed is recorded as failed and left out; any other error returns
// before anything is written, or rolls the whole batch back: the caller then processes the
// deliveries one by one.
func (p *Processor) processBatch(ctx context.Context, ids []string) error {
	// One read for the batch's deliveries; one that is gone (pruned) is left out, as there is
	// nothing to process.
	ds, err := p.st.GetDeliveries(ctx, ids)
	if err != nil {
		return fmt.Errorf("load %d deliveries: %w", len(ids), err)
	}
	heads := map[prKey]string{}
	ints := map[string]store.Integration{} // a batch's deliveries mostly share one
	var batch []*prepared
	for _, d := range ds {
		pd, err := p.prepare(ctx, d, true, heads, ints)
		if errors.Is(err, errPermanent) {
			continue // recorded as failed by prepare
		}
		if err != nil {
			return err
		}
		if pd == nil {
			continue
		}
		for _, h := range pd.heads() {
			heads[prKey{h.IntegrationID, h.RepoHostID, h.Number}] = h.SHA
		}
		batch = append(batch, pd)
	}
	if len(batch) == 0 {
		return nil
	}
	err = p.st.Tx(ctx, func(tx store.Tx) error {
		for _, pd := range batch {
			if err := p.write(ctx, tx, pd); err != nil {
				return fmt.Errorf("delivery %s: %w", pd.d.ID, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("commit %d deliveries: %w", len(batch), err)
	}
	for _, pd := range batch {
		p.finished(pd)
	}
	p.published()
	return nil
}

// prepared is a delivery normalized and ready to be written.
type prepared struct {
	d   store.Delivery
	rec store.Integration
	res forge.Result
	evs []store.Event
}

// heads returns the pull request heads a prepared delivery's events set.
func (pd *prepared) heads() []store.PullRequestHead {
	var out []store.PullRequestHead
	for _, ev := range pd.res.Events {
		if pr, ok := ev.Data.(forge.PullRequestData); ok && ev.Repository != nil && pr.Source.SHA != "" {
			out = append(out, store.PullRequestHead{IntegrationID: pd.rec.ID, RepoHostID: ev.Repository.ID, Number: pr.Number, SHA: pr.Source.SHA})
		}
	}
	return out
}

// prepare normalizes a stored delivery and builds its events; nil (and no error) when
// onlyNew and the delivery was processed already. heads, when not nil, holds pull request
// heads set by deliveries prepared before it and not yet written; ints, when not nil, the
// integrations loaded for them. A delivery that can never be processed is recorded as failed
// and an errPermanent error returned.
func (p *Processor) prepare(ctx context.Context, d store.Delivery, onlyNew bool, heads map[prKey]string, ints map[string]store.Integration) (*prepared, error) {
	if onlyNew && d.Status != store.DeliveryReceived {
		return nil, nil
	}
	rec, err := p.integration(ctx, d.IntegrationID, ints)
	if errors.Is(err, store.ErrNotFound) {
		p.fail(ctx, d.ID, errors.New("its integration was deleted"))
		return nil, fmt.Errorf("delivery %s: integration %s deleted: %w", d.ID, d.IntegrationID, errPermanent)
	}
	if err != nil {
		return nil, fmt.Errorf("load integration of delivery %s: %w", d.ID, err)
	}
	drv, err := p.ints.Driver(d.Kind)
	if err != nil {
		p.fail(ctx, d.ID, err)
		return nil, fmt.Errorf("%w: %w", errPermanent, err)
	}
	fd := forge.Delivery{Header: d.Headers, Body: d.Body, ReceivedAt: d.ReceivedAt}
	res, err := drv.Webhooks().Normalize(ctx, fd, prState{st: p.st, integrationID: rec.ID, pending: heads})
	if err != nil {
		if errors.Is(err, forge.ErrMalformed) {
			p.fail(ctx, d.ID, err)
			return nil, fmt.Errorf("normalize delivery %s: %w: %w", d.ID, errPermanent, err)
		}
		return nil, fmt.Errorf("normalize delivery %s: %w", d.ID, err)
	}
	ref := DeliveryRef{ID: d.ID, HostID: d.HostID, Kind: d.Kind, IntegrationID: rec.ID, ReceivedAt: d.ReceivedAt}
	evs := make([]store.Event, 0, len(res.Events))
	ids := make([]string, 0, len(res.Events))
	for i, ev := range res.Events {
		ce, err := Build(ref, i, ev)
		if err != nil {
			p.fail(ctx, d.ID, err)
			return nil, fmt.Errorf("%w: %w", errPermanent, err)
		}
		doc, err := json.Marshal(ce)
		if err != nil {
			return nil, fmt.Errorf("encode event: %w", err)
		}
		t, _ := time.Parse(time.RFC3339Nano, ce.Time)
		se := store.Event{ID: ce.ID, IntegrationID: rec.ID, DeliveryID: d.ID, Type: ce.Type, Time: t, Document: doc}
		if ev.Repository != nil {
			se.RepositoryID = ev.Repository.ID
		}
		evs = append(evs, se)
		ids = append(ids, ce.ID)
	}
	d.Status, d.Reason, d.Error, d.EventIDs = store.DeliveryProcessed, "", "", ids
	if len(res.Events) == 0 && len(res.Effects) == 0 {
		d.Status, d.Reason = store.DeliveryIgnored, res.Ignored
		if d.Reason == "" {
			d.Reason = "the delivery produced no event"
		}
	}
	return &prepared{d: d, rec: rec, res: res, evs: evs}, nil
}

// integration loads an integration, or takes it from ints (and keeps it there).
func (p *Processor) integration(ctx context.Context, id string, ints map[string]store.Integration) (store.Integration, error) {
	if rec, ok := ints[id]; ok {
		return rec, nil
	}
	rec, err := p.st.GetIntegration(ctx, id)
	if err == nil && ints != nil {
		ints[id] = rec
	}
	return rec, err
}

// write commits a prepared delivery's effects, events and outcome in tx.
func (p *Processor) write(ctx context.Context, tx store.Tx, pd *prepared) error {
	if p.applier != nil {
		if err := p.applier.Apply(ctx, tx, pd.rec, pd.res); err != nil {
			return fmt.Errorf("apply effects: %w", err)
		}
	}
	if err := tx.AppendEvents(ctx, pd.evs); err != nil {
		return fmt.Errorf("append events: %w", err)
	}
	for _, h := range pd.heads() {
		if err := tx.SetPullRequestHead(ctx, h); err != nil {
			return fmt.Errorf("record pull request head: %w", err)
		}
	}
	d := pd.d
	d.ProcessedAt = time.Now().UTC()
	return tx.FinishDelivery(ctx, &d)
}

// finished counts a committed delivery's outcome.
func (p *Processor) finished(pd *prepared) { p.outcome(pd.d.Kind, pd.d.Status) }

// published wakes the event stream's readers and the job runner once per commit (its
// deliveries' follow-up jobs and events are visible together).
func (p *Processor) published() {
	p.broker.Publish()
	p.notify()
}

func (p *Processor) fail(ctx context.Context, id string, cause error) {
	d, err := p.st.GetDelivery(ctx, id)
	if err != nil {
		return
	}
	d.Status, d.Error = store.DeliveryFailed, cause.Error()
	d.ProcessedAt = time.Now().UTC()
	if err := p.st.FinishDelivery(ctx, &d); err != nil {
		p.log.Warn("could not record failed delivery", "delivery", id, "err", err)
	}
	p.outcome(d.Kind, d.Status)
}

// prKey names a pull request of an integration.
type prKey struct {
	integrationID, repoHostID string
	number                    int64
}

// prState answers a driver's question about a pull request's last known head: from pending
// (heads set by deliveries of the same batch, not yet written) first, then the store.
type prState struct {
	st            store.Store
	integrationID string
	pending       map[prKey]string
}

func (s prState) PullRequestHead(ctx context.Context, repoHostID string, number int64) (string, bool, error) {
	if sha, ok := s.pending[prKey{s.integrationID, repoHostID, number}]; ok {
		return sha, true, nil
	}
	return s.st.GetPullRequestHead(ctx, s.integrationID, repoHostID, number)
}

// Replay processes a stored delivery again (through a job), as the API's replay does.
func Replay(ctx context.Context, st store.Store, deliveryID string) (store.Job, error) {
	if _, err := st.GetDelivery(ctx, deliveryID); err != nil {
		return store.Job{}, err
	}
	j, _, err := st.InsertJob(ctx, store.NewJob{Kind: JobProcess, Args: ProcessArgs{DeliveryID: deliveryID}, UniqueKey: "process:" + deliveryID, MaxAttempts: 12})
	return j, err
}

// TypeMatches reports whether an event type passes a filter: exact, or a prefix ending in ".".
func TypeMatches(filter, typ string) bool {
	if filter == "" {
		return true
	}
	if strings.HasSuffix(filter, ".") {
		return strings.HasPrefix(typ, filter)
	}
	return filter == typ
}
