package deploy_test

import (
	"bufio"
	"fmt"
	"io/fs"
	"maps"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/openanalyst/mcp-integration-service/config"
	"github.com/openanalyst/mcp-integration-service/messages"
)

// The tests run in deploy/, so every path below is relative to it.

// ---------------------------------------------------------------- helpers

func readFile(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return strings.ReplaceAll(string(b), "\r\n", "\n")
}

// yamlDocs parses every document of a YAML file (documents split on
// "\n---\n"). Documents holding only comments are skipped.
func yamlDocs(t testing.TB, path string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for i, part := range strings.Split("\n"+readFile(t, path), "\n---\n") {
		var doc map[string]any
		if err := yaml.Unmarshal([]byte(part), &doc); err != nil {
			t.Fatalf("%s: document %d does not parse: %v", path, i, err)
		}
		if doc != nil {
			out = append(out, doc)
		}
	}
	return out
}

func dig(v any, path ...string) any {
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}

func str(v any, path ...string) string {
	s, _ := dig(v, path...).(string)
	return s
}

func list(v any, path ...string) []any {
	l, _ := dig(v, path...).([]any)
	return l
}

func mapping(v any, path ...string) map[string]any {
	m, _ := dig(v, path...).(map[string]any)
	return m
}

// num reads a YAML number (sigs.k8s.io/yaml yields float64) or numeric string.
func num(v any) (int, bool) {
	switch x := v.(type) {
	case float64:
		return int(x), x == float64(int(x))
	case int:
		return x, true
	case int64:
		return int(x), true
	case string:
		n, err := strconv.Atoi(x)
		return n, err == nil
	}
	return 0, false
}

func strings_(v any) []string {
	var out []string
	for _, x := range list(v) {
		out = append(out, fmt.Sprint(x))
	}
	return out
}

// declared is config.Env by name, read at test time.
func declared() map[string]config.Var {
	m := map[string]config.Var{}
	for _, v := range config.Env {
		m[v.Name] = v
	}
	return m
}

func defaultOf(t testing.TB, name string) string {
	t.Helper()
	v, ok := declared()[name]
	if !ok {
		t.Fatalf("%s is not declared in config.Env", name)
	}
	return v.Default
}

// servicePort is the default API port, MCP_SERVICE_PORT.
func servicePort(t testing.TB) int {
	t.Helper()
	n, err := strconv.Atoi(defaultOf(t, "MCP_SERVICE_PORT"))
	if err != nil {
		t.Fatalf("MCP_SERVICE_PORT default: %v", err)
	}
	return n
}

// metricsPort is the port of the default worker metrics address, MCP_METRICS_ADDR.
func metricsPort(t testing.TB) int {
	t.Helper()
	return portOfAddr(t, defaultOf(t, "MCP_METRICS_ADDR"))
}

func portOfAddr(t testing.TB, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("address %q: %v", addr, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatalf("address %q: %v", addr, err)
	}
	return n
}

// envFile reads KEY=VALUE lines in order; it fails on malformed lines and
// duplicate keys.
func envFile(t testing.TB, path string) ([]string, map[string]string) {
	t.Helper()
	var names []string
	vals := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(readFile(t, path)))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || !regexp.MustCompile(`^[A-Z][A-Z0-9_]*$`).MatchString(k) {
			t.Errorf("%s:%d: not a KEY=value line: %q", path, n, line)
			continue
		}
		if _, dup := vals[k]; dup {
			t.Errorf("%s:%d: %s is set twice", path, n, k)
		}
		names = append(names, k)
		vals[k] = v
	}
	return names, vals
}

var interpolation = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}`)

// interpolate expands compose's ${VAR}, ${VAR:-default} and ${VAR:?message}.
func interpolate(s string, vars map[string]string) string {
	return interpolation.ReplaceAllStringFunc(s, func(m string) string {
		sub := interpolation.FindStringSubmatch(m)
		v, ok := vars[sub[1]]
		switch sub[2] {
		case ":-":
			if v == "" {
				return sub[3]
			}
		case "-":
			if !ok {
				return sub[3]
			}
		}
		return v
	})
}

// ---------------------------------------------------------------- all YAML

func yamlFiles(t testing.TB) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if ext := filepath.Ext(path); !d.IsDir() && (ext == ".yaml" || ext == ".yml") {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	return files
}

func TestEveryYAMLFileParses(t *testing.T) {
	t.Parallel()
	files := yamlFiles(t)
	if len(files) < 9 {
		t.Fatalf("found only %d YAML files under deploy/: %v", len(files), files)
	}
	for _, f := range files {
		docs := yamlDocs(t, f)
		if len(docs) == 0 {
			t.Errorf("%s holds no document", f)
		}
		if filepath.Dir(f) != "k8s" {
			continue
		}
		for i, d := range docs {
			if str(d, "apiVersion") == "" || str(d, "kind") == "" {
				t.Errorf("%s document %d: missing apiVersion or kind", f, i)
			}
			if str(d, "kind") == "Kustomization" {
				continue
			}
			if str(d, "metadata", "name") == "" {
				t.Errorf("%s document %d (%s): missing metadata.name", f, i, str(d, "kind"))
			}
			if ns := str(d, "metadata", "namespace"); str(d, "kind") != "Namespace" && ns != "mcp" {
				t.Errorf("%s: %s %s is in namespace %q, want mcp", f, str(d, "kind"), str(d, "metadata", "name"), ns)
			}
		}
	}
}

// ---------------------------------------------------------------- Kubernetes

type k8sObject struct {
	file string
	doc  map[string]any
}

func k8sObjects(t testing.TB) []k8sObject {
	t.Helper()
	files, err := filepath.Glob("k8s/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var out []k8sObject
	for _, f := range files {
		if filepath.Base(f) == "kustomization.yaml" {
			continue
		}
		for _, d := range yamlDocs(t, f) {
			out = append(out, k8sObject{f, d})
		}
	}
	return out
}

func objectsOf(objs []k8sObject, kind string) []k8sObject {
	var out []k8sObject
	for _, o := range objs {
		if str(o.doc, "kind") == kind {
			out = append(out, o)
		}
	}
	return out
}

// deploymentByRole returns the Deployment whose only container runs
// `mcp-service <role>`, and that container.
func deploymentByRole(t testing.TB, objs []k8sObject, role string) (map[string]any, map[string]any) {
	t.Helper()
	var found []map[string]any
	var ctr map[string]any
	for _, o := range objectsOf(objs, "Deployment") {
		cs := list(o.doc, "spec", "template", "spec", "containers")
		if len(cs) != 1 {
			t.Errorf("Deployment %s: %d containers, want 1", str(o.doc, "metadata", "name"), len(cs))
			continue
		}
		c := mapping(cs[0])
		if args := strings_(c["args"]); len(args) == 1 && args[0] == role {
			found = append(found, o.doc)
			ctr = c
		}
	}
	if len(found) != 1 {
		t.Fatalf("want exactly one Deployment with args [%q], found %d", role, len(found))
	}
	return found[0], ctr
}

// secretKeys lists the keys of every Secret in secret.example.yaml.
func secretKeys(t testing.TB) map[string]map[string]string {
	t.Helper()
	out := map[string]map[string]string{}
	for _, d := range yamlDocs(t, "k8s/secret.example.yaml") {
		if str(d, "kind") != "Secret" {
			t.Errorf("secret.example.yaml holds a %s", str(d, "kind"))
			continue
		}
		keys := map[string]string{}
		for k, v := range mapping(d, "stringData") {
			keys[k] = fmt.Sprint(v)
		}
		for k, v := range mapping(d, "data") {
			keys[k] = fmt.Sprint(v)
		}
		out[str(d, "metadata", "name")] = keys
	}
	return out
}

func configMapData(t testing.TB, objs []k8sObject) map[string]map[string]string {
	t.Helper()
	out := map[string]map[string]string{}
	for _, o := range objectsOf(objs, "ConfigMap") {
		data := map[string]string{}
		for k, v := range mapping(o.doc, "data") {
			s, ok := v.(string)
			if !ok {
				t.Errorf("ConfigMap %s: %s is not a string (quote it)", str(o.doc, "metadata", "name"), k)
			}
			data[k] = s
		}
		out[str(o.doc, "metadata", "name")] = data
	}
	return out
}

func TestKustomizationListsTheManifests(t *testing.T) {
	t.Parallel()
	docs := yamlDocs(t, "k8s/kustomization.yaml")
	if len(docs) != 1 || str(docs[0], "kind") != "Kustomization" {
		t.Fatalf("k8s/kustomization.yaml is not one Kustomization")
	}
	k := docs[0]
	resources := strings_(k["resources"])
	files, _ := filepath.Glob("k8s/*.yaml")
	var want []string
	for _, f := range files {
		switch b := filepath.Base(f); b {
		case "kustomization.yaml", "secret.example.yaml":
		default:
			want = append(want, b)
		}
	}
	got := slices.Clone(resources)
	sort.Strings(got)
	if !slices.Equal(got, want) {
		t.Errorf("kustomization resources = %v, want every manifest %v", got, want)
	}
	if slices.Contains(resources, "secret.example.yaml") {
		t.Error("kustomization must not apply the placeholder Secrets")
	}
	ns := objectsOf(k8sObjects(t), "Namespace")
	if len(ns) != 1 || str(k, "namespace") != str(ns[0].doc, "metadata", "name") {
		t.Errorf("kustomization namespace %q does not match the Namespace manifest", str(k, "namespace"))
	}

	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Log("kubectl not installed: `kubectl kustomize` not run")
		return
	}
	out, err := exec.Command(kubectl, "kustomize", "k8s").CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl kustomize k8s: %v\n%s", err, out)
	}
	var n, want2 int
	for _, part := range strings.Split("\n"+string(out), "\n---\n") {
		var d map[string]any
		if err := yaml.Unmarshal([]byte(part), &d); err != nil {
			t.Fatalf("kustomize output: %v", err)
		}
		if d != nil {
			n++
		}
	}
	for _, r := range resources {
		want2 += len(yamlDocs(t, filepath.Join("k8s", r)))
	}
	if n != want2 {
		t.Errorf("kubectl kustomize rendered %d objects, want %d", n, want2)
	}
	if regexp.MustCompile(`(?m)image: mcp-service\s*$`).Match(out) {
		t.Error("kustomize left the image name unset (images: in kustomization.yaml)")
	}
}

func TestK8sEnvIsDeclaredAndSecretsExist(t *testing.T) {
	t.Parallel()
	decl := declared()
	objs := k8sObjects(t)
	secrets := secretKeys(t)
	cms := configMapData(t, objs)

	for name, data := range cms {
		for k := range data {
			if _, ok := decl[k]; !ok {
				t.Errorf("ConfigMap %s key %s is not declared in config.Env", name, k)
			}
		}
	}
	for name, keys := range secrets {
		for k, v := range keys {
			if _, ok := decl[k]; !ok {
				t.Errorf("Secret %s key %s is not declared in config.Env", name, k)
			}
			if !strings.Contains(v, "CHANGE_ME") {
				t.Errorf("Secret %s key %s in secret.example.yaml is not a CHANGE_ME placeholder", name, k)
			}
		}
	}
	if got := slices.Sorted(maps.Keys(secrets["mcp-secrets"])); !slices.Equal(got,
		[]string{"AGENT_API_KEY", "COMPOSIO_API_KEY", "DB_ENCRYPTION_KEY", "MONGODB_URI"}) {
		t.Errorf("Secret mcp-secrets keys = %v", got)
	}

	for _, role := range []string{"api", "worker"} {
		dep, c := deploymentByRole(t, objs, role)
		dname := str(dep, "metadata", "name")
		fromSecret := map[string]bool{}
		seen := map[string]bool{}
		for _, e := range list(c, "env") {
			name := str(e, "name")
			if _, ok := decl[name]; !ok {
				t.Errorf("%s: env %s is not declared in config.Env", dname, name)
			}
			if seen[name] {
				t.Errorf("%s: env %s is set twice", dname, name)
			}
			seen[name] = true
			if ref := mapping(e, "valueFrom", "secretKeyRef"); ref != nil {
				sn, key := str(ref, "name"), str(ref, "key")
				if _, ok := secrets[sn][key]; !ok {
					t.Errorf("%s: env %s reads Secret %s key %s, which secret.example.yaml lacks", dname, name, sn, key)
				}
				if key != name {
					t.Errorf("%s: env %s reads Secret key %s; keep key and variable names equal", dname, name, key)
				}
				fromSecret[name] = true
			}
			if ref := mapping(e, "valueFrom", "configMapKeyRef"); ref != nil {
				if _, ok := cms[str(ref, "name")][str(ref, "key")]; !ok {
					t.Errorf("%s: env %s reads a missing ConfigMap key %s/%s", dname, name, str(ref, "name"), str(ref, "key"))
				}
			}
		}
		var fromCM []string
		for _, ef := range list(c, "envFrom") {
			if n := str(ef, "configMapRef", "name"); n != "" {
				if _, ok := cms[n]; !ok {
					t.Errorf("%s: envFrom ConfigMap %s does not exist", dname, n)
				}
				fromCM = append(fromCM, n)
			}
			if n := str(ef, "secretRef", "name"); n != "" {
				t.Errorf("%s: envFrom Secret %s: use secretKeyRef per variable instead", dname, n)
			}
		}
		if !slices.Contains(fromCM, "mcp-config") {
			t.Errorf("%s: does not load ConfigMap mcp-config", dname)
		}
		for _, want := range []string{"AGENT_API_KEY", "DB_ENCRYPTION_KEY", "MONGODB_URI", "COMPOSIO_API_KEY", "NATS_URL"} {
			if !fromSecret[want] {
				t.Errorf("%s: %s does not come from a Secret", dname, want)
			}
		}

		// The settings a pod gets must load: every value has the right shape.
		env := map[string]string{}
		for _, n := range fromCM {
			for k, v := range cms[n] {
				env[k] = v
			}
		}
		for k := range fromSecret {
			env[k] = "placeholder"
		}
		cfg, err := config.Load(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
		if err != nil {
			t.Errorf("%s: config.Load on its environment: %v", dname, err)
			continue
		}
		if cfg.StreamReplicas != 3 {
			t.Errorf("%s: MCP_STREAM_REPLICAS = %d, want 3 on a NATS cluster", dname, cfg.StreamReplicas)
		}
	}
}

// containerPort resolves a probe or Service port (a number or a port name).
func containerPort(t testing.TB, c map[string]any, p any) int {
	t.Helper()
	if n, ok := num(p); ok {
		return n
	}
	for _, cp := range list(c, "ports") {
		if str(cp, "name") == fmt.Sprint(p) {
			n, _ := num(dig(cp, "containerPort"))
			return n
		}
	}
	t.Errorf("container %s has no port %v", str(c, "name"), p)
	return -1
}

func checkHardening(t *testing.T, dname string, dep, c map[string]any) {
	t.Helper()
	pod := mapping(dep, "spec", "template", "spec")
	if dig(pod, "securityContext", "runAsNonRoot") != true {
		t.Errorf("%s: pod securityContext.runAsNonRoot is not true", dname)
	}
	if u, _ := num(dig(pod, "securityContext", "runAsUser")); u == 0 {
		t.Errorf("%s: pod runs as uid 0", dname)
	}
	sc := mapping(c, "securityContext")
	if sc["readOnlyRootFilesystem"] != true || sc["allowPrivilegeEscalation"] != false {
		t.Errorf("%s: container needs readOnlyRootFilesystem: true and allowPrivilegeEscalation: false", dname)
	}
	if !slices.Contains(strings_(dig(sc, "capabilities", "drop")), "ALL") {
		t.Errorf("%s: container does not drop ALL capabilities", dname)
	}
	for _, k := range [][]string{{"requests", "cpu"}, {"requests", "memory"}, {"limits", "memory"}} {
		if dig(c, append([]string{"resources"}, k...)...) == nil {
			t.Errorf("%s: resources.%s unset", dname, strings.Join(k, "."))
		}
	}
}

func TestK8sProbesPortsAndHardening(t *testing.T) {
	t.Parallel()
	objs := k8sObjects(t)
	cms := configMapData(t, objs)
	port := servicePort(t)

	api, c := deploymentByRole(t, objs, "api")
	aname := str(api, "metadata", "name")
	checkHardening(t, aname, api, c)
	if n, _ := num(dig(api, "spec", "replicas")); n < 2 {
		t.Errorf("%s: %d replicas, want at least 2", aname, n)
	}
	if p := str(c, "readinessProbe", "httpGet", "path"); p != "/readyz" {
		t.Errorf("%s: readiness probe path %q, want /readyz", aname, p)
	}
	if p := str(c, "livenessProbe", "httpGet", "path"); p != "/healthz" {
		t.Errorf("%s: liveness probe path %q, want /healthz", aname, p)
	}
	for _, probe := range []string{"readinessProbe", "livenessProbe", "startupProbe"} {
		if pp := dig(c, probe, "httpGet", "port"); pp != nil && containerPort(t, c, pp) != port {
			t.Errorf("%s: %s port %v is not MCP_SERVICE_PORT %d", aname, probe, pp, port)
		}
	}
	var ports []int
	for _, cp := range list(c, "ports") {
		n, _ := num(dig(cp, "containerPort"))
		ports = append(ports, n)
	}
	if !slices.Equal(ports, []int{port}) {
		t.Errorf("%s: container ports %v, want [%d] (MCP_SERVICE_PORT)", aname, ports, port)
	}
	if v, ok := cms["mcp-config"]["MCP_SERVICE_PORT"]; ok && v != strconv.Itoa(port) {
		t.Errorf("ConfigMap MCP_SERVICE_PORT %q differs from the container port %d", v, port)
	}

	// The Service selects the API pods and targets the API port.
	var svcFound bool
	for _, o := range objectsOf(objs, "Service") {
		sel := mapping(o.doc, "spec", "selector")
		if !labelsMatch(sel, mapping(api, "spec", "template", "metadata", "labels")) {
			continue
		}
		svcFound = true
		for _, sp := range list(o.doc, "spec", "ports") {
			if got := containerPort(t, c, dig(sp, "targetPort")); got != port {
				t.Errorf("Service %s targets port %d, want %d", str(o.doc, "metadata", "name"), got, port)
			}
		}
	}
	if !svcFound {
		t.Errorf("no Service selects the pods of %s", aname)
	}

	worker, wc := deploymentByRole(t, objs, "worker")
	wname := str(worker, "metadata", "name")
	checkHardening(t, wname, worker, wc)
	mport := metricsPort(t)
	if v, ok := cms["mcp-config"]["MCP_METRICS_ADDR"]; ok {
		mport = portOfAddr(t, v)
	}
	if got := containerPort(t, wc, "metrics"); got != mport {
		t.Errorf("%s: metrics port %d, want %d (MCP_METRICS_ADDR)", wname, got, mport)
	}
	if a := str(worker, "spec", "template", "metadata", "annotations", "prometheus.io/port"); a != strconv.Itoa(mport) {
		t.Errorf("%s: prometheus.io/port %q, want %d", wname, a, mport)
	}
	for _, probe := range []string{"readinessProbe", "livenessProbe", "startupProbe"} {
		if pp := dig(wc, probe, "httpGet", "port"); pp != nil && containerPort(t, wc, pp) != mport {
			t.Errorf("%s: %s probes port %v; a worker serves HTTP only on its metrics port %d", wname, probe, pp, mport)
		}
	}
	// The worker's metrics listener answers /healthz (service.startWorker).
	if p := str(wc, "livenessProbe", "httpGet", "path"); p != "/healthz" {
		t.Errorf("%s: liveness probe path %q, want /healthz", wname, p)
	}
}

func labelsMatch(selector, labels map[string]any) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func TestPodDisruptionBudgetsCoverBothRoles(t *testing.T) {
	t.Parallel()
	objs := k8sObjects(t)
	pdbs := objectsOf(objs, "PodDisruptionBudget")
	for _, role := range []string{"api", "worker"} {
		dep, _ := deploymentByRole(t, objs, role)
		labels := mapping(dep, "spec", "template", "metadata", "labels")
		if !labelsMatch(mapping(dep, "spec", "selector", "matchLabels"), labels) {
			t.Errorf("Deployment %s selector does not match its pod labels", str(dep, "metadata", "name"))
		}
		n := 0
		for _, p := range pdbs {
			if labelsMatch(mapping(p.doc, "spec", "selector", "matchLabels"), labels) {
				n++
				if dig(p.doc, "spec", "minAvailable") == nil && dig(p.doc, "spec", "maxUnavailable") == nil {
					t.Errorf("PDB %s sets neither minAvailable nor maxUnavailable", str(p.doc, "metadata", "name"))
				}
			}
		}
		if n != 1 {
			t.Errorf("%d PodDisruptionBudgets select the %s pods, want 1", n, role)
		}
	}
}

func TestKEDAScalesTheWorkersOnTheJobConsumers(t *testing.T) {
	t.Parallel()
	objs := k8sObjects(t)
	worker, _ := deploymentByRole(t, objs, "worker")
	sos := objectsOf(objs, "ScaledObject")
	if len(sos) != 1 {
		t.Fatalf("%d ScaledObjects, want 1", len(sos))
	}
	so := sos[0].doc
	if v := str(so, "apiVersion"); v != "keda.sh/v1alpha1" {
		t.Errorf("ScaledObject apiVersion %q", v)
	}
	ref := mapping(so, "spec", "scaleTargetRef")
	if str(ref, "name") != str(worker, "metadata", "name") {
		t.Errorf("ScaledObject targets %q, want the worker Deployment %q", str(ref, "name"), str(worker, "metadata", "name"))
	}
	if k := str(ref, "kind"); k != "" && k != "Deployment" {
		t.Errorf("ScaledObject targets a %s", k)
	}
	minR, _ := num(dig(so, "spec", "minReplicaCount"))
	maxR, _ := num(dig(so, "spec", "maxReplicaCount"))
	if minR < 1 || maxR < minR {
		t.Errorf("replica range %d..%d: keep at least one worker", minR, maxR)
	}

	account, monitorPort := natsAccountAndMonitorPort(t)
	var consumers []string
	for _, tr := range list(so, "spec", "triggers") {
		md := mapping(tr, "metadata")
		if str(tr, "type") != "nats-jetstream" {
			t.Errorf("trigger type %q, want nats-jetstream", str(tr, "type"))
		}
		if s := str(md, "stream"); s != messages.JobStream {
			t.Errorf("trigger stream %q, want %q", s, messages.JobStream)
		}
		if a := str(md, "account"); a != account {
			t.Errorf("trigger account %q, want %q (the NATS account of the service users)", a, account)
		}
		ep := str(md, "natsServerMonitoringEndpoint")
		if ep == "" || portOfAddr(t, ep) != monitorPort {
			t.Errorf("natsServerMonitoringEndpoint %q is not on the NATS monitoring port %d", ep, monitorPort)
		}
		if n, ok := num(dig(md, "lagThreshold")); !ok || n <= 0 {
			t.Errorf("lagThreshold %v is not a positive integer", dig(md, "lagThreshold"))
		}
		consumers = append(consumers, str(md, "consumer"))
	}
	if !slices.Contains(consumers, messages.KindExecute.Durable()) {
		t.Errorf("no trigger on consumer %q; triggers: %v", messages.KindExecute.Durable(), consumers)
	}
	var want []string
	for _, k := range messages.Kinds {
		want = append(want, k.Durable())
	}
	sort.Strings(want)
	sort.Strings(consumers)
	if !slices.Equal(consumers, want) {
		t.Errorf("triggers on consumers %v, want one per job kind %v (every worker serves them all)", consumers, want)
	}
}

// ---------------------------------------------------------------- compose

type composeService struct {
	name string
	def  map[string]any
}

func composeServices(t testing.TB) (string, []composeService) {
	t.Helper()
	docs := yamlDocs(t, "docker-compose.yml")
	if len(docs) != 1 {
		t.Fatalf("docker-compose.yml: %d documents, want 1", len(docs))
	}
	var out []composeService
	for name, def := range mapping(docs[0], "services") {
		out = append(out, composeService{name, mapping(def)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return readFile(t, "docker-compose.yml"), out
}

func replicas(def map[string]any) int {
	if n, ok := num(dig(def, "deploy", "replicas")); ok {
		return n
	}
	return 1
}

// environment reads a service's environment, as a map or a KEY=VALUE list.
func environment(t testing.TB, s composeService) map[string]string {
	t.Helper()
	env := map[string]string{}
	switch e := s.def["environment"].(type) {
	case map[string]any:
		for k, v := range e {
			if v == nil {
				env[k] = ""
			} else {
				env[k] = fmt.Sprint(v)
			}
		}
	case []any:
		for _, kv := range e {
			k, v, _ := strings.Cut(fmt.Sprint(kv), "=")
			env[k] = v
		}
	case nil:
	default:
		t.Errorf("service %s: environment is a %T", s.name, e)
	}
	return env
}

func command(s composeService) []string { return strings_(s.def["command"]) }

// exampleVars are the .env.example values with the empty secrets filled in,
// as an operator's deploy/.env would have them.
func exampleVars(t testing.TB) map[string]string {
	t.Helper()
	_, vals := envFile(t, ".env.example")
	for k, v := range vals {
		if v == "" {
			vals[k] = natsTestValue(k)
		}
	}
	return vals
}

func TestComposeTopology(t *testing.T) {
	t.Parallel()
	text, services := composeServices(t)
	decl := declared()
	vars := exampleVars(t)
	_, example := envFile(t, ".env.example")
	opts, _ := loadNATSOpts(t, natsClusterConf)

	var natsSvc, mongoSvc, apiSvc, workerSvc, proxySvc []composeService
	var mongoInit *composeService
	for i, s := range services {
		img := str(s.def, "image")
		cmd := command(s)
		switch {
		case strings.HasPrefix(img, "nats:"):
			natsSvc = append(natsSvc, s)
		case strings.HasPrefix(img, "mongo:") && slices.Contains(cmd, "mongod"):
			mongoSvc = append(mongoSvc, s)
		case strings.HasPrefix(img, "mongo:"):
			mongoInit = &services[i]
		case len(cmd) == 1 && cmd[0] == "api":
			apiSvc = append(apiSvc, s)
		case len(cmd) == 1 && cmd[0] == "worker":
			workerSvc = append(workerSvc, s)
		case strings.HasPrefix(img, "nginx:") || strings.HasPrefix(img, "caddy:"):
			proxySvc = append(proxySvc, s)
		default:
			t.Errorf("service %s: unexpected (image %q, command %v)", s.name, img, cmd)
		}
	}

	// NATS: three nodes of one cluster, named like the conf's routes.
	if len(natsSvc) != 3 {
		t.Errorf("%d NATS services, want 3", len(natsSvc))
	}
	var routeHosts []string
	for _, r := range opts.Routes {
		routeHosts = append(routeHosts, r.Hostname())
	}
	confVarNames := natsConfVars(t, natsClusterConf)
	for _, s := range natsSvc {
		if img := str(s.def, "image"); !strings.HasPrefix(img, "nats:2.12") {
			t.Errorf("%s: image %q, want nats:2.12", s.name, img)
		}
		mounted := false
		for _, v := range strings_(s.def["volumes"]) {
			if strings.HasPrefix(v, "./nats/nats-cluster.conf:") {
				mounted = true
			}
		}
		if !mounted {
			t.Errorf("%s does not mount ./nats/nats-cluster.conf", s.name)
		}
		if !slices.Contains(command(s), "--config") {
			t.Errorf("%s: command %v does not pass --config", s.name, command(s))
		}
		env := environment(t, s)
		if env["NATS_SERVER_NAME"] != s.name {
			t.Errorf("%s: NATS_SERVER_NAME %q, want the service name", s.name, env["NATS_SERVER_NAME"])
		}
		if !slices.Contains(routeHosts, s.name) {
			t.Errorf("%s is not among the conf's cluster routes %v", s.name, routeHosts)
		}
		for _, v := range confVarNames {
			if _, ok := env[v]; !ok {
				t.Errorf("%s: the conf reads $%s, which the service's environment lacks", s.name, v)
			}
		}
		if s.def["healthcheck"] == nil {
			t.Errorf("%s has no healthcheck", s.name)
		}
	}

	// MongoDB: a three-member replica set and its one-shot initiator.
	if len(mongoSvc) < 3 {
		t.Errorf("%d mongod services, want at least 3", len(mongoSvc))
	}
	uri := vars["MONGODB_URI"]
	if !strings.Contains(uri, "replicaSet=rs0") {
		t.Errorf(".env.example MONGODB_URI %q does not name replicaSet=rs0", uri)
	}
	for _, s := range mongoSvc {
		cmd := command(s)
		i := slices.Index(cmd, "--replSet")
		if i < 0 || i+1 >= len(cmd) || cmd[i+1] != "rs0" {
			t.Errorf("%s: command %v lacks --replSet rs0", s.name, cmd)
		}
		if !strings.Contains(uri, s.name+":27017") {
			t.Errorf("MONGODB_URI %q does not list %s:27017", uri, s.name)
		}
		if mongoInit == nil || !strings.Contains(strings.Join(command(*mongoInit), " "), `host: "`+s.name+`:27017"`) {
			t.Errorf("the replica set initiator does not add %s", s.name)
		}
	}
	if mongoInit == nil || !strings.Contains(strings.Join(command(*mongoInit), " "), "rs.initiate(") {
		t.Error("no one-shot service runs rs.initiate")
	} else if str(mongoInit.def, "restart") != "no" {
		t.Errorf("%s must not restart", mongoInit.name)
	}

	// API nodes and workers.
	count := func(ss []composeService) (n int) {
		for _, s := range ss {
			n += replicas(s.def)
		}
		return n
	}
	if n := count(apiSvc); n != 2 {
		t.Errorf("%d API containers, want 2", n)
	}
	if n := count(workerSvc); n != 3 {
		t.Errorf("%d worker containers, want 3", n)
	}
	port := servicePort(t)
	for _, s := range append(slices.Clone(apiSvc), workerSvc...) {
		role := command(s)[0]
		env := environment(t, s)
		resolved := map[string]string{}
		for k, v := range env {
			if _, ok := decl[k]; !ok {
				t.Errorf("%s: environment %s is not declared in config.Env", s.name, k)
			}
			resolved[k] = interpolate(v, vars)
		}
		cfg, err := config.Load(func(k string) (string, bool) { v, ok := resolved[k]; return v, ok })
		if err != nil {
			t.Errorf("%s: config.Load on its environment: %v", s.name, err)
			continue
		}
		if cfg.StreamReplicas != 3 {
			t.Errorf("%s: MCP_STREAM_REPLICAS = %d, want 3", s.name, cfg.StreamReplicas)
		}
		if !strings.Contains(cfg.MongoURI, "replicaSet=rs0") {
			t.Errorf("%s: MONGODB_URI %q is not the replica set", s.name, cfg.MongoURI)
		}
		// NATS_URL lists every node, as a user the conf knows, with its password.
		urls := strings.Split(cfg.NATSURL, ",")
		var hosts []string
		for _, raw := range urls {
			u, err := url.Parse(raw)
			if err != nil || u.User == nil {
				t.Errorf("%s: NATS_URL entry %q has no user", s.name, raw)
				continue
			}
			hosts = append(hosts, u.Hostname())
			wantUser := "mcp-" + role
			if u.User.Username() != wantUser {
				t.Errorf("%s: NATS user %q, want %q", s.name, u.User.Username(), wantUser)
			}
			pw, _ := u.User.Password()
			if got, ok := natsUserPassword(opts, u.User.Username()); !ok || got != pw {
				t.Errorf("%s: NATS_URL password for %s does not match the conf's variable", s.name, u.User.Username())
			}
		}
		for _, n := range natsSvc {
			if !slices.Contains(hosts, n.name) {
				t.Errorf("%s: NATS_URL does not list %s", s.name, n.name)
			}
		}
		hc := strings.Join(strings_(dig(s.def, "healthcheck", "test")), " ")
		switch role {
		case "api":
			if cfg.Port != port || !strings.Contains(hc, fmt.Sprintf(":%d/readyz", port)) {
				t.Errorf("%s: healthcheck %q does not probe /readyz on port %d", s.name, hc, port)
			}
		case "worker":
			if !strings.Contains(hc, fmt.Sprintf(":%d/healthz", portOfAddr(t, cfg.MetricsAddr))) {
				t.Errorf("%s: healthcheck %q is not on the metrics address %s", s.name, hc, cfg.MetricsAddr)
			}
		}
		if s.def["read_only"] != true || str(s.def, "user") == "" {
			t.Errorf("%s: want read_only: true and a non-root user", s.name)
		}
	}

	// The proxy balances over every API service.
	if len(proxySvc) != 1 {
		t.Fatalf("%d proxy services, want 1", len(proxySvc))
	}
	p := proxySvc[0]
	var conf string
	for _, v := range strings_(p.def["volumes"]) {
		src, _, _ := strings.Cut(v, ":")
		if strings.HasPrefix(src, "./proxy/") {
			conf = readFile(t, src)
		}
	}
	if conf == "" {
		t.Fatalf("%s mounts no config from ./proxy/", p.name)
	}
	for _, s := range apiSvc {
		if !strings.Contains(conf, fmt.Sprintf("%s:%d", s.name, port)) {
			t.Errorf("proxy config does not balance to %s:%d", s.name, port)
		}
	}
	if len(list(p.def, "ports")) == 0 {
		t.Errorf("%s publishes no port", p.name)
	}
	if strings.HasPrefix(str(p.def, "image"), "nginx:") {
		checkNginxConf(t, conf, apiSvc)
	}

	// Every ${VAR} without a default is documented in .env.example.
	for _, m := range interpolation.FindAllStringSubmatch(text, -1) {
		if m[2] == ":-" || m[2] == "-" {
			continue
		}
		if _, ok := example[m[1]]; !ok {
			t.Errorf("docker-compose.yml uses ${%s}, which .env.example does not list", m[1])
		}
	}
}

// checkNginxConf runs `nginx -t` on the proxy config when nginx is installed,
// with the API hostnames (which only resolve inside compose) made local.
func checkNginxConf(t *testing.T, conf string, apis []composeService) {
	t.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		t.Log("nginx not installed: proxy/nginx.conf syntax not checked by nginx -t")
		return
	}
	for _, s := range apis {
		conf = strings.ReplaceAll(conf, s.name+":", "127.0.0.1:")
	}
	dir := t.TempDir()
	f := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(f, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "-t", "-p", dir, "-c", f).CombinedOutput(); err != nil {
		t.Errorf("nginx -t on proxy/nginx.conf: %v\n%s", err, out)
	}
}

func TestEnvExampleNamesAreKnown(t *testing.T) {
	t.Parallel()
	decl := declared()
	confVars := natsConfVars(t, natsClusterConf)
	names, vals := envFile(t, ".env.example")
	if len(names) == 0 {
		t.Fatal(".env.example sets nothing")
	}
	for _, n := range names {
		_, inConfig := decl[n]
		if !inConfig && !slices.Contains(confVars, n) {
			t.Errorf(".env.example: %s is neither in config.Env nor read by the NATS conf", n)
		}
		secret := strings.HasSuffix(n, "_PASSWORD") || strings.HasSuffix(n, "_KEY")
		if secret && vals[n] != "" {
			t.Errorf(".env.example: %s must be empty (a placeholder), got %q", n, vals[n])
		}
	}
	for _, v := range confVars {
		if v != "NATS_SERVER_NAME" && !slices.Contains(names, v) {
			t.Errorf(".env.example lacks %s, which the NATS conf reads", v)
		}
	}
	if vals["MCP_STREAM_REPLICAS"] != "3" {
		t.Errorf(".env.example MCP_STREAM_REPLICAS = %q, want 3", vals["MCP_STREAM_REPLICAS"])
	}
}

// ---------------------------------------------------------------- Dockerfile

type dockerInstr struct {
	op, args string
}

func dockerfile(t testing.TB) []dockerInstr {
	t.Helper()
	var out []dockerInstr
	var cur strings.Builder
	for _, line := range strings.Split(readFile(t, "Dockerfile"), "\n") {
		trimmed := strings.TrimSpace(line)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if cur.Len() > 0 && strings.HasPrefix(trimmed, "#") {
			continue
		}
		if strings.HasSuffix(trimmed, "\\") {
			cur.WriteString(strings.TrimSuffix(trimmed, "\\") + " ")
			continue
		}
		cur.WriteString(trimmed)
		op, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, dockerInstr{strings.ToUpper(op), strings.TrimSpace(args)})
		cur.Reset()
	}
	return out
}

func TestDockerfile(t *testing.T) {
	t.Parallel()
	ins := dockerfile(t)
	argDefaults := map[string]string{}
	var stages [][]dockerInstr
	var bases []string
	for _, in := range ins {
		switch in.op {
		case "ARG":
			for _, a := range strings.Fields(in.args) {
				k, v, _ := strings.Cut(a, "=")
				argDefaults[k] = v
			}
		case "FROM":
			f := strings.Fields(in.args)
			f = slices.DeleteFunc(f, func(s string) bool { return strings.HasPrefix(s, "--platform=") })
			base := os.Expand(f[0], func(k string) string { return argDefaults[k] })
			bases = append(bases, base)
			stages = append(stages, nil)
			continue
		}
		if len(stages) > 0 {
			stages[len(stages)-1] = append(stages[len(stages)-1], in)
		}
	}
	if len(stages) < 2 {
		t.Fatalf("want a multi-stage build, got %d stages", len(stages))
	}
	if !strings.HasPrefix(bases[0], "golang:1.26") {
		t.Errorf("build stage base %q, want golang:1.26", bases[0])
	}
	// The command that builds the service: one && step of a RUN.
	var goBuild, build string
	for _, in := range stages[0] {
		if in.op != "RUN" {
			continue
		}
		build += in.args + "\n"
		for _, step := range strings.Split(in.args, "&&") {
			if strings.Contains(step, "./cmd/mcp-service") {
				goBuild = strings.Join(strings.Fields(step), " ")
			}
		}
	}
	for _, want := range []string{"CGO_ENABLED=0 ", "go build ", "-trimpath", `-ldflags="-s -w"`, "-o /out/mcp-service ./cmd/mcp-service"} {
		if !strings.Contains(goBuild, want) {
			t.Errorf("the build of ./cmd/mcp-service (%q) lacks %q", goBuild, want)
		}
	}
	if strings.Contains(build, "./deploy/healthcheck") {
		if _, err := os.Stat("healthcheck/main.go"); err != nil {
			t.Errorf("the image builds ./deploy/healthcheck: %v", err)
		}
	}

	// The Dockerfile's own ignore file must keep what the build needs.
	needed := []string{"go.mod", "go.sum", "cmd/mcp-service/main.go", "deploy/healthcheck/main.go", "web/static/index.html", "api/openapi.json"}
	for _, line := range strings.Split(readFile(t, "Dockerfile.dockerignore"), "\n") {
		pat := strings.TrimPrefix(strings.TrimSpace(line), "**/")
		if pat == "" || strings.HasPrefix(pat, "#") || strings.HasPrefix(pat, "!") {
			continue
		}
		for _, path := range needed {
			for p := path; p != "."; p = filepath.Dir(p) {
				if ok, _ := filepath.Match(pat, p); ok || matchesAtAnyDepth(pat, filepath.Base(p), line) {
					t.Errorf("Dockerfile.dockerignore %q excludes %s, which the build needs", line, path)
				}
			}
		}
	}

	final, base := stages[len(stages)-1], bases[len(bases)-1]
	if base != "scratch" && !strings.HasPrefix(base, "gcr.io/distroless/static") {
		t.Errorf("final stage base %q, want distroless/static or scratch", base)
	}
	var user, entry, cmd string
	var exposed []string
	var copiesBinary bool
	for _, in := range final {
		switch in.op {
		case "USER":
			user = in.args
		case "ENTRYPOINT":
			entry = in.args
		case "CMD":
			cmd = in.args
		case "EXPOSE":
			exposed = append(exposed, strings.Fields(in.args)...)
		case "COPY":
			if strings.Contains(in.args, "--from=") && strings.HasSuffix(in.args, "/out/mcp-service /mcp-service") {
				copiesBinary = true
			}
		}
	}
	uid, _, _ := strings.Cut(user, ":")
	if n, err := strconv.Atoi(uid); err != nil || n == 0 {
		t.Errorf("final stage USER %q, want a numeric non-root uid (65532)", user)
	}
	if !copiesBinary {
		t.Error("final stage does not copy /out/mcp-service to /mcp-service")
	}
	if entry != `["/mcp-service"]` {
		t.Errorf("ENTRYPOINT %s, want [\"/mcp-service\"]", entry)
	}
	if cmd != `["api"]` {
		t.Errorf("CMD %s, want [\"api\"]", cmd)
	}
	if !slices.Contains(exposed, strconv.Itoa(servicePort(t))) {
		t.Errorf("EXPOSE %v lacks MCP_SERVICE_PORT %d", exposed, servicePort(t))
	}
}

// matchesAtAnyDepth applies a "**/" pattern to a path element at any depth.
func matchesAtAnyDepth(pat, base, line string) bool {
	if !strings.HasPrefix(strings.TrimSpace(line), "**/") {
		return false
	}
	ok, _ := filepath.Match(pat, base)
	return ok
}

// ---------------------------------------------------------------- README

func TestREADMECoversTheOperations(t *testing.T) {
	t.Parallel()
	readme := readFile(t, "README.md")
	for _, want := range []string{
		"docker build -f deploy/Dockerfile",
		"docker compose -f deploy/docker-compose.yml",
		"kubectl apply -k deploy/k8s",
		"sync_interval: always",
		"MCP_JOB_STREAM_SYNC",
		"MCP_STREAM_REPLICAS",
		".dockerignore",
		"mcp.results." + messages.UserToken("user_123") + ".>",
		"KEDA",
	} {
		if !strings.Contains(readme, want) {
			t.Errorf("README.md does not mention %q", want)
		}
	}
	// Variable names the README mentions must exist.
	decl := declared()
	notService := map[string]bool{
		"MCP_REQUIRE_SERVICES":   true, // read by these tests, not by the service
		"MCP_IMAGE":              true, // compose interpolation: which image to run
		messages.JobStream:       true, // NATS names, not variables
		messages.JobStatusBucket: true,
	}
	for _, m := range regexp.MustCompile(`\b(?:MCP|MONGODB|COMPOSIO|OAUTH|RATE_LIMIT)_[A-Z0-9_]+\b`).FindAllString(readme, -1) {
		if _, ok := decl[m]; !ok && !notService[m] {
			t.Errorf("README.md mentions %s, which config.Env does not declare", m)
		}
	}
}
