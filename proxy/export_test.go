package proxy

// JoinersWaiting is how many requests are waiting for an identical one in
// flight, so tests can line up a join without sleeping.
func (s *Server) JoinersWaiting() int {
	s.joins.mu.Lock()
	defer s.joins.mu.Unlock()
	return s.joins.joiners
}
