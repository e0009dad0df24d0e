package repast_test

// The tests run against a real `repast serve` with a real redis-server behind it, both
// started here on free 127.0.0.1 ports: the repo's venv python (REPAST_PYTHON, else
// <repo>/.venv/bin/python) writes the feature repo of clients/testdata/repo.py, `repast
// apply` registers it and the client itself materializes it.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	repast "github.com/repast-dev/repast/clients/go"
)

const authToken = "client-test-token" // clients/testdata/repo.py's AUTH_TOKEN

var env struct {
	root, python, repo string
	redis              *redisServer
	server, authServer *serveProcess
}

func TestMain(m *testing.M) {
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "client tests: setup failed:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	var err error
	if env.root, err = repoRoot(); err != nil {
		return 0, err
	}
	env.python = os.Getenv("REPAST_PYTHON")
	if env.python == "" {
		env.python = filepath.Join(env.root, ".venv", "bin", "python")
	}
	if _, err := os.Stat(env.python); err != nil {
		return 0, fmt.Errorf("no python at %s (run `make build-dev`, or set REPAST_PYTHON): %w", env.python, err)
	}
	tmp, err := os.MkdirTemp("", "repast-go-client-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(tmp)
	if env.redis, err = startRedis(tmp); err != nil {
		return 0, err
	}
	defer env.redis.stop()
	env.repo = filepath.Join(tmp, "repo")
	script := filepath.Join(env.root, "clients", "testdata", "repo.py")
	if out, err := exec.Command(env.python, script, "write", env.repo, env.redis.addr).CombinedOutput(); err != nil {
		return 0, fmt.Errorf("repo.py write: %v\n%s", err, out)
	}
	if out, err := exec.Command(repastCLI(), "-c", env.repo, "apply").CombinedOutput(); err != nil {
		return 0, fmt.Errorf("repast apply: %v\n%s", err, out)
	}
	if env.server, err = startServe(tmp, "feature_store.yaml"); err != nil {
		return 0, err
	}
	defer env.server.stop()
	if env.authServer, err = startServe(tmp, "auth.yaml"); err != nil {
		return 0, err
	}
	defer env.authServer.stop()
	if err := materializeAll(context.Background()); err != nil {
		return 0, fmt.Errorf("materialize: %w", err)
	}
	defer stopSDK()
	return m.Run(), nil
}

func materializeAll(ctx context.Context) error {
	c, err := repast.New(env.server.url)
	if err != nil {
		return err
	}
	return c.Materialize(ctx, repast.MaterializeRequest{
		Start:        time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC),
		End:          time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC),
		FeatureViews: []string{"all_types", "wide"},
	})
}

func repoRoot() (string, error) {
	if root := os.Getenv("REPAST_ROOT"); root != "" {
		return filepath.Abs(root)
	}
	return filepath.Abs(filepath.Join("..", "..")) // clients/go
}

// command runs the servers on REPAST_SERVER_CPUS (a taskset list) when it is set, so a
// benchmark can keep them and the client on different CPUs.
func command(name string, args ...string) *exec.Cmd {
	if cpus := os.Getenv("REPAST_SERVER_CPUS"); cpus != "" {
		return exec.Command("taskset", append([]string{"-c", cpus, name}, args...)...)
	}
	return exec.Command(name, args...)
}

func repastCLI() string { return filepath.Join(filepath.Dir(env.python), "repast") }

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

type redisServer struct {
	addr, dir string
	port      int
	cmd       *exec.Cmd
}

func startRedis(tmp string) (*redisServer, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	r := &redisServer{addr: "127.0.0.1:" + strconv.Itoa(port), dir: filepath.Join(tmp, "redis"), port: port}
	if err := os.MkdirAll(r.dir, 0o755); err != nil {
		return nil, err
	}
	return r, r.start()
}

func (r *redisServer) start() error {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return fmt.Errorf("redis-server not on PATH (Debian: apt-get install redis-server): %w", err)
	}
	log, err := os.OpenFile(filepath.Join(r.dir, "redis.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	r.cmd = command(bin, "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", r.dir)
	r.cmd.Stdout, r.cmd.Stderr = log, log
	if err := r.cmd.Start(); err != nil {
		return err
	}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if conn, err := net.DialTimeout("tcp", r.addr, time.Second); err == nil {
			_, _ = conn.Write([]byte("PING\r\n"))
			line, _ := bufio.NewReader(conn).ReadString('\n')
			conn.Close()
			if strings.HasPrefix(line, "+PONG") {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("redis-server on %s did not answer PING; see %s/redis.log", r.addr, r.dir)
}

func (r *redisServer) stop() {
	if r.cmd != nil && r.cmd.Process != nil {
		_ = r.cmd.Process.Kill()
		_ = r.cmd.Wait()
		r.cmd = nil
	}
}

type serveProcess struct {
	url, log string
	cmd      *exec.Cmd
	exited   chan struct{}
}

func startServe(tmp, yaml string) (*serveProcess, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	p := &serveProcess{url: "http://127.0.0.1:" + strconv.Itoa(port), log: filepath.Join(tmp, "serve-"+yaml+".log")}
	log, err := os.Create(p.log)
	if err != nil {
		return nil, err
	}
	p.cmd = command(repastCLI(), "-c", env.repo, "-f", filepath.Join(env.repo, yaml), "serve",
		"-h", "127.0.0.1", "-p", strconv.Itoa(port), "--no-access-log")
	p.cmd.Stdout, p.cmd.Stderr = log, log
	// Its own process group, so stop() reaches any worker it forks.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	p.exited = make(chan struct{})
	exited := p.exited
	go func() { _ = p.cmd.Wait(); close(exited) }()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			text, _ := os.ReadFile(p.log)
			return nil, fmt.Errorf("repast serve exited:\n%s", text)
		default:
		}
		if resp, err := http.Get(p.url + "/health"); err == nil {
			resp.Body.Close()
			return p, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	p.stop()
	text, _ := os.ReadFile(p.log)
	return nil, fmt.Errorf("repast serve did not answer in 60 s:\n%s", text)
}

func (p *serveProcess) stop() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(20 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.exited
	}
}

// oracle is clients/testdata/repo.py's `expect` output: what the Python SDK returns.
type oracle struct {
	FeatureNames []string `json:"feature_names"`
	Columns      []struct {
		Values            []json.RawMessage `json:"values"`
		Statuses          []string          `json:"statuses"`
		EventTimestampsUS []int64           `json:"event_timestamps_us"`
	} `json:"columns"`
}

// sdk is one `repo.py expect` process for the whole run (importing the SDK takes seconds),
// asked one request per line.
var sdk struct {
	sync.Mutex
	cmd    *exec.Cmd
	in     io.WriteCloser
	out    *bufio.Reader
	stderr bytes.Buffer
}

func sdkExpect(t testing.TB, request map[string]any) oracle {
	t.Helper()
	raw, err := json.Marshal(request)
	if err != nil {
		t.Fatal(err)
	}
	sdk.Lock()
	defer sdk.Unlock()
	if sdk.cmd == nil {
		sdk.cmd = exec.Command(env.python, filepath.Join(env.root, "clients", "testdata", "repo.py"), "expect", env.repo)
		sdk.cmd.Stderr = &sdk.stderr
		if sdk.in, err = sdk.cmd.StdinPipe(); err != nil {
			t.Fatal(err)
		}
		stdout, err := sdk.cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		sdk.out = bufio.NewReader(stdout)
		if err := sdk.cmd.Start(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := sdk.in.Write(append(raw, '\n')); err != nil {
		t.Fatalf("repo.py expect: %v\n%s", err, sdk.stderr.String())
	}
	line, err := sdk.out.ReadBytes('\n')
	if err != nil {
		t.Fatalf("repo.py expect: %v\n%s", err, sdk.stderr.String())
	}
	var o oracle
	if err := json.Unmarshal(line, &o); err != nil {
		t.Fatalf("repo.py expect printed %q: %v", line, err)
	}
	return o
}

func stopSDK() {
	if sdk.cmd != nil {
		sdk.in.Close()
		_ = sdk.cmd.Wait()
	}
}

func newClient(t testing.TB, opts ...repast.Option) *repast.Client {
	t.Helper()
	c, err := repast.New(env.server.url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdleConnections)
	return c
}
