package metrics

// The shared store's metrics ([cluster]) appear when a store is first
// used, so a replica without [cluster] exports no postern_store_up that
// could be mistaken for a store down.

// StoreUp records whether the shared store answers.
func (m *Metrics) StoreUp(up bool) {
	m.storeUp.Store(up)
	m.storeUsed.Store(true)
}

// StoreError counts one failed store operation.
func (m *Metrics) StoreError() {
	m.storeErrors.Add(1)
	m.storeUsed.Store(true)
}
