package proxy

// track marks one request in flight, in the server's count (which a shutdown
// reports when it cuts messages off) and the in-flight gauge, until the
// returned func is called.
func (s *Server) track() (done func()) {
	s.flights.Add(1)
	gauge := s.metrics.Started()
	return func() {
		gauge()
		s.flights.Add(-1)
	}
}
