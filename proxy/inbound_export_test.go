package proxy

// FrontCounts returns how many requests the plain listener's front
// answered itself and how many connections it handed to net/http.
func FrontCounts(s *Server) (served, handedOff int64) {
	ps := s.plain.Load()
	if ps == nil {
		return 0, 0
	}
	return ps.front.Counts()
}
