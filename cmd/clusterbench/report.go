package main

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// streak is how many consecutive normal sync successes count as recovered.
const streak = 20

type report struct {
	calls      []*call
	faults     []*fault
	start, end time.Time
}

// print writes the request tallies and the fault table; it returns false when
// an invariant failed: an accepted async job did not reach a terminal status,
// or a call got no HTTP answer within the client timeout.
func (r report) print(late map[string]int) bool {
	var syncC, asyncC []*call
	for _, k := range r.calls {
		if k.async {
			asyncC = append(asyncC, k)
		} else {
			syncC = append(syncC, k)
		}
	}
	sort.Slice(syncC, func(i, j int) bool { return syncC[i].sent.Before(syncC[j].sent) })
	ok := true

	fmt.Printf("\nrequests (POST /api/tools/execute through haproxy):\n")
	fmt.Printf("  sync : %d sent; %s\n", len(syncC), tally(syncC))
	printJobIDs("sync 503", syncC, gotSvc503)
	printJobIDs("sync 504", syncC, gotSvc504)
	if len(late) > 0 {
		fmt.Printf("         jobs of the 504s, followed with GET /api/jobs afterwards: %s\n", counts(late))
		if n := len(syncC504(syncC)) - late["succeeded"] - late["failed"]; n > 0 {
			fmt.Printf("         WARNING: %d job(s) a 504 called \"still queued\" never finished (see the backlog below)\n", n)
		}
	}
	fmt.Printf("  async: %d submitted; %s\n", len(asyncC), tally(asyncC))
	finals := map[string]int{}
	var lost []string
	for _, k := range asyncC {
		if k.class != gotResult {
			continue
		}
		finals[k.final]++
		if !terminal(k.final) {
			lost = append(lost, k.jobID+" ("+orNone(k.final)+")")
		}
	}
	fmt.Printf("         accepted jobs by final status: %s\n", counts(finals))
	unanswered := 0
	for _, k := range r.calls {
		if k.class == gotNoAnswer {
			unanswered++
		}
	}
	fmt.Printf("  lost: %d accepted async jobs never terminal, %d calls without an HTTP answer within the client timeout\n",
		len(lost), unanswered)
	for i, l := range lost {
		if i == 5 {
			fmt.Printf("         ... and %d more\n", len(lost)-5)
			break
		}
		fmt.Println("         lost job", l)
	}
	if len(lost) > 0 || unanswered > 0 {
		ok = false
	}

	normal := r.normal(syncC)
	fmt.Printf("\nrecovery after each fault: sync calls in send order from the fault to the next step; recovered once\n"+
		"every call answers with a result within %s (3x the p99 before the first fault, at least 500 ms), %d in a\n"+
		"row; the time is from the fault until the first of them was answered:\n", ms(normal), streak)
	for i, f := range r.faults {
		wEnd := r.end
		if i+1 < len(r.faults) {
			wEnd = r.faults[i+1].at
		}
		rec := "NOT recovered before the next step"
		if d, found := recovery(syncC, f.at, wEnd, normal); found {
			rec = fmt.Sprintf("recovered in %5.2fs", d.Seconds())
		}
		var bad []*call
		var worst time.Duration
		for _, k := range r.calls {
			if !k.done.Before(f.at) && k.done.Before(wEnd) {
				worst = max(worst, k.latency())
				if k.class != gotResult {
					bad = append(bad, k)
				}
			}
		}
		fmt.Printf("  +%5.1fs %-40s %s; answered until the next step: %d not ok (%s), slowest %s\n",
			f.at.Sub(r.start).Seconds(), trim(f.name, 40), rec, len(bad), tallyShort(bad), ms(worst))
	}
	return ok
}

// normal is 3x the p99 of sync successes before the first fault (at least
// 500 ms): a slower answer does not count towards recovery.
func (r report) normal(syncC []*call) time.Duration {
	first := r.end
	if len(r.faults) > 0 {
		first = r.faults[0].at
	}
	var lat []time.Duration
	for _, k := range syncC {
		if k.class == gotResult && k.done.Before(first) {
			lat = append(lat, k.latency())
		}
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	return max(3*pct(lat, 99), 500*time.Millisecond)
}

// recovery looks at the sync calls (sorted by send time) still running at
// fault f or sent after it and before wEnd. A call is bad when it got no
// result or took longer than normal. Recovery is when the first good call
// after the last bad one was answered, relative to f, provided streak good
// calls follow; with no bad call at all it is when the first good call was
// answered (a stall without errors still counts).
func recovery(syncC []*call, f, wEnd time.Time, normal time.Duration) (time.Duration, bool) {
	var window []*call
	for _, k := range syncC {
		if k.done.Before(f) {
			continue
		}
		if k.sent.After(wEnd) {
			break
		}
		if k.done.Before(wEnd) { // a call the next step hit is that step's
			window = append(window, k)
		}
	}
	from := 0
	for i, k := range window {
		if k.class != gotResult || k.latency() > normal {
			from = i + 1
		}
	}
	if len(window)-from < streak {
		return 0, false
	}
	return max(0, window[from].done.Sub(f)), true
}

func syncC504(cs []*call) []*call {
	var out []*call
	for _, k := range cs {
		if k.class == gotSvc504 && k.jobID != "" {
			out = append(out, k)
		}
	}
	return out
}

func tally(cs []*call) string {
	var n [numClasses]int
	for _, k := range cs {
		n[k.class]++
	}
	var parts []string
	for i, c := range n {
		if c > 0 || class(i) == gotResult || class(i) == gotNoAnswer {
			parts = append(parts, fmt.Sprintf("%s %d", classNames[i], c))
		}
	}
	return strings.Join(parts, ", ")
}

func tallyShort(cs []*call) string {
	if len(cs) == 0 {
		return "-"
	}
	m := map[string]int{}
	for _, k := range cs {
		kind := "sync"
		if k.async {
			kind = "async"
		}
		m[fmt.Sprintf("%s %d", kind, k.status)]++
	}
	return counts(m)
}

func printJobIDs(what string, cs []*call, cl class) {
	var ids []string
	none := 0
	for _, k := range cs {
		switch {
		case k.class != cl:
		case k.jobID == "":
			none++
		default:
			ids = append(ids, k.jobID)
		}
	}
	if none > 0 {
		fmt.Printf("         %s: %d without a job id (nothing was queued)\n", what, none)
	}
	if len(ids) == 0 {
		return
	}
	more := ""
	if len(ids) > 4 {
		more = fmt.Sprintf(" (+%d more)", len(ids)-4)
		ids = ids[:4]
	}
	fmt.Printf("         %s job ids: %s%s\n", what, strings.Join(ids, " "), more)
}

func counts(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", orNone(k), m[k]))
	}
	return strings.Join(parts, ", ")
}

func orNone(s string) string {
	if s == "" {
		return "no status seen"
	}
	return s
}

func trim(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}
