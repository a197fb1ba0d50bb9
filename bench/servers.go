package main

// The servers under test: registryd (built from this tree, encryption on
// and off) and peer registries, each a child process on 127.0.0.1 with a
// data directory of its own, started fresh for every workload so that its
// peak resident memory (getrusage ru_maxrss of the child, the kernel's
// VmHWM at exit) belongs to that workload alone.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/registryd/server"
)

// ErrUnavailable reports a peer that cannot be had on this machine.
var ErrUnavailable = errors.New("bench: peer unavailable")

// Style is how a server binary is configured and started.
type Style string

// The configuration styles the harness knows.
const (
	StyleBerth        Style = "berth"
	StyleDistribution Style = "distribution"
	StyleZot          Style = "zot"
)

// Server is one registry the workloads run against.
type Server struct {
	// Name labels the server's figures ("berth", "berth-noenc", "distribution", "zot").
	Name string
	// Style is its configuration style.
	Style Style
	// Bin is its executable.
	Bin string
	// Args are extra flags (berth: --disable-encryption).
	Args []string
	// Env are extra environment variables (KEY=VALUE) of each of its
	// processes: the server, and for Berth its mount, gc and fsck.
	Env []string
	// Version describes the binary.
	Version string
	// InProcess serves Berth inside this process (for CPU profiles:
	// --profile); its RSS is not measured.
	InProcess bool
}

// IsBerth reports whether the server is a registryd.
func (s *Server) IsBerth() bool { return s.Style == StyleBerth }

// Running is a started server.
type Running struct {
	srv *Server
	cmd *exec.Cmd
	// URL is the server's base URL (http://127.0.0.1:port).
	URL string
	// Dir is its data directory.
	Dir string
	// Started is when the process was started.
	Started time.Time
	// Ready is the time from exec until GET /v2/ answered.
	Ready  time.Duration
	stderr *tailBuffer
	done   chan struct{}
	waitFn func() error
	cancel context.CancelFunc
}

// tailBuffer keeps the last bytes a process wrote (for error messages).
type tailBuffer struct {
	mu sync.Mutex
	b  []byte
}

// Write implements io.Writer, keeping the last 4–8 KiB.
func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > 8192 {
		t.b = append(t.b[:0], t.b[len(t.b)-4096:]...)
	}
	return len(p), nil
}

// String returns what was kept, trimmed.
func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(bytes.TrimSpace(t.b))
}

// freeAddr picks a free port on 127.0.0.1.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	return addr, ln.Close()
}

// command returns the command line that serves dir on addr, writing any
// configuration file into cfgDir.
func (s *Server) command(dir, cfgDir, addr string) ([]string, error) {
	switch s.Style {
	case StyleBerth:
		args := []string{s.Bin, "serve", "--addr", addr, "--data", dir, "--access-log=false", "--log-level", "warn"}
		return append(args, s.Args...), nil
	case StyleDistribution:
		cfg := fmt.Sprintf(`version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  cache:
    blobdescriptor: inmemory
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: %s
`, dir, addr)
		p := filepath.Join(cfgDir, "config.yml")
		if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
			return nil, err
		}
		return append([]string{s.Bin, "serve", p}, s.Args...), nil
	case StyleZot:
		// Comparable to distribution's: storage on local disk in the
		// workload's directory, dedupe on (zot's default), no gc while the
		// workload runs, no auth, loopback only. docker2s2 lets zot take
		// Docker media types beside OCI ones, as the others do.
		host, port, _ := net.SplitHostPort(addr)
		cfg := fmt.Sprintf(`{"distSpecVersion":"1.1.1","storage":{"rootDirectory":%q,"dedupe":true,"gc":false},`+
			`"http":{"address":%q,"port":%q,"compat":["docker2s2"]},"log":{"level":"error"}}`, dir, host, port)
		p := filepath.Join(cfgDir, "config.json")
		if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
			return nil, err
		}
		return append([]string{s.Bin, "serve", p}, s.Args...), nil
	}
	return nil, fmt.Errorf("%w: %s: unknown configuration style %q", ErrUnavailable, s.Name, s.Style)
}

// Start starts the server on a fresh port over dir (created if absent)
// and waits until GET /v2/ answers (at most a minute).
func (s *Server) Start(ctx context.Context, dir string) (*Running, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if s.InProcess {
		return s.startInProcess(dir)
	}
	cfgDir, err := os.MkdirTemp(filepath.Dir(dir), "cfg-")
	if err != nil {
		return nil, err
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	argv, err := s.command(dir, cfgDir, addr)
	if err != nil {
		return nil, err
	}
	r := &Running{srv: s, URL: "http://" + addr, Dir: dir, stderr: &tailBuffer{}, done: make(chan struct{})}
	r.cmd = exec.Command(argv[0], argv[1:]...)
	r.cmd.Stdout = r.stderr
	r.cmd.Stderr = r.stderr
	r.cmd.Env = append(append(os.Environ(), "OTEL_TRACES_EXPORTER=none", "OTEL_METRICS_EXPORTER=none", "OTEL_LOGS_EXPORTER=none", "OTEL_SDK_DISABLED=true"), s.Env...)
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	r.Started = time.Now()
	if err := r.cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: start: %w", s.Name, err)
	}
	var waitErr error
	go func() {
		waitErr = r.cmd.Wait()
		close(r.done)
	}()
	r.waitFn = func() error { <-r.done; return waitErr }
	c := NewClient(r.URL, 1)
	defer c.Close()
	deadline := time.Now().Add(time.Minute)
	for {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		err := c.Ping(pctx)
		cancel()
		if err == nil {
			r.Ready = time.Since(r.Started)
			return r, nil
		}
		select {
		case <-r.done:
			return nil, fmt.Errorf("%s exited before answering: %v: %s", s.Name, r.waitFn(), r.stderr.String())
		case <-ctx.Done():
			_, _ = r.Stop()
			return nil, ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_, _ = r.Stop()
			return nil, fmt.Errorf("%s did not answer GET /v2/ within a minute: %s", s.Name, r.stderr.String())
		}
	}
}

// inProcessConfig is the engine options and server configuration that
// registryd serve would take from args: the flags the workloads use
// (--disable-encryption, --no-audit, --htpasswd, --iam,
// --ecr-credentials); any other flag is an error, not ignored.
func inProcessConfig(args []string, logger *slog.Logger) (*engine.Options, server.Config, error) {
	eo := &engine.Options{CreateOnPush: true, Logger: logger}
	sc := server.Config{Logger: logger, DisableAccessLog: true}
	files := map[string]*string{"--htpasswd": &sc.HtpasswdFile, "--iam": &sc.IdentityFile, "--ecr-credentials": &sc.ECRCredentialsFile}
	for i := 0; i < len(args); i++ {
		name, value, hasValue := strings.Cut(args[i], "=")
		switch {
		case name == "--disable-encryption" && !hasValue:
			eo.DisableEncryption = true
		case name == "--no-audit" && !hasValue:
			eo.DisableAudit = true
		case files[name] != nil:
			if !hasValue {
				if i+1 >= len(args) {
					return nil, server.Config{}, fmt.Errorf("%s needs a file", name)
				}
				i++
				value = args[i]
			}
			*files[name] = value
		case name == "--auth-cache-ttl":
			if !hasValue {
				if i+1 >= len(args) {
					return nil, server.Config{}, fmt.Errorf("%s needs a duration", name)
				}
				i++
				value = args[i]
			}
			d, err := time.ParseDuration(value)
			if err != nil {
				return nil, server.Config{}, fmt.Errorf("%s: %w", name, err)
			}
			sc.AuthCacheTTL = d
		default:
			return nil, server.Config{}, fmt.Errorf("flag %q is not served in process (--profile)", args[i])
		}
	}
	return eo, sc, nil
}

// startInProcess opens the store and serves it from this process.
func (s *Server) startInProcess(dir string) (*Running, error) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	eo, sc, err := inProcessConfig(s.Args, quiet)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.Name, err)
	}
	eng, err := engine.Open(dir, eo)
	if err != nil {
		return nil, err
	}
	srv, err := server.New(eng, sc)
	if err != nil {
		_ = eng.Close()
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		_ = eng.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Running{srv: s, URL: "http://" + ln.Addr().String(), Dir: dir, Started: time.Now(), stderr: &tailBuffer{}, done: make(chan struct{}), cancel: cancel}
	var serveErr error
	go func() {
		serveErr = srv.Serve(ctx, ln)
		if err := eng.Close(); serveErr == nil {
			serveErr = err
		}
		close(r.done)
	}()
	r.waitFn = func() error { <-r.done; return serveErr }
	return r, nil
}

func procStatusBytes(pid int, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, field) {
			var kb int64
			if _, err := fmt.Sscanf(strings.TrimSpace(strings.TrimPrefix(line, field)), "%d kB", &kb); err == nil {
				return kb << 10
			}
		}
	}
	return 0
}

// CPUTime is the CPU time (user and system, all threads, those ended
// included) the server process has used so far, in the kernel's clock
// ticks (10 ms) from /proc/<pid>/stat; 0 for a server in this process or
// when it cannot be read.
func (r *Running) CPUTime() time.Duration {
	if r.cmd == nil || r.cmd.Process == nil {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", r.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// The command name (field 2) is in parentheses and may hold spaces:
	// count the fields after its closing one. utime and stime are
	// fields 14 and 15.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	var ut, st int64
	if _, err := fmt.Sscan(f[11], &ut); err != nil {
		return 0
	}
	if _, err := fmt.Sscan(f[12], &st); err != nil {
		return 0
	}
	return time.Duration(ut+st) * time.Second / clockTicks
}

// clockTicks is the kernel's USER_HZ (sysconf(_SC_CLK_TCK)), 100 on every
// Linux architecture Go supports.
const clockTicks = 100

// Stop ends the server (SIGTERM, then SIGKILL after 30 s) and returns its
// peak resident memory in bytes.
func (r *Running) Stop() (int64, error) {
	if r.cmd == nil {
		r.cancel()
		return 0, r.waitFn()
	}
	select {
	case <-r.done:
	default:
		// VmHWM, not getrusage's ru_maxrss: Go starts children with
		// clone(CLONE_VM) then exec, and the kernel records the parent's
		// (this harness's) RSS into the child's ru_maxrss at exec.
		hwm := procStatusBytes(r.cmd.Process.Pid, "VmHWM:")
		_ = r.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-r.done:
		case <-time.After(30 * time.Second):
			_ = r.cmd.Process.Kill()
			<-r.done
		}
		return hwm, nil
	}
	return 0, fmt.Errorf("%s had exited: %v: %s", r.srv.Name, r.waitFn(), r.stderr.String())
}

// Peer is what --peers asked for and what became of it.
type Peer struct {
	Name   string  `json:"name"`
	Status string  `json:"status"`
	Server *Server `json:"-"`
}

// styleFor infers a peer's configuration style from its name or binary.
func styleFor(name, bin string) (Style, bool) {
	s := strings.ToLower(name + " " + filepath.Base(bin))
	switch {
	case strings.Contains(s, "zot"):
		return StyleZot, true
	case strings.Contains(s, "distribution"), strings.Contains(s, "registry"):
		return StyleDistribution, true
	case strings.Contains(s, "berth"), strings.Contains(s, "registryd"):
		return StyleBerth, true
	}
	return "", false
}

// ResolvePeers turns the --peers list into servers, installing
// distribution when asked by name alone and locating zot (zotFlag, then
// BERTH_BENCH_ZOT, then the Go bin directory, then PATH) when asked by name
// alone. Peers that cannot be had are returned with their reason; zot, when
// not asked for, is reported as not run.
func ResolvePeers(ctx context.Context, spec, zotFlag string, logf func(string, ...any)) []Peer {
	var out []Peer
	sawZot := false
	for _, item := range strings.Split(spec, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, bin, hasBin := strings.Cut(item, "=")
		if strings.Contains(strings.ToLower(name), "zot") {
			sawZot = true
		}
		if !hasBin {
			switch name {
			case "distribution":
				srv, err := installDistribution(ctx, logf)
				if err != nil {
					out = append(out, Peer{Name: name, Status: "unavailable: " + err.Error()})
					continue
				}
				out = append(out, Peer{Name: name, Status: "ok: " + srv.Version, Server: srv})
			case "zot":
				p, from, err := LocateZot(ctx, zotFlag)
				if err != nil {
					out = append(out, Peer{Name: name, Status: "unavailable: " + err.Error()})
					continue
				}
				v := zotVersion(ctx, p)
				out = append(out, Peer{Name: name, Status: "ok: " + v + ", " + p + " (" + from + ")", Server: &Server{Name: name, Style: StyleZot, Bin: p, Version: v}})
			default:
				out = append(out, Peer{Name: name, Status: "unavailable: unknown peer; give it as name=/path/to/binary"})
			}
			continue
		}
		st, ok := styleFor(name, bin)
		if !ok {
			out = append(out, Peer{Name: name, Status: "unavailable: no known configuration style for " + bin + " (name it distribution* or zot*)"})
			continue
		}
		abs, err := exec.LookPath(bin)
		if err != nil {
			out = append(out, Peer{Name: name, Status: "unavailable: " + err.Error()})
			continue
		}
		v := abs
		if st == StyleZot {
			v = zotVersion(ctx, abs)
		}
		out = append(out, Peer{Name: name, Status: "ok: " + v + ", " + abs, Server: &Server{Name: name, Style: st, Bin: abs, Version: v}})
	}
	if !sawZot {
		out = append(out, Peer{Name: "zot", Status: "not run: not in --peers"})
	}
	return out
}

// ErrZotMissing reports that no zot binary was found.
var ErrZotMissing = errors.New("zot not found")

// ZotEnv names the environment variable holding the zot binary's path.
const ZotEnv = "BERTH_BENCH_ZOT"

// ZotBuildHelp is how to get a zot binary where the harness finds it (the
// README's section "Running zot as a peer" says the same). zot's source is
// not served by the Go module proxy this project uses.
const ZotBuildHelp = `build zot v2.1.20 from its source (README.md, "Running zot as a peer"):
  git clone --branch v2.1.20 --depth 1 https://github.com/project-zot/zot /tmp/zot-src
  cd /tmp/zot-src && CGO_ENABLED=0 go build -tags containers_image_openpgp -trimpath -o "$(go env GOPATH)/bin/zot" ./cmd/zot
then run go run ./bench again (or pass --zot PATH, or set ` + ZotEnv + `=PATH)`

// LocateZot finds the zot binary: flagPath (--zot) when given, else
// $BERTH_BENCH_ZOT, else zot in the Go bin directory ($(go env GOBIN), or
// $(go env GOPATH)/bin), else zot on PATH. It returns the path and where
// it came from.
func LocateZot(ctx context.Context, flagPath string) (string, string, error) {
	explicit := func(p, from string) (string, string, error) {
		abs, err := exec.LookPath(p)
		if err != nil {
			return "", "", fmt.Errorf("%w: %s=%s: %v", ErrZotMissing, from, p, err)
		}
		return abs, from, nil
	}
	if flagPath != "" {
		return explicit(flagPath, "--zot")
	}
	if p := os.Getenv(ZotEnv); p != "" {
		return explicit(p, ZotEnv)
	}
	looked := []string{"--zot", ZotEnv}
	if gobin, err := goBin(ctx); err == nil {
		p := filepath.Join(gobin, "zot")
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, "Go bin directory", nil
		}
		looked = append(looked, p)
	}
	if p, err := exec.LookPath("zot"); err == nil {
		return p, "PATH", nil
	}
	looked = append(looked, "PATH")
	return "", "", fmt.Errorf("%w (looked at %s); build it from its source: README.md, \"Running zot as a peer\"", ErrZotMissing, strings.Join(looked, ", "))
}

// zotVersion asks the binary for its version (zot -v logs one JSON line
// with the commit it was built from and its binary type).
func zotVersion(ctx context.Context, bin string) string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, _ := exec.CommandContext(ctx, bin, "-v").CombinedOutput()
	for _, line := range strings.Split(string(out), "\n") {
		var v struct {
			Message    string `json:"message"`
			Commit     string `json:"commit"`
			BinaryType string `json:"binary-type"`
			Spec       string `json:"distribution-spec"`
		}
		if json.Unmarshal([]byte(line), &v) != nil || v.Message != "version" {
			continue
		}
		s := "zot"
		if v.Commit != "" {
			s += " commit " + v.Commit[:min(12, len(v.Commit))]
		}
		if v.BinaryType != "" {
			s += " (" + v.BinaryType + ")"
		}
		return s
	}
	return "zot " + bin
}

const distModule = "github.com/distribution/distribution/v3"

// installDistribution finds the newest v3 the module proxy serves and
// installs its registry command (go install), unless GOBIN already holds
// that version.
func installDistribution(ctx context.Context, logf func(string, ...any)) (*Server, error) {
	out, err := exec.CommandContext(ctx, "go", "list", "-m", "-versions", distModule).Output()
	if err != nil {
		return nil, fmt.Errorf("go list -m -versions %s: %w", distModule, err)
	}
	fields := strings.Fields(string(out))
	version := ""
	for _, v := range fields[1:] {
		if strings.HasPrefix(v, "v3.") && !strings.Contains(v, "-") {
			version = v // go list sorts versions in semver order
		}
	}
	if version == "" {
		return nil, fmt.Errorf("the module proxy serves no v3 release of %s", distModule)
	}
	gobin, err := goBin(ctx)
	if err != nil {
		return nil, err
	}
	bin := filepath.Join(gobin, "registry")
	if v, err := exec.CommandContext(ctx, "go", "version", "-m", bin).Output(); err != nil || !strings.Contains(string(v), distModule+"\t"+version) {
		logf("installing %s/cmd/registry@%s (go install) ...", distModule, version)
		cmd := exec.CommandContext(ctx, "go", "install", distModule+"/cmd/registry@"+version)
		cmd.Dir = os.TempDir() // outside this module: its go.mod must not change
		if b, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("go install %s/cmd/registry@%s: %w: %s", distModule, version, err, lastLines(string(b), 3))
		}
	}
	return &Server{Name: "distribution", Style: StyleDistribution, Bin: bin, Version: "distribution " + version}, nil
}

func goBin(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOBIN", "GOPATH").Output()
	if err != nil {
		return "", fmt.Errorf("go env: %w", err)
	}
	lines := strings.Split(string(out), "\n") // GOBIN's line may be empty
	if len(lines) >= 1 && strings.TrimSpace(lines[0]) != "" {
		return strings.TrimSpace(lines[0]), nil
	}
	if len(lines) >= 2 {
		gp := strings.Split(strings.TrimSpace(lines[1]), string(os.PathListSeparator))[0]
		return filepath.Join(gp, "bin"), nil
	}
	return "", errors.New("go env: no GOBIN or GOPATH")
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// BuildBerth builds registryd from the module at root into dir.
func BuildBerth(ctx context.Context, root, dir string) (string, error) {
	bin := filepath.Join(dir, "registryd")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./registryd")
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./registryd: %w: %s", err, lastLines(string(b), 5))
	}
	return bin, nil
}
