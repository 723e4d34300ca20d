package dav

// SendfileGets exposes the count of raw downloads served by sendfile to
// the package's external tests.
func SendfileGets(h *Handler) int64 { return h.sendfileGets.Load() }
