package main

import (
	"bufio"
	"debug/elf"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// buildStatic builds the binary the way the Dockerfile does, less
// -trimpath: that flag alone would recompile the whole standard library on
// a fresh machine (about 20 s) and changes nothing this test checks.
func buildStatic(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary; skipped with -short")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH")
	}
	bin := filepath.Join(t.TempDir(), "wxlogin")
	cmd := exec.Command(goTool, "build", "-ldflags=-s -w -X main.buildVersion=v0.0.0-test", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestStaticBinary checks what the distroless image relies on: a binary
// with no dynamic loader or shared libraries, that runs with an empty
// environment, reports its version, and exits 0 on SIGTERM.
func TestStaticBinary(t *testing.T) {
	t.Parallel()
	bin := buildStatic(t)
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("the binary has a dynamic interpreter (PT_INTERP): it is not static")
		}
	}
	if libs, err := f.ImportedLibraries(); err != nil || len(libs) > 0 {
		t.Errorf("the binary needs shared libraries %v (%v)", libs, err)
	}

	out, err := exec.Command(bin, "-version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "v0.0.0-test") {
		t.Errorf("wxlogin -version = %q, %v; want the version given at link time", out, err)
	}

	cmd := exec.Command(bin, "-mock")
	cmd.Env = []string{"ADDR=127.0.0.1:0"} // nothing else: as in a scratch image
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := listeningRE.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
				if strings.Contains(sc.Text(), "v0.0.0-test") {
					addr <- "versioned"
				}
			}
		}
		close(addr)
	}()
	var a string
	select {
	case a = <-addr:
	case <-time.After(10 * time.Second):
		t.Fatal("the binary did not log that it listens within 10s")
	}
	if <-addr != "versioned" {
		t.Errorf("the startup log line does not carry the version")
	}
	resp, err := http.Get("http://" + a + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /healthz on the static binary: %v", err)
	}
	resp.Body.Close()
	hc := exec.Command(bin, "-healthcheck")
	hc.Env = []string{"WX_MOCK=1", "ADDR=" + a}
	if out, err := hc.CombinedOutput(); err != nil {
		t.Errorf("wxlogin -healthcheck: %v\n%s", err, out)
	}

	cmd.Process.Signal(syscall.SIGTERM)
	go io.Copy(io.Discard, stderr)
	if err := cmd.Wait(); err != nil {
		t.Errorf("after SIGTERM the binary exited with %v, want status 0", err)
	}
}

// TestDockerfile checks the Dockerfile keeps SPEC §6's promises, and that
// the README's docker lines match it. (No Docker engine runs here.)
func TestDockerfile(t *testing.T) {
	t.Parallel()
	df := readFile(t, "Dockerfile")
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "main.buildVersion", "AS build",
		"USER 65532:65532", "EXPOSE 2020", `HEALTHCHECK`, `"/wxlogin", "-healthcheck"`, "distroless/static"} {
		if !strings.Contains(df, want) {
			t.Errorf("the Dockerfile lacks %q", want)
		}
	}
	ignore := readFile(t, ".dockerignore")
	if !strings.Contains(ignore, "!*.go") || !strings.Contains(ignore, "!go.mod") {
		t.Errorf(".dockerignore does not let go.mod and *.go in")
	}

	// The README's docker lines: the image they run is the one they build,
	// the port they publish is the one exposed, and every -e is a setting
	// of the configuration table.
	for _, readme := range []string{"README.md", "README.zh-CN.md"} {
		text := readFile(t, readme)
		build := regexp.MustCompile(`docker build -t (\S+) `).FindStringSubmatch(text)
		if build == nil {
			t.Errorf("%s has no docker build -t line", readme)
			continue
		}
		runs := regexp.MustCompile(`(?m)^docker run .*$`).FindAllString(text, -1)
		if len(runs) == 0 {
			t.Errorf("%s has no docker run line", readme)
		}
		for _, run := range runs {
			if strings.Contains(run, " -genkey") {
				continue // a one-shot command, not a server
			}
			if !strings.Contains(run, "-p 2020:2020") && !strings.Contains(run, ":2020 ") {
				t.Errorf("%s: %q does not publish the exposed port 2020", readme, run)
			}
			if !strings.HasSuffix(strings.TrimSpace(run), " "+build[1]) && !strings.Contains(run, " "+build[1]+" ") {
				t.Errorf("%s: %q does not run the image built as %s", readme, run, build[1])
			}
			for _, m := range regexp.MustCompile(`-e ([A-Z_]+)`).FindAllStringSubmatch(run, -1) {
				if !regexp.MustCompile("(?m)^\\|[^|]*`" + m[1] + "`").MatchString(text) {
					t.Errorf("%s: %q sets %s, which the configuration table does not list", readme, run, m[1])
				}
			}
		}
	}
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestKubernetesManifest checks what makes the pod start under the
// restricted Pod Security Standard, that applying it never overwrites a
// Secret, and that a rolling update drains first. The structure is read
// with PyYAML where some python3 has it; the text checks run everywhere.
func TestKubernetesManifest(t *testing.T) {
	t.Parallel()
	text := readFile(t, "deploy/kubernetes.yaml")
	for _, bad := range []string{"kind: Secret", "stringData", "\ndata:"} {
		if strings.Contains(text, bad) {
			t.Errorf("the manifest contains %q: applying it would overwrite real secrets", bad)
		}
	}
	var py string
	for _, p := range []string{"python3", "/usr/bin/python3"} {
		if exec.Command(p, "-c", "import yaml").Run() == nil {
			py = p
			break
		}
	}
	if py == "" {
		t.Skip("SKIP structure: no python3 with PyYAML (Debian python3-yaml); text checks passed")
	}
	out, err := exec.Command(py, "-c", "import sys, json, yaml; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))", "deploy/kubernetes.yaml").Output()
	if err != nil {
		t.Fatalf("the manifest is not YAML: %v", err)
	}
	var docs []map[string]any
	if err := json.Unmarshal(out, &docs); err != nil {
		t.Fatal(err)
	}
	get := func(v any, path ...string) any {
		for _, p := range path {
			m, _ := v.(map[string]any)
			v = m[p]
		}
		return v
	}
	var pod map[string]any
	for _, d := range docs {
		if d["kind"] == "Deployment" {
			pod, _ = get(d, "spec", "template", "spec").(map[string]any)
		}
	}
	if pod == nil {
		t.Fatal("no Deployment")
	}
	sc := get(pod, "securityContext")
	if get(sc, "runAsNonRoot") != true || get(sc, "runAsUser") != 65532.0 || get(sc, "seccompProfile", "type") != "RuntimeDefault" {
		t.Errorf("pod securityContext = %v", sc)
	}
	c := get(pod, "containers").([]any)[0]
	csc := get(c, "securityContext")
	if get(csc, "allowPrivilegeEscalation") != false || get(csc, "readOnlyRootFilesystem") != true ||
		fmt.Sprint(get(csc, "capabilities", "drop")) != "[ALL]" {
		t.Errorf("container securityContext = %v", csc)
	}
	env := map[string]string{}
	for _, e := range get(c, "env").([]any) {
		env[get(e, "name").(string)], _ = get(e, "value").(string)
	}
	drain, err1 := time.ParseDuration(env["DRAIN_DELAY"])
	shutdown, err2 := time.ParseDuration(env["SHUTDOWN_TIMEOUT"])
	grace := time.Duration(get(pod, "terminationGracePeriodSeconds").(float64)) * time.Second
	if err1 != nil || err2 != nil || drain <= 0 || grace < drain+shutdown+5*time.Second {
		t.Errorf("DRAIN_DELAY %q, SHUTDOWN_TIMEOUT %q, terminationGracePeriodSeconds %v: the grace period must cover both", env["DRAIN_DELAY"], env["SHUTDOWN_TIMEOUT"], grace)
	}
	for name := range env {
		var cfg Config
		found := false
		for _, s := range settings(&cfg, map[string]string{}) {
			found = found || s.env == name
		}
		if !found {
			t.Errorf("the manifest sets %s, which is no setting", name)
		}
	}
}
