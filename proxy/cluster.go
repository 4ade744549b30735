package proxy

import (
	"sync"
	"time"

	"github.com/postern/postern/proxy/audit"
	"github.com/postern/postern/proxy/config"
	"github.com/postern/postern/proxy/store"
)

// stores is the server's connection to the [cluster] store: one store
// while [cluster] stays the same across reloads (the counters are in the
// store, so a reload keeps them), a new one when it changes, the old one
// closed once the requests that started with it must have ended.
type stores struct {
	mu      sync.Mutex
	current *store.Store // nil without [cluster]
	closed  bool
}

// attachStore gives rt's guards and deliverer the store for rt's [cluster]
// (none without it), making or switching the store as needed.
func (s *Server) attachStore(rt *runtime) {
	if s.opts.dryRun != nil {
		return // translate sends nothing, so it counts and claims nothing
	}
	st := s.stores.use(rt.cfg, s)
	if st == nil {
		return
	}
	rt.guards.UseStore(st, rt.cfg.IDKey())
	rt.deliver.UseStore(st, rt.cfg.RequestTimeout)
	rt.store = st
}

func (ss *stores) use(cfg *config.Config, s *Server) *store.Store {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	old := ss.current
	if old != nil && old.Cluster().Equal(cfg.Cluster) {
		return old
	}
	ss.current = nil
	if cfg.Cluster.Enabled() && !ss.closed {
		ss.current = store.New(cfg.Cluster, cfg.Roots, s.log, s.metrics)
	}
	if old != nil {
		s.log.Info("[cluster] changed: switching stores", "from", old.Cluster().Redis.Redacted(), "to", redisName(cfg.Cluster))
		time.AfterFunc(cfg.RequestTimeout+time.Second, func() { old.Close() })
	}
	return ss.current
}

func redisName(c config.Cluster) string {
	if !c.Enabled() {
		return "none (each replica counts alone)"
	}
	return c.Redis.Redacted()
}

// Close releases what the server holds beyond its listeners: the
// connection to the [cluster] store. Call it once serving has ended.
func (s *Server) Close() error {
	s.stores.mu.Lock()
	defer s.stores.mu.Unlock()
	s.stores.closed = true
	if st := s.stores.current; st != nil {
		s.stores.current = nil
		return st.Close()
	}
	return nil
}

// storeState is what /readyz says about the store, and whether the
// replica is ready as far as the store is concerned: under
// on_store_error = "refuse" a replica whose store is down refuses every
// message, so it is not ready; under "local" it serves on.
func (rt *runtime) storeState() (line string, ready bool) {
	st := rt.store
	switch {
	case st == nil:
		return "", true
	case st.Up():
		return "store: redis up\n", true
	case st.Refuse():
		return "store: redis unavailable, refusing messages (on_store_error = \"refuse\")\n", false
	}
	return "store: redis unavailable, counting locally (on_store_error = \"local\")\n", true
}

// noteStore records in a whose counters applied (store.Note).
func noteStore(a *audit.Record, st string) { a.Store = store.Note(a.Store, st) }
