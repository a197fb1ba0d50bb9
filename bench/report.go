package main

// Figures, the machine's description, and the outputs: a terminal table,
// results.json, one SVG chart per workload and the RESULTS.md section.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
)

// Figure is one measured quantity for every server that ran it.
type Figure struct {
	Workload string `json:"workload"`
	Metric   string `json:"metric"`
	Unit     string `json:"unit"`
	// Higher is true when a larger value is better.
	Higher bool `json:"higherIsBetter"`
	// Values maps a server name to its figure.
	Values map[string]float64 `json:"values"`
}

// Results collects figures and notes, safe for concurrent use.
type Results struct {
	mu      sync.Mutex
	Figures []*Figure           `json:"figures"`
	Notes   map[string][]string `json:"notes"`
	idx     map[string]*Figure
}

// NewResults returns an empty collection.
func NewResults() *Results {
	return &Results{Notes: map[string][]string{}, idx: map[string]*Figure{}}
}

// reindex rebuilds the lookup table after decoding from JSON.
func (r *Results) reindex() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.idx = map[string]*Figure{}
	if r.Notes == nil {
		r.Notes = map[string][]string{}
	}
	for _, f := range r.Figures {
		r.idx[f.Workload+"\x00"+f.Metric] = f
	}
}

// Add records v for server under workload and metric.
func (r *Results) Add(workload, metric, unit string, higher bool, server string, v float64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := workload + "\x00" + metric
	f := r.idx[k]
	if f == nil {
		f = &Figure{Workload: workload, Metric: metric, Unit: unit, Higher: higher, Values: map[string]float64{}}
		r.idx[k] = f
		r.Figures = append(r.Figures, f)
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		v = 0
	}
	f.Values[server] = v
}

// Note adds a remark to a workload.
func (r *Results) Note(workload, note string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Notes[workload] = append(r.Notes[workload], note)
}

// Get returns a figure (nil if absent).
func (r *Results) Get(workload, metric string) *Figure {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.idx[workload+"\x00"+metric]
}

// ByWorkload returns the figures of one workload in the order they came.
func (r *Results) ByWorkload(w string) []*Figure {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*Figure
	for _, f := range r.Figures {
		if f.Workload == w {
			out = append(out, f)
		}
	}
	return out
}

// Advantage is how many times better a is than b for f (>1: a is better);
// 0 when either is missing or zero.
func (f *Figure) Advantage(a, b string) float64 {
	va, oka := f.Values[a]
	vb, okb := f.Values[b]
	if !oka || !okb || va <= 0 || vb <= 0 {
		return 0
	}
	if f.Higher {
		return va / vb
	}
	return vb / va
}

// Machine describes where the run happened.
type Machine struct {
	CPU       string   `json:"cpu"`
	Cores     int      `json:"cores"`
	MemTotal  string   `json:"memTotal"`
	Kernel    string   `json:"kernel"`
	Go        string   `json:"go"`
	LoadStart string   `json:"loadAverageAtStart"`
	LoadEnd   string   `json:"loadAverageAtEnd"`
	Commit    string   `json:"commit"`
	Started   string   `json:"started"`
	Duration  string   `json:"duration"`
	Args      []string `json:"args"`
}

func firstLineWith(path, prefix string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, prefix) {
			if _, v, ok := strings.Cut(line, ":"); ok {
				return strings.TrimSpace(v)
			}
		}
	}
	return ""
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// DescribeMachine reads the CPU model, cores, kernel and Go version.
func DescribeMachine(root string) Machine {
	m := Machine{
		CPU:       firstLineWith("/proc/cpuinfo", "model name"),
		Cores:     runtime.NumCPU(),
		MemTotal:  memTotal(),
		Go:        runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH,
		LoadStart: loadAvg(),
		Started:   time.Now().UTC().Format(time.RFC3339),
		Args:      os.Args[1:],
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if out, err := exec.Command("git", "-C", root, "rev-parse", "--short", "HEAD").Output(); err == nil {
		m.Commit = strings.TrimSpace(string(out))
		if st, err := exec.Command("git", "-C", root, "status", "--porcelain").Output(); err == nil && len(bytes.TrimSpace(st)) > 0 {
			m.Commit += " (plus uncommitted changes)"
		}
	}
	return m
}

// Report is everything results.json holds.
type Report struct {
	Machine Machine           `json:"machine"`
	Params  Params            `json:"params"`
	Servers []string          `json:"servers"`
	Peers   []Peer            `json:"peers"`
	Results *Results          `json:"results"`
	Targets []TargetVerdict   `json:"targets"`
	Titles  map[string]string `json:"workloadTitles"`
	// Columns are the own columns of the workloads that have them
	// (Workload.Columns): configurations of registryd, the first the
	// baseline of the others.
	Columns map[string][]string `json:"workloadColumns,omitempty"`
	// Runs are the runs that measured the workloads merged in from an
	// earlier results.json (--merge); Machine's run measured the others.
	Runs map[string]Machine `json:"workloadRuns,omitempty"`
}

// ownColumns returns the own columns of workload w that hold a figure
// (the first is the baseline), or nil when w's columns are the run's
// servers.
func (rep *Report) ownColumns(w string) []string {
	declared := rep.Columns[w]
	if len(declared) == 0 {
		return nil
	}
	figs := rep.Results.ByWorkload(w)
	var out []string
	for _, c := range declared {
		for _, f := range figs {
			if _, ok := f.Values[c]; ok {
				out = append(out, c)
				break
			}
		}
	}
	return out
}

// columnsOf is the value columns of workload w: its own, or the run's
// servers.
func (rep *Report) columnsOf(w string) []string {
	if own := rep.ownColumns(w); len(own) > 0 {
		return own
	}
	return rep.Servers
}

// overhead is what column c costs over the baseline for f: the baseline's
// advantage over c, minus one (0.05: 5% more time per request, or 5%
// higher latency or CPU). ok is false when either is missing.
func overhead(f *Figure, baseline, c string) (float64, bool) {
	a := f.Advantage(baseline, c)
	if a == 0 {
		return 0, false
	}
	return a - 1, true
}

// fmtOverhead prints an overhead as a signed percentage.
func fmtOverhead(v float64) string { return fmt.Sprintf("%+.1f%%", 100*v) }

// fmtVal prints a figure with sensible precision.
func fmtVal(v float64) string {
	switch a := math.Abs(v); {
	case a == 0:
		return "0"
	case a >= 1000:
		return commas(int64(math.Round(v)))
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	case a >= 1:
		return fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.3f", v)
	}
}

func commas(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// references are the peers Berth's ratios are taken against, in the
// order the columns show them: distribution, then zot, when they ran.
func references(servers []string) []string {
	var out []string
	for _, r := range []string{"distribution", "zot"} {
		if slices.Contains(servers, r) {
			out = append(out, r)
		}
	}
	return out
}

// WriteTable prints every figure as a table: one for the workloads
// whose columns are the run's servers, and one for each workload with
// columns of its own.
func WriteTable(w io.Writer, rep *Report) {
	var own []string
	for _, f := range rep.Results.Figures {
		if len(rep.ownColumns(f.Workload)) > 0 && !slices.Contains(own, f.Workload) {
			own = append(own, f.Workload)
		}
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', tabwriter.AlignRight)
	refs := references(rep.Servers)
	hdr := []string{"workload", "metric", "unit"}
	hdr = append(hdr, rep.Servers...)
	for _, ref := range refs {
		hdr = append(hdr, "vs "+ref)
	}
	fmt.Fprintln(tw, strings.Join(hdr, "\t")+"\t")
	for _, f := range rep.Results.Figures {
		if slices.Contains(own, f.Workload) {
			continue
		}
		row := []string{f.Workload, f.Metric, f.Unit}
		for _, s := range rep.Servers {
			if v, ok := f.Values[s]; ok {
				row = append(row, fmtVal(v))
			} else {
				row = append(row, "-")
			}
		}
		for _, ref := range refs {
			if a := f.Advantage("berth", ref); a > 0 {
				row = append(row, fmt.Sprintf("%.2fx", a))
			} else {
				row = append(row, "-")
			}
		}
		fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
	}
	_ = tw.Flush()
	for _, wl := range own {
		cols := rep.ownColumns(wl)
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', tabwriter.AlignRight)
		hdr := append([]string{wl, "unit"}, cols...)
		for _, c := range cols[1:] {
			hdr = append(hdr, c+" vs "+cols[0])
		}
		fmt.Fprintln(tw, strings.Join(hdr, "\t")+"\t")
		for _, f := range rep.Results.ByWorkload(wl) {
			row := []string{f.Metric, f.Unit}
			for _, c := range cols {
				if v, ok := f.Values[c]; ok {
					row = append(row, fmtVal(v))
				} else {
					row = append(row, "-")
				}
			}
			for _, c := range cols[1:] {
				if o, ok := overhead(f, cols[0], c); ok {
					row = append(row, fmtOverhead(o))
				} else {
					row = append(row, "-")
				}
			}
			fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
		}
		_ = tw.Flush()
	}
}

var palette = []string{"#1f77b4", "#aec7e8", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd"}

// WriteSVG draws one panel per metric of workload w: a horizontal bar per
// server, scaled to that metric's largest value.
func WriteSVG(path string, rep *Report, w string) error {
	figs := rep.Results.ByWorkload(w)
	if len(figs) == 0 {
		return nil
	}
	const width, labelW, barH, gap = 760, 200, 16, 4
	cols := rep.columnsOf(w)
	var b strings.Builder
	y := 40
	var body strings.Builder
	for _, f := range figs {
		maxV := 0.0
		n := 0
		for _, s := range cols {
			if v, ok := f.Values[s]; ok {
				maxV = max(maxV, v)
				n++
			}
		}
		if n == 0 {
			continue
		}
		better := "lower is better"
		if f.Higher {
			better = "higher is better"
		}
		fmt.Fprintf(&body, `<text x="10" y="%d" font-weight="bold">%s (%s, %s)</text>`+"\n", y, html.EscapeString(f.Metric), html.EscapeString(f.Unit), better)
		y += 8
		for i, s := range cols {
			v, ok := f.Values[s]
			if !ok {
				continue
			}
			bw := 0.0
			if maxV > 0 {
				bw = v / maxV * float64(width-labelW-110)
			}
			fmt.Fprintf(&body, `<text x="%d" y="%d" text-anchor="end">%s</text>`, labelW-8, y+barH-4, html.EscapeString(s))
			fmt.Fprintf(&body, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"/>`, labelW, y, bw, barH, palette[i%len(palette)])
			fmt.Fprintf(&body, `<text x="%.1f" y="%d">%s</text>`+"\n", float64(labelW)+bw+6, y+barH-4, fmtVal(v))
			y += barH + gap
		}
		y += 22
	}
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", width, y)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/><text x="10" y="20" font-size="15" font-weight="bold">%s</text>`+"\n", html.EscapeString(rep.Titles[w]))
	b.WriteString(body.String())
	b.WriteString("</svg>\n")
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// WriteJSON writes results.json.
func WriteJSON(path string, rep *Report) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// SectionHeading starts the part of RESULTS.md this program owns.
const SectionHeading = "## Registry workloads (go run ./bench)"

// ReplaceSection puts section (which starts with SectionHeading) into
// doc: in place of an existing one (up to the next "## " heading or the
// end), or appended at the end. Other sections are left byte for byte.
func ReplaceSection(doc, section string) string {
	section = strings.TrimRight(section, "\n") + "\n"
	i := strings.Index(doc, SectionHeading+"\n")
	if i < 0 {
		if doc != "" && !strings.HasSuffix(doc, "\n") {
			doc += "\n"
		}
		if doc != "" {
			doc += "\n"
		}
		return doc + section
	}
	rest := doc[i+len(SectionHeading)+1:]
	end := len(doc)
	if j := strings.Index(rest, "\n## "); j >= 0 {
		end = i + len(SectionHeading) + 1 + j + 1
		return doc[:i] + section + "\n" + doc[end:]
	}
	return doc[:i] + section
}

// Markdown renders the RESULTS.md section. chartDir is the charts'
// directory relative to RESULTS.md.
func Markdown(rep *Report, chartDir string, extra string) string {
	var b strings.Builder
	refs := references(rep.Servers)
	m := rep.Machine
	fmt.Fprintf(&b, "%s\n\n", SectionHeading)
	fmt.Fprintf(&b, "Generated by `%s` (%s, %s). Re-run the same command to repeat it; `go run ./bench --help` lists the flags.\n\n",
		strings.TrimSpace("go run ./bench "+strings.Join(m.Args, " ")), m.Started, m.Duration)
	if len(rep.Runs) > 0 {
		var merged []string
		for w := range rep.Runs {
			merged = append(merged, w)
		}
		slices.Sort(merged)
		fmt.Fprintf(&b, "The workloads %s come from earlier runs (`--merge`), each named in its section; the table below describes the machine and load of this run, which measured the others.\n\n", strings.Join(merged, ", "))
	}
	fmt.Fprintf(&b, "| | |\n|---|---|\n| CPU | %s, %d cores, %s |\n| kernel | %s |\n| Go | %s |\n| code | %s |\n| load average (1, 5, 15 min) | %s at start, %s at end |\n| servers | %s |\n\n",
		m.CPU, m.Cores, m.MemTotal, m.Kernel, m.Go, m.Commit, m.LoadStart, m.LoadEnd, strings.Join(rep.Servers, ", "))
	b.WriteString("Peers:\n\n")
	for _, p := range rep.Peers {
		fmt.Fprintf(&b, "- **%s**: %s\n", p.Name, p.Status)
	}
	b.WriteString("\nClient and servers share the same two cores: every figure includes the load generator's own CPU. ")
	b.WriteString("`berth` is registryd with envelope encryption (the default), `berth-noenc` with `--disable-encryption`. ")
	if len(refs) > 0 {
		b.WriteString("*vs distribution* and *vs zot* are Berth's advantage over that peer in this run: `berth`'s figure divided by the peer's when higher is better, the inverse when lower is better (above 1: Berth is ahead).\n\n")
	} else {
		b.WriteString("\n\n")
	}
	if extra != "" {
		b.WriteString(extra)
		b.WriteString("\n\n")
	}
	if len(rep.Targets) > 0 {
		b.WriteString("### Targets: throughput, latency, listing, disk and memory goals against the peers\n\n| target | wanted | measured | verdict |\n|---|---|---|---|\n")
		for _, t := range rep.Targets {
			fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", t.Target, t.Wanted, t.Measured, t.Verdict)
		}
		b.WriteString("\n")
	}
	var order []string
	seen := map[string]bool{}
	for _, f := range rep.Results.Figures {
		if !seen[f.Workload] {
			seen[f.Workload] = true
			order = append(order, f.Workload)
		}
	}
	for _, w := range order {
		fmt.Fprintf(&b, "### %s: %s\n\n", w, rep.Titles[w])
		if r, ok := rep.Runs[w]; ok {
			fmt.Fprintf(&b, "Measured by an earlier run, `%s` (%s, %s), commit %s, load average %s at start and %s at end; merged with `--merge`.\n\n",
				strings.TrimSpace("go run ./bench "+strings.Join(r.Args, " ")), r.Started, r.Duration, r.Commit, r.LoadStart, r.LoadEnd)
		}
		for _, n := range rep.Results.Notes[w] {
			fmt.Fprintf(&b, "- %s\n", n)
		}
		if len(rep.Results.Notes[w]) > 0 {
			b.WriteString("\n")
		}
		cols, own := rep.columnsOf(w), rep.ownColumns(w)
		hdr := "| metric | unit |"
		sep := "|---|---|"
		for _, s := range cols {
			hdr += " " + s + " |"
			sep += "---:|"
		}
		if len(own) > 0 {
			for _, c := range own[1:] {
				hdr += " " + c + " vs " + own[0] + " |"
				sep += "---:|"
			}
		} else {
			for _, ref := range refs {
				hdr += " vs " + ref + " |"
				sep += "---:|"
			}
		}
		fmt.Fprintf(&b, "%s\n%s\n", hdr, sep)
		for _, f := range rep.Results.ByWorkload(w) {
			row := fmt.Sprintf("| %s | %s |", f.Metric, f.Unit)
			for _, s := range cols {
				if v, ok := f.Values[s]; ok {
					row += " " + fmtVal(v) + " |"
				} else {
					row += " – |"
				}
			}
			if len(own) > 0 {
				for _, c := range own[1:] {
					if o, ok := overhead(f, own[0], c); ok {
						row += " " + fmtOverhead(o) + " |"
					} else {
						row += " – |"
					}
				}
			} else {
				for _, ref := range refs {
					if a := f.Advantage("berth", ref); a > 0 {
						row += fmt.Sprintf(" %.2fx |", a)
					} else {
						row += " – |"
					}
				}
			}
			b.WriteString(row + "\n")
		}
		fmt.Fprintf(&b, "\n![%s](%s)\n\n", w, filepath.ToSlash(filepath.Join(chartDir, w+".svg")))
	}
	return b.String()
}

// memTotal is MemTotal from /proc/meminfo in GiB.
func memTotal() string {
	var kb int64
	if _, err := fmt.Sscanf(firstLineWith("/proc/meminfo", "MemTotal"), "%d kB", &kb); err != nil || kb == 0 {
		return ""
	}
	return fmt.Sprintf("%.1f GiB RAM", float64(kb)/(1<<20))
}
