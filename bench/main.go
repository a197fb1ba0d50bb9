// Command bench runs registry workloads against Berth's registryd and
// peer registries (CNCF distribution, zot) started side by side on this
// machine, and reports the figures and their ratios measured in one run.
//
//	go run ./bench                     # full run: writes bench/results.json, bench/charts/, bench/RESULTS.md
//	go run ./bench --quick             # under two minutes, output in a temporary directory
//	go run ./bench --quick --peers=    # CI smoke: Berth alone
//
// Every server is a child process on 127.0.0.1 with a directory of its
// own, started fresh for each workload and stopped after it.
package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 || n > 1024 {
			return nil, fmt.Errorf("bad client count %q (1..1024)", f)
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no client counts in %q", s)
	}
	return out, nil
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("run go run ./bench inside the berth module")
	}
	return filepath.Dir(gomod), nil
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var names []string
	for _, w := range Workloads {
		names = append(names, w.Name)
	}
	var (
		workloads   = fs.String("workloads", strings.Join(names, ","), "comma-separated workloads: "+strings.Join(names, ", "))
		quick       = fs.Bool("quick", false, "small sizes: the whole run in under two minutes; output in a temporary directory unless --out is given")
		size        = fs.Int("size", 0, "size of the big image in MiB (default 110; --quick 16)")
		conc        = fs.String("concurrency", "1,8,32", "client counts")
		peers       = fs.String("peers", "distribution,zot", "peer registries, comma-separated: distribution (installed with go install), zot (found with --zot, $"+ZotEnv+", the Go bin directory or PATH), NAME=/path/to/binary (style from NAME: distribution*, zot*); empty: Berth alone")
		zotBin      = fs.String("zot", "", "the zot binary (default: $"+ZotEnv+", else zot in $(go env GOPATH)/bin, else on PATH); README.md, 'Running zot as a peer', says how to build it")
		out         = fs.String("out", "", "output directory for results.json and charts/ (default: bench/ in the module; --quick: a temporary directory)")
		resultsMD   = fs.String("results-md", "", "RESULTS.md whose section '"+SectionHeading+"' is rewritten (default: bench/RESULTS.md for a full run with the default --out, none for --quick; 'none' to skip)")
		seed        = fs.Uint64("seed", 1, "seed of the generated data")
		tags        = fs.Int("tags", 0, "tags put on one manifest and listed (default 10000; --quick 500)")
		repos       = fs.Int("repos", 0, "repositories in the catalog workload (default 10000; --quick 500)")
		coldN       = fs.Int("manifests", 0, "manifests in the cold-start and gc store (default 100000; --quick 5000)")
		dur         = fs.Duration("duration", 0, "duration of each HEAD/GET measurement (default 3s; --quick 300ms)")
		keep        = fs.Bool("keep", false, "keep the work directory (server data) after the run")
		noEncPeer   = fs.Bool("berth-noenc", true, "also run registryd with --disable-encryption")
		variants    = &variantList{}
		extraNoteMD = fs.String("notes", defaultNotes(), "a Markdown file whose text is put into the RESULTS.md section (analysis, profiles); default bench/notes.md when it exists")
		render      = fs.String("render", "", "render only: read this results.json and rewrite the charts and the RESULTS.md section (with --notes); runs nothing")
		merge       = fs.Bool("merge", false, "keep the workloads this run does not measure from the results.json already in --out (their figures, notes and the run that measured them): a run of some workloads adds to a full run instead of replacing it")
		profile     = fs.String("profile", "", "profile mode: serve Berth inside this process (no peers) and write DIR/cpu.pprof, DIR/top.txt (go tool pprof -top) and DIR/heap.pprof")
	)
	fs.Var(variants, "berth-variant", "also run registryd with other serve flags or environment, as NAME=WORDS (space-separated flags and KEY=VALUE variables; NAME starts with berth-), repeatable: e.g. 'berth-mem80=GOMEMLIMIT=80MiB'")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "bench: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	cs, err := parseInts(*conc)
	if err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 2
	}
	p := Params{BigMiB: 110, SmallN: 48, SmallKiB: 3072, Conc: cs, Dur: 3 * time.Second, Tags: 10000, Repos: 10000,
		DedupeN: 40, DedupeKiB: 12 << 10, ColdManifests: 100000, ListRepeat: 5}
	if *quick {
		p = Params{BigMiB: 16, SmallN: 12, SmallKiB: 768, Conc: cs, Dur: 300 * time.Millisecond, Tags: 500, Repos: 500,
			DedupeN: 10, DedupeKiB: 2 << 10, ColdManifests: 5000, ListRepeat: 3, Quick: true}
	}
	setIf := func(dst *int, v int) {
		if v > 0 {
			*dst = v
		}
	}
	setIf(&p.BigMiB, *size)
	setIf(&p.Tags, *tags)
	setIf(&p.Repos, *repos)
	setIf(&p.ColdManifests, *coldN)
	if *dur > 0 {
		p.Dur = *dur
	}
	var selected []Workload
	for _, n := range strings.Split(*workloads, ",") {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		i := slices.IndexFunc(Workloads, func(w Workload) bool { return w.Name == n })
		if i < 0 {
			fmt.Fprintf(stderr, "bench: unknown workload %q (have %s)\n", n, strings.Join(names, ", "))
			return 2
		}
		selected = append(selected, Workloads[i])
	}

	if *render != "" {
		return renderOnly(*render, *out, *resultsMD, *extraNoteMD, stderr)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	logf := func(format string, a ...any) {
		fmt.Fprintf(stdout, "[%6.1fs] %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, a...))
	}
	root, err := moduleRoot()
	if err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 1
	}
	if *out == "" {
		if *quick {
			*out = filepath.Join(os.TempDir(), "berth-bench-quick")
		} else {
			*out = filepath.Join(root, "bench")
			if *resultsMD == "" {
				*resultsMD = filepath.Join(root, "bench", "RESULTS.md")
			}
		}
	}
	if *resultsMD == "none" {
		*resultsMD = ""
	}
	machine := DescribeMachine(root)
	work, err := os.MkdirTemp("", "berth-bench-")
	if err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 1
	}
	if !*keep {
		defer os.RemoveAll(work)
	} else {
		logf("work directory: %s (kept)", work)
	}

	logf("building registryd ...")
	bin, err := BuildBerth(ctx, root, work)
	if err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 1
	}
	servers := []*Server{{Name: "berth", Style: StyleBerth, Bin: bin, Version: "registryd " + machine.Commit}}
	if *profile != "" {
		servers[0].InProcess = true
		*noEncPeer = false
		*peers = ""
		*resultsMD = ""
		if err := os.MkdirAll(*profile, 0o755); err != nil {
			fmt.Fprintln(stderr, "bench:", err)
			return 1
		}
	}
	if *noEncPeer {
		servers = append(servers, &Server{Name: "berth-noenc", Style: StyleBerth, Bin: bin, Args: []string{"--disable-encryption"}, Version: "registryd --disable-encryption"})
	}
	for _, v := range variants.list {
		servers = append(servers, &Server{Name: v.name, Style: StyleBerth, Bin: bin, Args: v.args, Env: v.env, Version: strings.TrimSpace(strings.Join(v.env, " ") + " registryd " + strings.Join(v.args, " "))})
	}
	resolved := ResolvePeers(ctx, *peers, *zotBin, logf)
	zotMissing := false
	for _, pe := range resolved {
		logf("peer %s: %s", pe.Name, pe.Status)
		if pe.Server != nil {
			servers = append(servers, pe.Server)
		}
		if pe.Name == "zot" && strings.Contains(pe.Status, ErrZotMissing.Error()) {
			zotMissing = true
		}
	}
	if zotMissing && !*quick {
		logf("zot will not be measured: %s", ZotBuildHelp)
	}
	var names2 []string
	for _, s := range servers {
		names2 = append(names2, s.Name)
	}
	b := &Bench{P: p, Gen: NewGen(*seed), Servers: servers, Work: work, Res: NewResults(), Logf: logf, ProfileDir: *profile}
	titles := map[string]string{}
	columns := map[string][]string{}
	for _, w := range Workloads {
		titles[w.Name] = w.Title
		if len(w.Columns) > 0 {
			columns[w.Name] = w.Columns
		}
	}
	for _, w := range selected {
		if ctx.Err() != nil {
			break
		}
		logf("workload %s: %s", w.Name, w.Title)
		if err := w.Run(b, ctx); err != nil {
			logf("workload %s failed: %v", w.Name, err)
			b.Res.Note(w.Name, "failed: "+err.Error())
			b.Failed++
		}
	}
	machine.LoadEnd = loadAvg()
	machine.Duration = time.Since(start).Round(time.Second).String()
	rep := &Report{Machine: machine, Params: p, Servers: names2, Peers: resolved, Results: b.Res, Titles: titles, Columns: columns}
	rep.Targets = EvaluateTargets(b.Res, names2)

	fmt.Fprintln(stdout)
	WriteTable(stdout, rep)
	fmt.Fprintln(stdout)
	for _, t := range rep.Targets {
		fmt.Fprintf(stdout, "target %-60s %-28s %s\n", t.Target, t.Measured, strings.Trim(t.Verdict, "*"))
	}
	for _, pe := range resolved {
		if pe.Server == nil {
			fmt.Fprintf(stdout, "peer %s not run: %s\n", pe.Name, pe.Status)
		}
	}
	for _, w := range selected {
		for _, n := range b.Res.Notes[w.Name] {
			if strings.Contains(n, "not run") || strings.Contains(n, "failed") {
				fmt.Fprintf(stdout, "%s: %s\n", w.Name, n)
			}
		}
	}
	if zotMissing {
		if *quick {
			fmt.Fprintln(stdout, "zot was absent: Berth was measured against distribution only (the figures for zot are in bench/RESULTS.md)")
		} else {
			fmt.Fprintf(stdout, "zot was absent, so it was not measured; to measure it, %s\n", ZotBuildHelp)
		}
	}
	if *merge {
		old, err := readReport(filepath.Join(*out, "results.json"))
		switch {
		case err == nil:
			mergeReport(rep, old)
			rep.Targets = EvaluateTargets(rep.Results, rep.Servers)
		case errors.Is(err, os.ErrNotExist):
		default:
			fmt.Fprintln(stderr, "bench: --merge:", err)
			return 1
		}
	}
	if err := writeOutputs(rep, *out, *resultsMD, *extraNoteMD); err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 1
	}
	logf("results: %s", filepath.Join(*out, "results.json"))
	if *resultsMD != "" {
		logf("section %q written to %s", SectionHeading, *resultsMD)
	}
	if ctx.Err() != nil {
		fmt.Fprintln(stderr, "bench: interrupted")
		return 1
	}
	if b.Failed > 0 {
		fmt.Fprintf(stderr, "bench: %d Berth failure(s); see the notes above\n", b.Failed)
		return 1
	}
	return 0
}

// variantList is the --berth-variant flag: more registryd servers, each
// with flags or environment variables of its own.
type variantList struct {
	list []variant
}

// variant is one --berth-variant.
type variant struct {
	name string
	args []string
	env  []string
}

// envWord is a KEY=VALUE word of a variant (an environment variable).
var envWord = regexp.MustCompile(`^[A-Z_][A-Z0-9_]*=`)

// String implements flag.Value.
func (v *variantList) String() string {
	var out []string
	for _, x := range v.list {
		out = append(out, x.name+"="+strings.Join(append(append([]string{}, x.env...), x.args...), " "))
	}
	return strings.Join(out, ",")
}

// Set implements flag.Value: NAME=WORDS.
func (v *variantList) Set(s string) error {
	name, words, ok := strings.Cut(s, "=")
	name = strings.TrimSpace(name)
	if !ok || !strings.HasPrefix(name, "berth-") || name == "berth-noenc" || strings.ContainsAny(name, " ,") {
		return fmt.Errorf("want NAME=WORDS with NAME starting with berth- (not berth-noenc), got %q", s)
	}
	for _, x := range v.list {
		if x.name == name {
			return fmt.Errorf("variant %s given twice", name)
		}
	}
	x := variant{name: name}
	for _, w := range strings.Fields(words) {
		if envWord.MatchString(w) {
			x.env = append(x.env, w)
		} else {
			x.args = append(x.args, w)
		}
	}
	v.list = append(v.list, x)
	return nil
}

func writeOutputs(rep *Report, out, resultsMD, notesFile string) error {
	charts := filepath.Join(out, "charts")
	if err := os.MkdirAll(charts, 0o755); err != nil {
		return err
	}
	if err := WriteJSON(filepath.Join(out, "results.json"), rep); err != nil {
		return err
	}
	for w := range rep.Titles {
		if err := WriteSVG(filepath.Join(charts, w+".svg"), rep, w); err != nil {
			return err
		}
	}
	if resultsMD == "" {
		return nil
	}
	extra := ""
	if notesFile != "" {
		b, err := os.ReadFile(notesFile)
		if err != nil {
			return err
		}
		extra = strings.TrimSpace(string(b))
	}
	rel, err := filepath.Rel(filepath.Dir(resultsMD), charts)
	if err != nil {
		rel = charts
	}
	doc, err := os.ReadFile(resultsMD)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	// Re-read right before writing: another engineer edits the other
	// sections of the same file.
	updated := ReplaceSection(string(doc), Markdown(rep, rel, extra))
	return os.WriteFile(resultsMD, []byte(updated), 0o644)
}

// profileStart starts a CPU profile of one workload's session when
// --profile is set; the function it returns stops it and writes
// cpu-<workload>.pprof and its summaries (top-<workload>.txt, flat and
// cumulative).
func (b *Bench) profileStart(workload string) func() {
	if b.ProfileDir == "" {
		return func() {}
	}
	cpu := filepath.Join(b.ProfileDir, "cpu-"+workload+".pprof")
	f, err := os.Create(cpu)
	if err != nil {
		b.Logf("profile: %v", err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		b.Logf("profile: %v", err)
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
		var sum []byte
		for _, args := range [][]string{{"-top", "-nodecount=35"}, {"-top", "-cum", "-nodecount=70"}} {
			out, err := exec.Command("go", append(append([]string{"tool", "pprof"}, args...), cpu)...).CombinedOutput()
			if err != nil {
				b.Logf("profile summary: %v", err)
			}
			sum = append(append(sum, out...), '\n')
		}
		txt := filepath.Join(b.ProfileDir, "top-"+workload+".txt")
		if err := os.WriteFile(txt, sum, 0o644); err != nil {
			b.Logf("profile: %v", err)
		}
		b.Logf("profile: %s, summary %s", cpu, txt)
	}
}

// readReport reads a results.json written by an earlier run.
func readReport(path string) (*Report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	rep := &Report{Results: NewResults()}
	if err := json.Unmarshal(b, rep); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	rep.Results.reindex()
	for _, w := range Workloads {
		if _, ok := rep.Columns[w.Name]; !ok && len(w.Columns) > 0 {
			if rep.Columns == nil {
				rep.Columns = map[string][]string{}
			}
			rep.Columns[w.Name] = w.Columns
		}
	}
	if rep.Titles == nil {
		rep.Titles = map[string]string{}
	}
	return rep, nil
}

// renderOnly rewrites the charts and the RESULTS.md section from a
// results.json written by an earlier run.
func renderOnly(path, out, resultsMD, notes string, stderr io.Writer) int {
	rep, err := readReport(path)
	if err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 1
	}
	rep.Targets = EvaluateTargets(rep.Results, rep.Servers)
	if out == "" {
		out = filepath.Dir(path)
	}
	if resultsMD == "" {
		resultsMD = filepath.Join(out, "RESULTS.md")
	}
	if resultsMD == "none" {
		resultsMD = ""
	}
	if err := writeOutputs(rep, out, resultsMD, notes); err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 1
	}
	return 0
}

// defaultNotes is bench/notes.md, the analysis kept beside the results,
// when the harness runs from the repository's top.
func defaultNotes() string {
	const p = "bench/notes.md"
	if _, err := os.Stat(p); err == nil {
		return p
	}
	return ""
}

// mergeReport adds to rep what old holds of the workloads rep did not
// measure: their figures and notes, each workload's title and columns,
// and the run that measured it (Report.Runs); the servers and peers they
// name. Figures follow the order of Workloads.
func mergeReport(rep, old *Report) {
	ran := map[string]bool{}
	for _, f := range rep.Results.Figures {
		ran[f.Workload] = true
	}
	for w := range rep.Results.Notes {
		ran[w] = true
	}
	kept := map[string]bool{}
	for _, f := range old.Results.Figures {
		if !ran[f.Workload] {
			rep.Results.Figures = append(rep.Results.Figures, f)
			kept[f.Workload] = true
		}
	}
	for w, notes := range old.Results.Notes {
		if !ran[w] {
			rep.Results.Notes[w] = notes
			kept[w] = true
		}
	}
	for w := range kept {
		if rep.Runs == nil {
			rep.Runs = map[string]Machine{}
		}
		m, ok := old.Runs[w]
		if !ok {
			m = old.Machine
		}
		rep.Runs[w] = m
		if t, ok := old.Titles[w]; ok && rep.Titles[w] == "" {
			rep.Titles[w] = t
		}
		if c, ok := old.Columns[w]; ok && len(rep.Columns[w]) == 0 {
			if rep.Columns == nil {
				rep.Columns = map[string][]string{}
			}
			rep.Columns[w] = c
		}
	}
	for _, s := range old.Servers {
		if !slices.Contains(rep.Servers, s) {
			rep.Servers = append(rep.Servers, s)
		}
	}
	// The earlier run's peers in its order (the status of the run that ran
	// a peer), then this run's others.
	var peers []Peer
	for _, p := range old.Peers {
		if i := slices.IndexFunc(rep.Peers, func(q Peer) bool { return q.Name == p.Name }); i >= 0 &&
			(strings.HasPrefix(rep.Peers[i].Status, "ok") || !strings.HasPrefix(p.Status, "ok")) {
			p = rep.Peers[i]
		}
		peers = append(peers, p)
	}
	for _, q := range rep.Peers {
		if !slices.ContainsFunc(peers, func(p Peer) bool { return p.Name == q.Name }) {
			peers = append(peers, q)
		}
	}
	rep.Peers = peers
	order := map[string]int{}
	for i, w := range Workloads {
		order[w.Name] = i
	}
	slices.SortStableFunc(rep.Results.Figures, func(a, b *Figure) int { return cmp.Compare(order[a.Workload], order[b.Workload]) })
	rep.Results.reindex()
}
