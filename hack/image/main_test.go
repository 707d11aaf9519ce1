package main

import (
	"archive/tar"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// The archive goes to a registry with the one command the README gives
// (skopeo copy --all), every platform with it, under the digest make
// image printed; and building twice gives that digest twice.
func TestArchivePushesWithItsDigest(t *testing.T) {
	skopeo, err := exec.LookPath("skopeo")
	if err != nil {
		t.Fatal("skopeo not installed (hack/build-cluster-bins.sh installs it)")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "kmetrics")
	if err := os.WriteFile(bin, []byte("#!/bin/true\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SOURCE_DATE_EPOCH", "1764633600")
	build := func(out string) string {
		t.Helper()
		if err := run(out, "ghcr.io/kmetrics/kmetrics", "v0.0.0-test", "https://github.com/kmetrics/kmetrics", "abc", "kmetrics", nil,
			[]string{"linux/arm64=" + bin, "linux/amd64=" + bin}); err != nil {
			t.Fatal(err)
		}
		p, err := layout.FromPath(out)
		if err != nil {
			t.Fatal(err)
		}
		outer, _ := p.ImageIndex()
		m, _ := outer.IndexManifest()
		if len(m.Manifests) != 1 {
			t.Fatalf("index.json names %d things, want the one multi-platform index", len(m.Manifests))
		}
		return m.Manifests[0].Digest.String()
	}
	first, second := build(filepath.Join(dir, "a")), build(filepath.Join(dir, "b"))
	if first != second {
		t.Fatalf("the same inputs gave %s and %s", first, second)
	}

	reg := httptest.NewServer(registry.New())
	defer reg.Close()
	host := strings.TrimPrefix(reg.URL, "http://")
	dest := host + "/kmetrics:v0.0.0-test"
	out, err := exec.Command(skopeo, "copy", "--all", "--dest-tls-verify=false",
		"oci-archive:"+filepath.Join(dir, "a.tar"), "docker://"+dest).CombinedOutput()
	if err != nil {
		t.Fatalf("skopeo copy: %v\n%s", err, out)
	}
	ref, err := name.ParseReference(dest, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := remote.Index(ref)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := idx.Digest()
	if d.String() != first {
		raw, _ := idx.RawManifest()
		p, _ := layout.FromPath(filepath.Join(dir, "a"))
		local, _ := p.ImageIndex()
		m, _ := local.IndexManifest()
		built, _ := local.ImageIndex(m.Manifests[0].Digest)
		builtRaw, _ := built.RawManifest()
		t.Errorf("the registry holds %s, make image printed %s:\n%s\n%s", d, first, raw, builtRaw)
	}
	m, _ := idx.IndexManifest()
	var platforms []string
	for _, desc := range m.Manifests {
		platforms = append(platforms, desc.Platform.String())
	}
	if strings.Join(platforms, " ") != "linux/amd64 linux/arm64" {
		t.Errorf("platforms in the registry: %v", platforms)
	}
}

// -add puts more executables in the one layer, under their directories,
// and gives the image a PATH (the e2e consumer image: consume-cpu, stress);
// a path out of the image is refused.
func TestExtraFiles(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "workload")
	if err := os.WriteFile(bin, []byte("#!/bin/true\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	var extra extraFiles
	for _, v := range []string{"consume-cpu/consume-cpu=" + bin, "bin/stress=" + bin} {
		if err := extra.Set(v); err != nil {
			t.Fatal(err)
		}
	}
	for _, bad := range []string{"/bin/x=" + bin, "../x=" + bin, "x", "=" + bin} {
		if err := extra.Set(bad); err == nil {
			t.Errorf("-add %q accepted", bad)
		}
	}
	img, err := image(bin, "workload", extra, "linux", "amd64", time.Unix(0, 0), nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := img.ConfigFile()
	if strings.Join(cfg.Config.Env, " ") != "PATH=/bin" {
		t.Errorf("Env %v, want PATH=/bin", cfg.Config.Env)
	}
	layers, _ := img.Layers()
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var names []string
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		names = append(names, h.Name)
	}
	if got, want := strings.Join(names, " "), "workload consume-cpu/ consume-cpu/consume-cpu bin/ bin/stress"; got != want {
		t.Errorf("layer holds %q, want %q", got, want)
	}
}
