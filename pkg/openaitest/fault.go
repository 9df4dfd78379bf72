package openaitest

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// fault is a parsed fault spec. The zero value injects nothing.
type fault struct {
	status int           // serve this status's error reply instead
	delay  time.Duration // wait before sending headers
	cut    int           // send this many events (bytes for JSON), then drop the connection; -1: off
	hang   bool          // never answer; give up when the client does
	slow   time.Duration // wait between stream events
}

var noFault = fault{cut: -1}

// parseFault reads a comma-separated list of "status:<code>",
// "delay:<duration>", "cut:<n>", "hang" and "slow:<duration>"
// ("delay:50ms,cut:3"). An empty spec is no fault.
func parseFault(spec string) (fault, error) {
	f := noFault
	for item := range strings.SplitSeq(spec, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		key, val, hasVal := strings.Cut(item, ":")
		var err error
		switch key {
		case "status":
			f.status, err = strconv.Atoi(val)
			if err == nil && (f.status < 400 || f.status > 599) {
				err = fmt.Errorf("not an error status")
			}
		case "delay":
			f.delay, err = parseDuration(val)
		case "slow":
			f.slow, err = parseDuration(val)
		case "cut":
			f.cut, err = strconv.Atoi(val)
			if err == nil && f.cut < 0 {
				err = fmt.Errorf("negative")
			}
		case "hang":
			if hasVal {
				err = fmt.Errorf("takes no value")
			}
			f.hang = true
		default:
			err = fmt.Errorf("unknown fault")
		}
		if err != nil || (key != "hang" && !hasVal) {
			if err == nil {
				err = fmt.Errorf("needs a value")
			}
			return noFault, fmt.Errorf("openaitest: fault %q: %w", item, err)
		}
	}
	return f, nil
}

func parseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err == nil && d < 0 {
		err = fmt.Errorf("negative duration")
	}
	return d, err
}
