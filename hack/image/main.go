// Command image builds kmetrics' container image without a Docker daemon:
// the static binaries of each platform in one layer each, on no base (the
// binary needs nothing: no libc, no shell, the cluster CA comes from the
// service account), run as 65534:65534, labelled with version and source.
// It writes an OCI image layout and an OCI archive of it (podman load,
// skopeo copy oci-archive:…) and prints the index digest. The same
// binaries give the same digest: every time in the image is
// SOURCE_DATE_EPOCH (the commit's time), every file's owner and mode fixed.
//
//	go run . -out DIR -version V -source URL -revision SHA linux/amd64=BIN linux/arm64=BIN
package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

func main() {
	out := flag.String("out", "_output/image", "directory of the OCI layout; the archive is <out>.tar")
	version := flag.String("version", "dev", "image version label")
	source := flag.String("source", "https://github.com/kmetrics/kmetrics", "source label")
	revision := flag.String("revision", "", "revision label (the commit)")
	name := flag.String("name", "ghcr.io/kmetrics/kmetrics", "repository the image is named in (podman load names it <name>:<version>)")
	file := flag.String("file", "kmetrics", "the binary's name in the image, /<file>, its entrypoint (the e2e suite's real node builds its workload image with another)")
	var extra extraFiles
	flag.Var(&extra, "add", "PATH=FILE: also put FILE at /PATH in the image, executable (repeatable; the e2e suite's consumer image adds consume-cpu and stress); the image then has PATH=/bin")
	flag.Parse()
	if err := run(*out, *name, *version, *source, *revision, *file, extra, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

// extraFiles are -add PATH=FILE pairs, in the order given.
type extraFiles []string

func (e *extraFiles) String() string { return strings.Join(*e, ",") }

func (e *extraFiles) Set(v string) error {
	p, f, ok := strings.Cut(v, "=")
	if !ok || p == "" || f == "" || strings.HasPrefix(p, "/") || strings.Contains(p, "..") {
		return fmt.Errorf("%q: want PATH=FILE with PATH relative to / and without ..", v)
	}
	*e = append(*e, v)
	return nil
}

func run(out, name, version, source, revision, file string, extra extraFiles, platformBins []string) error {
	if len(platformBins) == 0 {
		return fmt.Errorf("no platform=binary given")
	}
	created := time.Unix(0, 0).UTC()
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		sec, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("SOURCE_DATE_EPOCH: %w", err)
		}
		created = time.Unix(sec, 0).UTC()
	}
	labels := map[string]string{
		"org.opencontainers.image.title":    file,
		"org.opencontainers.image.version":  version,
		"org.opencontainers.image.source":   source,
		"org.opencontainers.image.revision": revision,
		"org.opencontainers.image.licenses": "Apache-2.0",
		"org.opencontainers.image.created":  created.Format(time.RFC3339),
	}
	var index v1.ImageIndex = empty.Index
	index = mutate.IndexMediaType(index, types.OCIImageIndex)
	sort.Strings(platformBins)
	for _, pb := range platformBins {
		platform, bin, ok := strings.Cut(pb, "=")
		osName, arch, ok2 := strings.Cut(platform, "/")
		if !ok || !ok2 {
			return fmt.Errorf("%q: want os/arch=binary", pb)
		}
		img, err := image(bin, file, extra, osName, arch, created, labels)
		if err != nil {
			return fmt.Errorf("%s: %w", platform, err)
		}
		index = mutate.AppendManifests(index, mutate.IndexAddendum{
			Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: osName, Architecture: arch}},
		})
	}
	index, err := withoutArtifactTypes(index)
	if err != nil {
		return err
	}
	_ = os.RemoveAll(out)
	// The layout's index.json names one thing, the multi-platform index:
	// skopeo copy --all and podman load take it by that name (and pick
	// their platform from it).
	p, err := layout.Write(out, empty.Index)
	if err != nil {
		return err
	}
	if err := p.AppendIndex(index, layout.WithAnnotations(map[string]string{
		"org.opencontainers.image.ref.name": name + ":" + version,
	})); err != nil {
		return err
	}
	if err := archive(out, out+".tar", created); err != nil {
		return err
	}
	digest, err := index.Digest()
	if err != nil {
		return err
	}
	fmt.Println(digest)
	return nil
}

// image is one platform's image: a single layer holding /<file> and the
// extra files.
func image(bin, file string, extra extraFiles, osName, arch string, created time.Time, labels map[string]string) (v1.Image, error) {
	var layerTar bytes.Buffer
	tw := tar.NewWriter(&layerTar)
	dirs := map[string]bool{}
	for _, pf := range append([]string{file + "=" + bin}, extra...) {
		p, f, _ := strings.Cut(pf, "=")
		content, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		// Parent directories first, once each, so every runtime unpacks
		// the same tree.
		for d := path.Dir(p); d != "." && !dirs[d]; d = path.Dir(d) {
			dirs[d] = true
			if err := tw.WriteHeader(&tar.Header{Name: d + "/", Mode: 0o755, ModTime: created, Typeflag: tar.TypeDir, Format: tar.FormatPAX}); err != nil {
				return nil, err
			}
		}
		if err := tw.WriteHeader(&tar.Header{Name: p, Mode: 0o555, Size: int64(len(content)), ModTime: created, Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(content); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	raw := layerTar.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(raw)), nil },
		tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(mutate.MediaType(empty.Image, types.OCIManifestSchema1), layer)
	if err != nil {
		return nil, err
	}
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture, cfg.Created = osName, arch, v1.Time{Time: created}
	cfg.Config.Entrypoint = []string{"/" + file}
	cfg.Config.User = "65534:65534"
	if len(extra) > 0 {
		cfg.Config.Env = []string{"PATH=/bin"}
	}
	cfg.Config.Labels = labels
	cfg.History = []v1.History{{Created: v1.Time{Time: created}, CreatedBy: "hack/image: /" + file + " (static, CGO_ENABLED=0)"}}
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		return nil, err
	}
	return mutate.CreatedAt(img, v1.Time{Time: created})
}

// archive tars the layout (an OCI archive) with fixed times and owners.
func archive(dir, path string, created time.Time) error {
	var files []string
	err := filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && info.Mode().IsRegular() {
			files = append(files, p)
		}
		return err
	})
	if err != nil {
		return err
	}
	sort.Strings(files)
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if err := tw.WriteHeader(&tar.Header{Name: filepath.ToSlash(rel), Mode: 0o644, Size: int64(len(b)), ModTime: created, Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
			return err
		}
		if _, err := tw.Write(b); err != nil {
			return err
		}
	}
	return tw.Close()
}

// withoutArtifactTypes drops the artifactType go-containerregistry writes
// into the index's descriptors of plain images: older tools (Debian's
// skopeo) do not know the field and re-encode the index without it when
// they push, so the registry would hold another digest than the one
// printed.
func withoutArtifactTypes(ii v1.ImageIndex) (v1.ImageIndex, error) {
	m, err := ii.IndexManifest()
	if err != nil {
		return nil, err
	}
	m = m.DeepCopy()
	for i := range m.Manifests {
		m.Manifests[i].ArtifactType = ""
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return &rawIndex{inner: ii, raw: raw, manifest: m}, nil
}

// rawIndex is an index whose manifest bytes are given.
type rawIndex struct {
	inner    v1.ImageIndex
	raw      []byte
	manifest *v1.IndexManifest
}

var _ v1.ImageIndex = (*rawIndex)(nil)

func (r *rawIndex) MediaType() (types.MediaType, error)         { return r.manifest.MediaType, nil }
func (r *rawIndex) Image(h v1.Hash) (v1.Image, error)           { return r.inner.Image(h) }
func (r *rawIndex) ImageIndex(h v1.Hash) (v1.ImageIndex, error) { return r.inner.ImageIndex(h) }
func (r *rawIndex) RawManifest() ([]byte, error)                { return r.raw, nil }
func (r *rawIndex) IndexManifest() (*v1.IndexManifest, error)   { return r.manifest, nil }
func (r *rawIndex) Size() (int64, error)                        { return int64(len(r.raw)), nil }
func (r *rawIndex) Digest() (v1.Hash, error) {
	h, _, err := v1.SHA256(bytes.NewReader(r.raw))
	return h, err
}
