package limits

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/davmail/davmail/internal/reqlog"
	"github.com/rs/zerolog"
)

// BenchmarkAdmission measures both stages (Wrap and Gate) around an empty
// handler, run in parallel by many users from many addresses: the cost
// every request pays, and whether the stages contend on a lock. Limits
// are set high so that every request is admitted.
func BenchmarkAdmission(b *testing.B) {
	l := NewLimiter(Options{
		User:         Quota{Rate: 1e9, Burst: 1 << 30},
		IPRate:       1e9,
		IPBurst:      1 << 30,
		IPConcurrent: -1,
		MaxInFlight:  -1,
	})
	h := l.Wrap(l.Gate(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})))
	var id atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		n := id.Add(1)
		user := "user" + strconv.FormatInt(n%64, 10)
		req := httptest.NewRequest("GET", "/exchange/"+user+"/Inbox/x.EML", nil)
		req.RemoteAddr = "10.0.0." + strconv.FormatInt(n%200, 10) + ":1234"
		e := &reqlog.Entry{User: user, Log: zerolog.Nop()}
		req = req.WithContext(reqlog.With(context.Background(), e))
		w := httptest.NewRecorder()
		for pb.Next() {
			h.ServeHTTP(w, req)
		}
	})
}
