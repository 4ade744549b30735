package proxy

// JoinersWaiting is how many requests are waiting for an identical one in
// flight, so tests can line up a join without sleeping.
func (s *Server) JoinersWaiting() int {
	return s.joins.Waiting()
}
