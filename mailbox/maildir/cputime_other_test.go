//go:build !unix

package maildir

import "time"

func cpuTime() time.Duration { return 0 }
