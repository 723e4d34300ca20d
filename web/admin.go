package web

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// adminView is the admin status page.
type adminView struct {
	Settings []Setting
	Users    []activityRow
	Sessions int
	Uptime   string
	Since    string
	NoRecord bool // no Activity recorder configured
}

type activityRow struct {
	User      string
	Requests  string
	BytesIn   string
	BytesOut  string
	Refused   int64
	Throttled int64
	Errors    int64
	Agents    string
}

// adminPage shows the configured limits and the last hour's activity per
// user. Only users with the admin role (users file) may see it.
func (h *Handler) adminPage(w http.ResponseWriter, r *http.Request) error {
	wh := whoFrom(r.Context())
	if !wh.Admin {
		return errorf(http.StatusForbidden, "The status page is for administrators (the admin role in the users file).")
	}
	v := &adminView{
		Settings: h.opts.Settings, Sessions: h.opts.Sessions.Len(),
		Uptime: time.Since(h.started).Round(time.Second).String(),
		Since:  time.Now().Add(-activityWindow).Format("15:04 MST"),
	}
	if h.opts.Activity == nil {
		v.NoRecord = true
	} else {
		for _, u := range h.opts.Activity.LastHour() {
			var ags []string
			for _, a := range u.Agents {
				ags = append(ags, a.Agent+" ("+strconv.FormatInt(a.Requests, 10)+")")
			}
			v.Users = append(v.Users, activityRow{
				User: u.User, Requests: strconv.FormatInt(u.Requests, 10),
				BytesIn: sizeText(u.BytesIn), BytesOut: sizeText(u.BytesOut),
				Refused: u.Refused, Throttled: u.Throttled, Errors: u.Errors,
				Agents: strings.Join(ags, "; "),
			})
		}
	}
	h.page(w, r, http.StatusOK, "admin", pageData{Title: "Server status", Admin: v})
	return nil
}
