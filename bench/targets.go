package main

// Berth's performance targets (throughput, manifest latency, listing,
// tagging, disk use and memory against the peers), checked against the
// figures of one run.

import (
	"fmt"
	"slices"
	"strings"
)

// TargetVerdict is one target and what the run showed.
type TargetVerdict struct {
	Target   string `json:"target"`
	Wanted   string `json:"wanted"`
	Measured string `json:"measured"`
	// Verdict is "met", "missed" or "not measured".
	Verdict string `json:"verdict"`
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "**missed**"
}

// rssLimitMiB is "under 100 MB" in MiB.
const rssLimitMiB = 100e6 / mib

// EvaluateTargets checks Berth's targets against res: ratios to
// distribution per figure, absolute bounds (HEAD p99, peak RSS), and
// whether Berth is ahead of each peer that ran on most workloads.
func EvaluateTargets(res *Results, servers []string) []TargetVerdict {
	var out []TargetVerdict
	hasDist := slices.Contains(servers, "distribution")
	ratioTarget := func(name, workload, prefix string, want float64) {
		if !hasDist {
			out = append(out, TargetVerdict{Target: name, Wanted: fmt.Sprintf(">= %.1fx distribution", want), Measured: "distribution did not run", Verdict: "not measured"})
			return
		}
		for _, f := range res.ByWorkload(workload) {
			if !strings.HasPrefix(f.Metric, prefix) {
				continue
			}
			a := f.Advantage("berth", "distribution")
			if a == 0 {
				out = append(out, TargetVerdict{Target: name + ": " + f.Metric, Wanted: fmt.Sprintf(">= %.1fx", want), Measured: "missing", Verdict: "not measured"})
				continue
			}
			out = append(out, TargetVerdict{
				Target:   name + ": " + f.Metric,
				Wanted:   fmt.Sprintf(">= %.1fx distribution", want),
				Measured: fmt.Sprintf("%.2fx (%s vs %s %s)", a, fmtVal(f.Values["berth"]), fmtVal(f.Values["distribution"]), f.Unit),
				Verdict:  verdict(a >= want),
			})
		}
	}
	ratioTarget("push throughput", "push-pull", "push", 1.5)
	ratioTarget("pull throughput", "push-pull", "pull", 1.2)
	ratioTarget("manifest HEAD rps", "manifest", "HEAD rps", 3)
	// p99 at the most clients measured (32 by default).
	var p99 *Figure
	for _, f := range res.ByWorkload("manifest") {
		if strings.HasPrefix(f.Metric, "HEAD p99") {
			p99 = f
		}
	}
	if p99 != nil {
		if v, ok := p99.Values["berth"]; ok {
			out = append(out, TargetVerdict{Target: "manifest " + p99.Metric, Wanted: "<= 5 ms", Measured: fmtVal(v) + " ms", Verdict: verdict(v <= 5)})
		}
	}
	ratioTarget("list tags", "tags", "list ", 5)
	ratioTarget("catalog", "catalog", "catalog of", 5)
	ratioTarget("tagging", "tags", "tag one manifest", 5)
	var many, one *Figure
	for _, f := range res.ByWorkload("tags") {
		switch {
		case strings.HasPrefix(f.Metric, "HEAD rps") && strings.Contains(f.Metric, ", 1-tag repo"):
			one = f
		case strings.HasPrefix(f.Metric, "HEAD rps"):
			many = f
		}
	}
	if many != nil && one != nil {
		for _, s := range []string{"berth", "berth-noenc"} {
			vm, ok1 := many.Values[s]
			vo, ok2 := one.Values[s]
			if ok1 && ok2 && vo > 0 {
				r := vm / vo
				out = append(out, TargetVerdict{Target: s + ": HEAD on a repository with many tags vs one tag", Wanted: "as fast (>= 0.9x, noise)", Measured: fmt.Sprintf("%.2fx (%s vs %s req/s)", r, fmtVal(vm), fmtVal(vo)), Verdict: verdict(r >= 0.9)})
			}
		}
	}
	// Berth's empty store holds fixed files (the disk-full ballast and
	// pebble's preallocated WAL): the verdict is on the growth, the raw
	// ratio is shown beside it.
	raw, grow := res.Get("dedupe", "bytes on disk"), res.Get("dedupe", "disk growth / distinct bytes")
	if raw != nil && grow != nil && hasDist {
		for _, s := range []string{"berth", "berth-noenc"} {
			vb, vd := raw.Values[s], raw.Values["distribution"]
			gb, gd := grow.Values[s], grow.Values["distribution"]
			if vb > 0 && vd > 0 && gb > 0 && gd > 0 {
				out = append(out, TargetVerdict{
					Target:   s + ": dedupe, bytes on disk (growth over an empty store)",
					Wanted:   "<= 0.8x distribution",
					Measured: fmt.Sprintf("%.2fx growth; raw %.2fx (%s vs %s MiB, Berth's empty store is %s MiB)", gb/gd, vb/vd, fmtVal(vb), fmtVal(vd), fmtVal(valueOr(res.Get("dedupe", "bytes on disk of an empty store"), s))),
					Verdict:  verdict(gb/gd <= 0.8),
				})
			}
		}
	}
	out = append(out, accessControlTargets(res)...)
	for _, peer := range []string{"distribution", "zot"} {
		out = append(out, aheadOf(res, servers, peer)...)
	}
	// The daemon (registryd serve, one fresh process per workload) and,
	// apart, the one-shot subcommands (gc, fsck, mount).
	for _, daemon := range []bool{true, false} {
		worst, where := 0.0, ""
		for _, f := range res.Figures {
			if !strings.Contains(f.Metric, "peak RSS") {
				continue
			}
			isDaemon := strings.HasPrefix(f.Metric, "peak RSS") && !strings.Contains(f.Metric, "registryd ")
			if isDaemon != daemon {
				continue
			}
			for _, s := range []string{"berth", "berth-noenc"} {
				if v, ok := f.Values[s]; ok && v > worst {
					worst, where = v, s+" in "+f.Workload+" ("+f.Metric+")"
				}
			}
		}
		if where == "" {
			continue
		}
		name := "peak RSS of registryd serve, every workload"
		if !daemon {
			name = "peak RSS of registryd gc, fsck, mount"
		}
		out = append(out, TargetVerdict{Target: name, Wanted: "< 100 MB (95.4 MiB)", Measured: fmt.Sprintf("worst %.1f MiB: %s", worst, where), Verdict: verdict(worst < rssLimitMiB)})
	}
	return out
}

func valueOr(f *Figure, server string) float64 {
	if f == nil {
		return 0
	}
	return f.Values[server]
}

// aheadOf is one verdict per workload that peer ran (is berth ahead on
// more than half of its figures?) and one over all of them (ahead on most
// workloads?).
func aheadOf(res *Results, servers []string, peer string) []TargetVerdict {
	const wanted = "ahead on most figures"
	if !slices.Contains(servers, peer) {
		return []TargetVerdict{{Target: "ahead of " + peer + " on most workloads", Wanted: "more than half of the workloads", Measured: peer + " did not run (see Peers)", Verdict: "not measured"}}
	}
	var order []string
	ahead, total := map[string]int{}, map[string]int{}
	behind := map[string][]string{}
	for _, f := range res.Figures {
		a := f.Advantage("berth", peer)
		if a == 0 || f.Metric == "bytes on disk of an empty store" {
			continue // the empty store is context for "bytes on disk", already counted
		}
		if total[f.Workload] == 0 {
			order = append(order, f.Workload)
		}
		total[f.Workload]++
		if a > 1 {
			ahead[f.Workload]++
		} else {
			behind[f.Workload] = append(behind[f.Workload], fmt.Sprintf("%s %.2fx", f.Metric, a))
		}
	}
	var out []TargetVerdict
	won := 0
	for _, w := range order {
		m := fmt.Sprintf("ahead on %d of %d figures", ahead[w], total[w])
		if len(behind[w]) > 0 {
			m += "; behind: " + strings.Join(behind[w], "; ")
		}
		ok := 2*ahead[w] > total[w]
		if ok {
			won++
		}
		out = append(out, TargetVerdict{Target: "ahead of " + peer + ": " + w, Wanted: wanted, Measured: m, Verdict: verdict(ok)})
	}
	if len(order) == 0 {
		return append(out, TargetVerdict{Target: "ahead of " + peer + " on most workloads", Wanted: "more than half of the workloads", Measured: "no figure of " + peer, Verdict: "not measured"})
	}
	return append(out, TargetVerdict{Target: "ahead of " + peer + " on most workloads", Wanted: "more than half of the workloads",
		Measured: fmt.Sprintf("ahead on %d of %d workloads", won, len(order)), Verdict: verdict(2*won > len(order))})
}

// accessControlMaxOverhead is what access control may cost a pull at 8
// clients: 5% more time per request than an open registry.
const accessControlMaxOverhead = 0.05

// loginTokenMaxShare is what a login-token request's authentication may
// cost now, as a share of what it cost before the identity work.
const loginTokenMaxShare = 0.01

// accessControlTargets checks the access-control workload (when it ran):
// manifest HEAD and blob GET at 8 clients with a password and with a
// login token cost at most 5% more time per request than with
// authentication off (the median of the rounds' paired ratios when the
// run has it, the totals' ratio otherwise), and a login-token request's
// authentication costs at most 1% of what it did.
func accessControlTargets(res *Results) []TargetVerdict {
	var out []TargetVerdict
	for _, op := range []string{"HEAD manifest", "GET small blob", "GET big blob"} {
		f := res.Get(AccessControlWorkload, op+" rps, 8 clients")
		if f == nil {
			continue
		}
		for _, side := range []string{ACPassword, ACToken} {
			t := TargetVerdict{
				Target: fmt.Sprintf("access control: %s at 8 clients, %s (identity policy of 20 statements, repository policy with conditions, audit log) vs auth off", op, side),
				Wanted: fmt.Sprintf("overhead <= %.0f%%", 100*accessControlMaxOverhead),
			}
			o, ok := overhead(f, ACOff, side)
			med, lo, hi := res.Get(AccessControlWorkload, acMedianMetric(op, 8)), res.Get(AccessControlWorkload, acMedianLowMetric(op, 8)), res.Get(AccessControlWorkload, acMedianHighMetric(op, 8))
			switch {
			case med != nil && lo != nil && hi != nil && hasValue(med, side):
				// The median of the rounds' paired ratios decides: the
				// totals' ratio is shown beside it.
				m := med.Values[side] / 100
				t.Measured = fmt.Sprintf("%s median of paired rounds (95%% CI %s to %s); totals %s (%s vs %s req/s)",
					fmtOverhead(m), fmtOverhead(lo.Values[side]/100), fmtOverhead(hi.Values[side]/100),
					fmtOverhead(o), fmtVal(f.Values[side]), fmtVal(f.Values[ACOff]))
				t.Verdict = verdict(m <= accessControlMaxOverhead)
			case !ok:
				t.Measured, t.Verdict = "missing", "not measured"
			default:
				t.Measured = fmt.Sprintf("%s (%s vs %s req/s)", fmtOverhead(o), fmtVal(f.Values[side]), fmtVal(f.Values[ACOff]))
				t.Verdict = verdict(o <= accessControlMaxOverhead)
			}
			out = append(out, t)
		}
	}
	before, now := res.Get(AccessControlWorkload, LoginTokenBefore), res.Get(AccessControlWorkload, LoginTokenNow)
	if before != nil && now != nil {
		vb, vn := before.Values[ACToken], now.Values[ACToken]
		if vb > 0 && vn > 0 {
			out = append(out, TargetVerdict{
				Target:   "login-token request: authentication now vs before the identity work (BenchmarkLoginTokenRequest)",
				Wanted:   fmt.Sprintf("<= %.0f%% of before", 100*loginTokenMaxShare),
				Measured: fmt.Sprintf("%.4f%% (%s vs %s µs)", 100*vn/vb, fmtVal(vn), fmtVal(vb)),
				Verdict:  verdict(vn/vb <= loginTokenMaxShare),
			})
		}
	}
	return out
}

// hasValue reports whether f has a value for c.
func hasValue(f *Figure, c string) bool {
	_, ok := f.Values[c]
	return ok
}
