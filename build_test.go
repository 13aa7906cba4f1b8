package main

import (
	"bufio"
	"debug/elf"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// dockerPattern is one line of .dockerignore.
type dockerPattern struct {
	re      *regexp.Regexp
	exclude bool // false: a "!" line, which lets paths back in
}

// dockerIgnore reads .dockerignore as Docker does: a pattern is a path
// glob relative to the context ("*" and "?" within one path element, "**"
// across them), and it matches a path or any directory above it; the last
// matching line decides.
func dockerIgnore(t *testing.T) []dockerPattern {
	t.Helper()
	return parseDockerIgnore(readFile(t, ".dockerignore"))
}

func parseDockerIgnore(text string) []dockerPattern {
	var ps []dockerPattern
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		p := dockerPattern{exclude: true}
		if rest, ok := strings.CutPrefix(line, "!"); ok {
			line, p.exclude = strings.TrimSpace(rest), false
		}
		line = strings.TrimPrefix(path.Clean("/"+line), "/")
		var re strings.Builder
		re.WriteString("^")
		for i := 0; i < len(line); i++ {
			switch c := line[i]; {
			case strings.HasPrefix(line[i:], "**/"):
				re.WriteString("(.*/)?")
				i += 2
			case strings.HasPrefix(line[i:], "**"):
				re.WriteString(".*")
				i++
			case c == '*':
				re.WriteString("[^/]*")
			case c == '?':
				re.WriteString("[^/]")
			default:
				re.WriteString(regexp.QuoteMeta(string(c)))
			}
		}
		re.WriteString("$")
		p.re = regexp.MustCompile(re.String())
		ps = append(ps, p)
	}
	return ps
}

// inDockerContext reports whether .dockerignore lets the file p (slash
// separated, relative to the repository) into the build context.
func inDockerContext(ps []dockerPattern, p string) bool {
	in := true
	for _, pat := range ps {
		for q := p; q != "."; q = path.Dir(q) {
			if pat.re.MatchString(q) {
				in = !pat.exclude
				break
			}
		}
	}
	return in
}

// dockerBuildTree is what the Dockerfile's build stage has under its
// WORKDIR when it runs go build: the files of the build context (the
// repository less what ignore leaves out) that its COPY lines copy, as
// destination → source, both relative paths.
func dockerBuildTree(t *testing.T, ignore []dockerPattern) map[string]string {
	t.Helper()
	var context []string // files, slash separated
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == ".git" {
			return fs.SkipDir
		}
		if !d.IsDir() && d.Name() != ".git" && inDockerContext(ignore, filepath.ToSlash(p)) {
			context = append(context, filepath.ToSlash(p))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// The build stage: from the first FROM to the next one, continuation
	// lines joined.
	text := strings.ReplaceAll(readFile(t, "Dockerfile"), "\\\n", " ")
	tree := map[string]string{}
	workdir, stage := "/", 0
	for _, line := range strings.Split(text, "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		switch strings.ToUpper(fields[0]) {
		case "FROM":
			stage++
		case "WORKDIR":
			workdir = path.Join(workdir, fields[1])
		case "COPY", "ADD":
			if stage != 1 {
				continue
			}
			var args []string
			from := false
			for _, f := range fields[1:] {
				if strings.HasPrefix(f, "--") {
					from = from || strings.HasPrefix(f, "--from")
					continue
				}
				args = append(args, f)
			}
			if from || len(args) < 2 {
				continue
			}
			dest := args[len(args)-1]
			dir := strings.HasSuffix(dest, "/") || len(args) > 2
			rel, ok := strings.CutPrefix(path.Join(workdir, dest)+"/", strings.TrimSuffix(workdir, "/")+"/")
			if !ok {
				continue // outside WORKDIR: not part of the build
			}
			rel = strings.TrimSuffix(rel, "/")
			dir = dir || rel == ""
			for _, src := range args[:len(args)-1] {
				src = strings.TrimPrefix(path.Clean("/"+src), "/")
				for _, f := range context {
					switch matched, _ := path.Match(src, f); {
					case src == "": // the whole context
						tree[path.Join(rel, f)] = f
					case matched && dir:
						tree[path.Join(rel, path.Base(f))] = f
					case matched:
						tree[rel] = f
					default:
						// A directory copies its contents.
						for d := path.Dir(f); d != "."; d = path.Dir(d) {
							if m, _ := path.Match(src, d); m {
								tree[path.Join(rel, strings.TrimPrefix(f, d+"/"))] = f
								break
							}
						}
					}
				}
			}
		}
	}
	return tree
}

// buildFiles are the files go build reads for the wxlogin binary: go.mod
// and every non-test Go file of the module's packages it imports.
func buildFiles(t *testing.T) []string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH")
	}
	out, err := exec.Command(goTool, "list", "-deps", "-f", `{{if not .Standard}}{{.Dir}}{{range .GoFiles}} {{.}}{{end}}{{range .EmbedFiles}} {{.}}{{end}}{{end}}`, ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	root, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	files := []string{"go.mod"}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		dir, err := filepath.Rel(root, fields[0])
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fields[1:] {
			files = append(files, filepath.ToSlash(filepath.Join(dir, f)))
		}
	}
	sort.Strings(files)
	return files
}

// buildStatic builds the binary from exactly what the Dockerfile copies
// into its build stage, the way it does, less -trimpath: that flag alone
// would recompile the whole standard library on a fresh machine (about
// 20 s) and changes nothing this test checks. A file the Dockerfile or
// .dockerignore leaves out fails the build here as it would in docker.
func buildStatic(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary; skipped with -short")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH")
	}
	src := t.TempDir()
	for dest, from := range dockerBuildTree(t, dockerIgnore(t)) {
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(src, filepath.FromSlash(dest))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(t.TempDir(), "wxlogin")
	cmd := exec.Command(goTool, "build", "-ldflags=-s -w -X main.buildVersion=v0.0.0-test", "-o", bin, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build of what the Dockerfile copies (see TestDockerfile): %v\n%s", err, out)
	}
	return bin
}

// TestStaticBinary checks what the distroless image relies on: a binary
// built from what the Dockerfile copies, with no dynamic loader or shared
// libraries, that runs with an empty environment, reports its version,
// and exits 0 on SIGTERM.
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
	if err != nil || strings.TrimSpace(string(out)) != "wxlogin v0.0.0-test" {
		t.Errorf("wxlogin -version = %q, %v; want the version given at link time", out, err)
	}

	cmd := exec.Command(bin, "-mock")
	cmd.Env = []string{"ADDR=127.0.0.1:0"} // nothing else: as in a scratch image
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	type started struct{ addr, version string }
	listening := make(chan started, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var l map[string]any
			if json.Unmarshal(sc.Bytes(), &l) == nil && l["msg"] == "listening" {
				listening <- started{fmt.Sprint(l["addr"]), fmt.Sprint(l["version"])}
			}
		}
		io.Copy(io.Discard, stderr)
	}()
	var s started
	select {
	case s = <-listening:
	case <-time.After(10 * time.Second):
		t.Fatal("the binary did not log that it listens within 10s")
	}
	if s.version != "v0.0.0-test" {
		t.Errorf("the startup log line gives version %q, want v0.0.0-test", s.version)
	}
	resp, err := http.Get("http://" + s.addr + "/healthz")
	if err != nil {
		t.Fatalf("GET /healthz on the static binary: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("GET /healthz on the static binary = %d, want 200", resp.StatusCode)
	}
	hc := exec.Command(bin, "-healthcheck")
	hc.Env = []string{"ADDR=" + s.addr}
	if out, err := hc.CombinedOutput(); err != nil {
		t.Errorf("wxlogin -healthcheck: %v\n%s", err, out)
	}

	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Errorf("after SIGTERM the binary exited with %v, want status 0", err)
	}
}

// TestDockerfile checks the Dockerfile keeps SPEC §6's promises: its build
// stage gets every file go build needs (through .dockerignore and its COPY
// lines) and nothing secret, and the README's docker lines match it. (No
// Docker engine runs here.)
func TestDockerfile(t *testing.T) {
	t.Parallel()
	df := readFile(t, "Dockerfile")
	for _, want := range []string{"CGO_ENABLED=0", "go build", "-trimpath", "main.buildVersion", "AS build",
		"USER 65532:65532", "EXPOSE 2020", `HEALTHCHECK`, `"/wxlogin", "-healthcheck"`, "distroless/static"} {
		if !strings.Contains(df, want) {
			t.Errorf("the Dockerfile lacks %q", want)
		}
	}

	// Every file the build reads is in the build context and copied to the
	// same place under WORKDIR; nothing else but Go sources is copied.
	ignore := dockerIgnore(t)
	tree := dockerBuildTree(t, ignore)
	copies := dockerBuildTree(t, nil) // what the COPY lines would copy of the whole repository
	var ignored, uncopied []string
	for _, f := range buildFiles(t) {
		if !inDockerContext(ignore, f) {
			ignored = append(ignored, f)
		}
		if copies[f] != f {
			uncopied = append(uncopied, f)
		}
	}
	if len(ignored) > 0 {
		t.Errorf("the image build lacks %d files go build needs: .dockerignore leaves them out of the build context: %s", len(ignored), strings.Join(ignored, ", "))
	}
	if len(uncopied) > 0 {
		t.Errorf("the image build lacks %d files go build needs: no COPY line of the build stage copies them there: %s", len(uncopied), strings.Join(uncopied, ", "))
	}
	for dest, src := range tree {
		if base := path.Base(src); base != "go.mod" && (!strings.HasSuffix(base, ".go") || strings.HasSuffix(base, "_test.go")) {
			t.Errorf("the build stage copies %s (as %s): only go.mod and non-test Go sources belong in it", src, dest)
		}
	}
	for _, secret := range []string{"key.pem", "token_key.pem", ".env", "wx_secret"} {
		if inDockerContext(ignore, secret) {
			t.Errorf(".dockerignore lets %s into the build context", secret)
		}
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

// TestDockerIgnoreRules checks this file's reading of .dockerignore
// against Docker's documented behaviour, so that TestDockerfile can be
// trusted.
func TestDockerIgnoreRules(t *testing.T) {
	t.Parallel()
	tests := []struct {
		lines []string
		path  string
		in    bool
	}{
		{[]string{"*", "!go.mod", "!*.go", "*_test.go"}, "main.go", true},
		{[]string{"*", "!go.mod", "!*.go", "*_test.go"}, "main_test.go", false},
		{[]string{"*", "!go.mod", "!*.go", "*_test.go"}, "go.mod", true},
		{[]string{"*", "!go.mod", "!*.go", "*_test.go"}, "internal/token/key.go", false},
		{[]string{"*", "!go.mod", "!*.go", "*_test.go"}, "README.md", false},
		{[]string{"*", "!go.mod", "!*.go", "!internal/", "**/*_test.go"}, "internal/token/key.go", true},
		{[]string{"*", "!go.mod", "!*.go", "!internal/", "**/*_test.go"}, "internal/token/key_test.go", false},
		{[]string{"*", "!go.mod", "!*.go", "!internal/", "**/*_test.go"}, "main_test.go", false},
		{[]string{"*", "!internal/**/*.go"}, "internal/token/key.go", true},
		{[]string{"/secrets"}, "secrets/key.pem", false},
		{[]string{"docs/?.md"}, "docs/a.md", false},
		{[]string{"docs/?.md"}, "docs/ab.md", true},
		{nil, "anything", true},
	}
	for _, tt := range tests {
		if got := inDockerContext(parseDockerIgnore(strings.Join(tt.lines, "\n")), tt.path); got != tt.in {
			t.Errorf("inDockerContext(%q, %s) = %v, want %v", tt.lines, tt.path, got, tt.in)
		}
	}
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
		t.Fatal("the manifest has no Deployment")
	}
	sc := get(pod, "securityContext")
	if get(sc, "runAsNonRoot") != true || get(sc, "runAsUser") != 65532.0 || get(sc, "seccompProfile", "type") != "RuntimeDefault" {
		t.Errorf("pod securityContext = %v, want runAsNonRoot, runAsUser 65532 and seccomp RuntimeDefault", sc)
	}
	containers, _ := get(pod, "containers").([]any)
	if len(containers) == 0 {
		t.Fatal("the Deployment has no container")
	}
	c := containers[0]
	csc := get(c, "securityContext")
	if get(csc, "allowPrivilegeEscalation") != false || get(csc, "readOnlyRootFilesystem") != true ||
		fmt.Sprint(get(csc, "capabilities", "drop")) != "[ALL]" {
		t.Errorf("container securityContext = %v", csc)
	}
	env := map[string]string{}
	envList, _ := get(c, "env").([]any)
	for _, e := range envList {
		name, _ := get(e, "name").(string)
		env[name], _ = get(e, "value").(string)
	}
	drain, err1 := time.ParseDuration(env["DRAIN_DELAY"])
	shutdown, err2 := time.ParseDuration(env["SHUTDOWN_TIMEOUT"])
	graceSeconds, _ := get(pod, "terminationGracePeriodSeconds").(float64)
	grace := time.Duration(graceSeconds) * time.Second
	if err1 != nil || err2 != nil || drain <= 0 || grace < drain+shutdown+5*time.Second {
		t.Errorf("DRAIN_DELAY %q, SHUTDOWN_TIMEOUT %q, terminationGracePeriodSeconds %v: the grace period must cover both", env["DRAIN_DELAY"], env["SHUTDOWN_TIMEOUT"], grace)
	}
	var cfg Config
	var names []string
	for _, s := range settings(&cfg) {
		names = append(names, s.env)
	}
	for name := range env {
		if !slices.Contains(names, name) {
			t.Errorf("the manifest sets %s, which is no setting", name)
		}
	}
	// Every setting the manifest gives must also load: the pod would
	// otherwise exit 2 at start (secret paths replaced by test files).
	env["WX_SECRET_DIR"] = kubeSecretDir(t, map[string]string{env["WX_APPID"]: "a-secret"})
	env["TOKEN_KEY_FILE"] = writeKeyFile(t, pemOf(t, false, newP256(t)))
	if _, err := loadConfig(nil, envOf(env), io.Discard); err != nil {
		t.Errorf("the manifest's settings do not load: %v", err)
	}
}
