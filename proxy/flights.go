package proxy

// track marks one request in flight, in the server's count (which a shutdown
// reports when it cuts messages off) and the in-flight gauge, until the
// returned func is called.
func (s *Server) track() (done func()) {
	s.flights.Add(1)
	s.metrics.inFlight.Inc()
	return func() {
		s.metrics.inFlight.Dec()
		s.flights.Add(-1)
	}
}
