package manifest

import (
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/engine/internal/errdefs"
	"github.com/berthstore/berth/engine/internal/reference"
)

// Digests used in the sample manifests.
const (
	dCfg   = "sha256:b5b2b2c507a0944348e0303114d8d93aaaa081732b86451d9bce1f432a537bc7"
	dL1    = "sha256:2d473b07cdd5f0912cd6f1a703352c82b512407db6b05b43f2553732b55df3bc"
	dL2    = "sha256:7b8b6451c85f072fd0d7961c97be3fe6e2f772657d471254f6d52ad9f158a580"
	dM1    = "sha256:5b0bcabd1ed22e9fb1310cf6c2dec7cdef19f0ad69efa1f392e94a4333501270"
	dM2    = "sha256:9f2e7f0b4d8c1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f70819203"
	dEmpty = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a" // "{}"

	testSHA512 = "sha512:cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"
)

// Sample manifests, one of each kind, shaped like what docker, buildx,
// crane and oras push.
var (
	sampleOCIManifest = `{
  "schemaVersion": 2,
  "mediaType": "application/vnd.oci.image.manifest.v1+json",
  "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "` + dCfg + `", "size": 1469},
  "layers": [
    {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": "` + dL1 + `", "size": 3623807},
    {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": "` + dL2 + `", "size": 32}
  ],
  "annotations": {"org.opencontainers.image.created": "2024-01-01T00:00:00Z", "com.example.key": "value"}
}`
	sampleOCIIndex = `{
  "schemaVersion": 2,
  "mediaType": "application/vnd.oci.image.index.v1+json",
  "manifests": [
    {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "` + dM1 + `", "size": 1024,
     "platform": {"architecture": "amd64", "os": "linux"}},
    {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "` + dM2 + `", "size": 1025,
     "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}},
    {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "` + dL2 + `", "size": 840,
     "annotations": {"vnd.docker.reference.digest": "` + dM1 + `", "vnd.docker.reference.type": "attestation-manifest"},
     "platform": {"architecture": "unknown", "os": "unknown"}}
  ],
  "annotations": {"org.opencontainers.image.ref.name": "1.0"}
}`
	sampleDockerManifest = `{
   "schemaVersion": 2,
   "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
   "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 1469, "digest": "` + dCfg + `"},
   "layers": [
      {"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 3623807, "digest": "` + dL1 + `"},
      {"mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", "size": 1048576, "digest": "` + dL2 + `",
       "urls": ["https://mcr.microsoft.com/v2/windows/servercore/blobs/` + dL2 + `"]}
   ]
}`
	sampleDockerList = `{
   "schemaVersion": 2,
   "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
   "manifests": [
      {"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "size": 528, "digest": "` + dM1 + `",
       "platform": {"architecture": "amd64", "os": "linux"}},
      {"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "size": 528, "digest": "` + dM2 + `",
       "platform": {"architecture": "ppc64le", "os": "linux"}}
   ]
}`
	sampleArtifact = `{
  "schemaVersion": 2,
  "mediaType": "application/vnd.oci.image.manifest.v1+json",
  "artifactType": "application/vnd.example.sbom.v1+json",
  "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": "` + dEmpty + `", "size": 2, "data": "e30="},
  "layers": [{"mediaType": "application/spdx+json", "digest": "` + dL1 + `", "size": 12345,
              "annotations": {"org.opencontainers.image.title": "sbom.spdx.json"}}],
  "subject": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "` + dM1 + `", "size": 1024},
  "annotations": {"org.opencontainers.image.created": "2024-01-02T00:00:00Z"}
}`
	// sampleSignature is a cosign-style artifact with no artifactType:
	// the config media type stands in for it.
	sampleSignature = `{
  "schemaVersion": 2,
  "config": {"mediaType": "application/vnd.dev.cosign.artifact.sig.v1+json", "digest": "` + dCfg + `", "size": 233},
  "layers": [],
  "subject": {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": "` + dM2 + `", "size": 2000}
}`
	sampleSchema1 = `{"schemaVersion": 1, "name": "library/alpine", "tag": "latest", "architecture": "amd64",
  "fsLayers": [{"blobSum": "` + dL1 + `"}], "history": [{"v1Compatibility": "{}"}]}`
)

func TestParseManifestValid(t *testing.T) {
	tests := []struct {
		name        string
		ct          string
		payload     string
		mediaType   string
		blobs       []digest.Digest
		foreign     []digest.Digest
		children    []digest.Digest
		platforms   []string
		subject     digest.Digest
		artifact    string
		annotations map[string]string
	}{
		{
			name: "oci manifest", ct: ocispec.MediaTypeImageManifest, payload: sampleOCIManifest,
			mediaType: ocispec.MediaTypeImageManifest, blobs: []digest.Digest{dCfg, dL1, dL2},
			artifact:    ocispec.MediaTypeImageConfig,
			annotations: map[string]string{"org.opencontainers.image.created": "2024-01-01T00:00:00Z", "com.example.key": "value"},
		},
		{
			name: "oci manifest, content type from payload", payload: sampleOCIManifest,
			mediaType: ocispec.MediaTypeImageManifest, blobs: []digest.Digest{dCfg, dL1, dL2},
			artifact:    ocispec.MediaTypeImageConfig,
			annotations: map[string]string{"org.opencontainers.image.created": "2024-01-01T00:00:00Z", "com.example.key": "value"},
		},
		{
			name: "content type with parameters and case", ct: "Application/vnd.oci.image.manifest.v1+json; charset=utf-8",
			payload: sampleOCIManifest, mediaType: ocispec.MediaTypeImageManifest, blobs: []digest.Digest{dCfg, dL1, dL2},
			artifact:    ocispec.MediaTypeImageConfig,
			annotations: map[string]string{"org.opencontainers.image.created": "2024-01-01T00:00:00Z", "com.example.key": "value"},
		},
		{
			name: "oci index", ct: ocispec.MediaTypeImageIndex, payload: sampleOCIIndex,
			mediaType: ocispec.MediaTypeImageIndex, children: []digest.Digest{dM1, dM2, dL2},
			platforms:   []string{"linux/amd64", "linux/arm64/v8", "unknown/unknown"},
			annotations: map[string]string{"org.opencontainers.image.ref.name": "1.0"},
		},
		{
			name: "docker manifest with foreign layer", ct: MediaTypeDockerManifest, payload: sampleDockerManifest,
			mediaType: MediaTypeDockerManifest, blobs: []digest.Digest{dCfg, dL1}, foreign: []digest.Digest{dL2},
			artifact: "application/vnd.docker.container.image.v1+json",
		},
		{
			name: "docker manifest list", ct: MediaTypeDockerManifestList, payload: sampleDockerList,
			mediaType: MediaTypeDockerManifestList, children: []digest.Digest{dM1, dM2},
			platforms: []string{"linux/amd64", "linux/ppc64le"},
		},
		{
			name: "artifact with subject and data", ct: ocispec.MediaTypeImageManifest, payload: sampleArtifact,
			mediaType: ocispec.MediaTypeImageManifest, blobs: []digest.Digest{dEmpty, dL1}, subject: dM1,
			artifact:    "application/vnd.example.sbom.v1+json",
			annotations: map[string]string{"org.opencontainers.image.created": "2024-01-02T00:00:00Z"},
		},
		{
			name: "oci manifest without mediaType, detected", payload: sampleSignature,
			mediaType: ocispec.MediaTypeImageManifest, blobs: []digest.Digest{dCfg}, subject: dM2,
			artifact: "application/vnd.dev.cosign.artifact.sig.v1+json",
		},
		{
			name:      "oci index without mediaType, detected",
			payload:   `{"schemaVersion":2,"manifests":[]}`,
			mediaType: ocispec.MediaTypeImageIndex,
		},
		{
			name: "duplicate layer listed once", ct: ocispec.MediaTypeImageManifest,
			payload: `{"schemaVersion":2,"config":{"mediaType":"a/b","digest":"` + dCfg + `","size":1},
			  "layers":[{"mediaType":"a/c","digest":"` + dL1 + `","size":1},{"mediaType":"a/c","digest":"` + dL1 + `","size":1}]}`,
			mediaType: ocispec.MediaTypeImageManifest, blobs: []digest.Digest{dCfg, dL1}, artifact: "a/b",
		},
		{
			name: "sha512 digest", ct: ocispec.MediaTypeImageManifest,
			payload:   `{"schemaVersion":2,"config":{"mediaType":"a/b","digest":"` + testSHA512 + `","size":0},"layers":[]}`,
			mediaType: ocispec.MediaTypeImageManifest, blobs: []digest.Digest{testSHA512}, artifact: "a/b",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Parse(tt.ct, []byte(tt.payload), 4<<20)
			require.NoError(t, err)
			assert.Equal(t, tt.mediaType, p.MediaType)
			assert.Equal(t, IsIndex(tt.mediaType), p.Index)
			assert.Equal(t, tt.blobs, descriptorDigests(p.Blobs))
			assert.Equal(t, tt.foreign, descriptorDigests(p.Foreign))
			var children []digest.Digest
			var platforms []string
			for _, c := range p.Children {
				children = append(children, c.Digest)
				if c.Platform != nil {
					s := c.Platform.OS + "/" + c.Platform.Architecture
					if c.Platform.Variant != "" {
						s += "/" + c.Platform.Variant
					}
					platforms = append(platforms, s)
				}
			}
			assert.Equal(t, tt.children, children)
			assert.Equal(t, tt.platforms, platforms)
			assert.Equal(t, tt.subject, p.Subject)
			assert.Equal(t, tt.artifact, p.ArtifactType)
			assert.Equal(t, tt.annotations, p.Annotations)
			if p.Index {
				assert.Nil(t, p.Config)
			} else {
				require.NotNil(t, p.Config)
				assert.Equal(t, tt.blobs[0], p.Config.Digest)
			}
		})
	}
}

func descriptorDigests(ds []Descriptor) []digest.Digest {
	var out []digest.Digest
	for _, d := range ds {
		out = append(out, d.Digest)
	}
	return out
}

func TestParseManifestInvalid(t *testing.T) {
	img := func(config, layers string) string {
		return `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":` + config + `,"layers":` + layers + `}`
	}
	okCfg := `{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"` + dCfg + `","size":7}`
	layer := func(fields string) string {
		return `[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"` + dL1 + `","size":1` + fields + `}]`
	}
	tests := []struct {
		name    string
		ct      string
		payload string
		max     int64
		wantErr error
		msg     string // a part of the error message naming the field
	}{
		{name: "too large", ct: ocispec.MediaTypeImageManifest, payload: sampleOCIManifest, max: 100, wantErr: errdefs.ErrTooLarge},
		{name: "schema1 content type", ct: MediaTypeDockerSchema1, payload: sampleSchema1, wantErr: errdefs.ErrUnsupported},
		{name: "schema1 signed content type", ct: MediaTypeDockerSchema1Signed, payload: sampleSchema1, wantErr: errdefs.ErrUnsupported},
		{name: "schema1 payload", payload: sampleSchema1, wantErr: errdefs.ErrUnsupported},
		{name: "unknown content type", ct: "application/json", payload: sampleOCIManifest, wantErr: errdefs.ErrManifestInvalid, msg: "unknown manifest media type"},
		{name: "unknown payload media type", payload: `{"schemaVersion":2,"mediaType":"application/x-foo","config":` + okCfg + `,"layers":[]}`, wantErr: errdefs.ErrManifestInvalid, msg: "unknown manifest media type"},
		{name: "empty", ct: ocispec.MediaTypeImageManifest, payload: ``, wantErr: errdefs.ErrManifestInvalid, msg: "empty"},
		{name: "not json", ct: ocispec.MediaTypeImageManifest, payload: `{"schemaVersion":2,`, wantErr: errdefs.ErrManifestInvalid, msg: "JSON"},
		{name: "json array", ct: ocispec.MediaTypeImageManifest, payload: `[]`, wantErr: errdefs.ErrManifestInvalid, msg: "JSON"},
		{name: "null", ct: ocispec.MediaTypeImageManifest, payload: `null`, wantErr: errdefs.ErrManifestInvalid, msg: "schemaVersion missing"},
		{name: "no schemaVersion", ct: ocispec.MediaTypeImageManifest, payload: `{"config":` + okCfg + `,"layers":[]}`, wantErr: errdefs.ErrManifestInvalid, msg: "schemaVersion missing"},
		{name: "schemaVersion 3", ct: ocispec.MediaTypeImageManifest, payload: `{"schemaVersion":3,"config":` + okCfg + `,"layers":[]}`, wantErr: errdefs.ErrManifestInvalid, msg: "schemaVersion 3"},
		{name: "schemaVersion string", ct: ocispec.MediaTypeImageManifest, payload: `{"schemaVersion":"2"}`, wantErr: errdefs.ErrManifestInvalid, msg: "JSON"},
		{name: "mediaType mismatch", ct: ocispec.MediaTypeImageIndex, payload: sampleOCIManifest, wantErr: errdefs.ErrManifestInvalid, msg: "does not match Content-Type"},
		{name: "docker without mediaType field", ct: MediaTypeDockerManifest, payload: `{"schemaVersion":2,"config":` + okCfg + `,"layers":[]}`, wantErr: errdefs.ErrManifestInvalid, msg: "mediaType field missing"},
		{name: "ambiguous without mediaType", payload: `{"schemaVersion":2,"config":` + okCfg + `,"layers":[],"manifests":[]}`, wantErr: errdefs.ErrManifestInvalid, msg: "both manifests"},
		{name: "nothing without mediaType", payload: `{"schemaVersion":2}`, wantErr: errdefs.ErrManifestInvalid, msg: "neither"},
		{name: "manifest with manifests", ct: ocispec.MediaTypeImageManifest, payload: `{"schemaVersion":2,"config":` + okCfg + `,"layers":[],"manifests":[]}`, wantErr: errdefs.ErrManifestInvalid, msg: "manifests field"},
		{name: "index with config", ct: ocispec.MediaTypeImageIndex, payload: `{"schemaVersion":2,"config":` + okCfg + `,"manifests":[]}`, wantErr: errdefs.ErrManifestInvalid, msg: "config or layers"},
		{name: "index without manifests", ct: ocispec.MediaTypeImageIndex, payload: `{"schemaVersion":2}`, wantErr: errdefs.ErrManifestInvalid, msg: "manifests missing"},
		{name: "config missing", ct: ocispec.MediaTypeImageManifest, payload: `{"schemaVersion":2,"layers":[]}`, wantErr: errdefs.ErrManifestInvalid, msg: "config missing"},
		{name: "layers missing", ct: ocispec.MediaTypeImageManifest, payload: `{"schemaVersion":2,"config":` + okCfg + `}`, wantErr: errdefs.ErrManifestInvalid, msg: "layers missing"},
		{name: "config digest bad", payload: img(`{"mediaType":"a/b","digest":"sha256:1234","size":1}`, `[]`), wantErr: errdefs.ErrManifestInvalid, msg: "config.digest"},
		{name: "config digest missing", payload: img(`{"mediaType":"a/b","size":1}`, `[]`), wantErr: errdefs.ErrManifestInvalid, msg: "config.digest missing"},
		{name: "config media type missing", payload: img(`{"digest":"`+dCfg+`","size":1}`, `[]`), wantErr: errdefs.ErrManifestInvalid, msg: "config.mediaType missing"},
		{name: "config media type bad", payload: img(`{"mediaType":"nonsense","digest":"`+dCfg+`","size":1}`, `[]`), wantErr: errdefs.ErrManifestInvalid, msg: "config.mediaType"},
		{name: "config size missing", payload: img(`{"mediaType":"a/b","digest":"`+dCfg+`"}`, `[]`), wantErr: errdefs.ErrManifestInvalid, msg: "config.size missing"},
		{name: "config with urls", payload: img(`{"mediaType":"a/b","digest":"`+dCfg+`","size":1,"urls":["https://x/y"]}`, `[]`), wantErr: errdefs.ErrManifestInvalid, msg: "config: urls"},
		{name: "layer size negative", payload: img(okCfg, `[{"mediaType":"a/b","digest":"`+dL1+`","size":-1}]`), wantErr: errdefs.ErrManifestInvalid, msg: "layers[0].size -1"},
		{name: "layer size fractional", payload: img(okCfg, `[{"mediaType":"a/b","digest":"`+dL1+`","size":1.5}]`), wantErr: errdefs.ErrManifestInvalid, msg: "JSON"},
		{name: "layer md5 digest", payload: img(okCfg, `[{"mediaType":"a/b","digest":"md5:d41d8cd98f00b204e9800998ecf8427e","size":1}]`), wantErr: errdefs.ErrManifestInvalid, msg: "layers[0].digest"},
		{name: "second layer bad", payload: img(okCfg, `[{"mediaType":"a/b","digest":"`+dL1+`","size":1},{"mediaType":"a/b","digest":"sha256:XYZ","size":1}]`), wantErr: errdefs.ErrManifestInvalid, msg: "layers[1].digest"},
		{name: "layer url not http", payload: img(okCfg, layer(`,"urls":["file:///etc/passwd"]`)), wantErr: errdefs.ErrManifestInvalid, msg: "layers[0].urls[0]"},
		{name: "layer data wrong size", payload: img(okCfg, layer(`,"data":"e30="`)), wantErr: errdefs.ErrManifestInvalid, msg: "layers[0].data is 2 bytes"},
		{name: "layer data not base64", payload: img(okCfg, layer(`,"data":"!!"`)), wantErr: errdefs.ErrManifestInvalid, msg: "JSON"},
		{name: "config data wrong digest", payload: img(`{"mediaType":"a/b","digest":"`+dCfg+`","size":2,"data":"e30="}`, `[]`), wantErr: errdefs.ErrManifestInvalid, msg: "config.data does not match"},
		{name: "artifactType bad", ct: ocispec.MediaTypeImageManifest, payload: `{"schemaVersion":2,"artifactType":"x","config":` + okCfg + `,"layers":[]}`, wantErr: errdefs.ErrManifestInvalid, msg: "artifactType"},
		{name: "subject bad", ct: ocispec.MediaTypeImageManifest, payload: `{"schemaVersion":2,"subject":{"mediaType":"a/b","digest":"sha256:0","size":1},"config":` + okCfg + `,"layers":[]}`, wantErr: errdefs.ErrManifestInvalid, msg: "subject.digest"},
		{name: "index entry bad digest", ct: ocispec.MediaTypeImageIndex, payload: `{"schemaVersion":2,"manifests":[{"mediaType":"a/b","digest":"sha256:0","size":1}]}`, wantErr: errdefs.ErrManifestInvalid, msg: "manifests[0].digest"},
		{name: "index entry platform incomplete", ct: ocispec.MediaTypeImageIndex, payload: `{"schemaVersion":2,"manifests":[{"mediaType":"a/b","digest":"` + dM1 + `","size":1,"platform":{"os":"linux"}}]}`, wantErr: errdefs.ErrManifestInvalid, msg: "manifests[0].platform"},
		{name: "index entry with urls", ct: ocispec.MediaTypeImageIndex, payload: `{"schemaVersion":2,"manifests":[{"mediaType":"a/b","digest":"` + dM1 + `","size":1,"urls":["https://a/b"]}]}`, wantErr: errdefs.ErrManifestInvalid, msg: "manifests[0]: urls"},
		{name: "annotations not strings", ct: ocispec.MediaTypeImageManifest, payload: `{"schemaVersion":2,"config":` + okCfg + `,"layers":[],"annotations":{"a":1}}`, wantErr: errdefs.ErrManifestInvalid, msg: "JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			max := tt.max
			if max == 0 {
				max = 4 << 20
			}
			p, err := Parse(tt.ct, []byte(tt.payload), max)
			require.ErrorIs(t, err, tt.wantErr)
			assert.Nil(t, p)
			if tt.msg != "" {
				assert.Contains(t, err.Error(), tt.msg)
			}
		})
	}
}

func TestParseManifestNoLimit(t *testing.T) {
	big := `{"schemaVersion":2,"manifests":[],"annotations":{"x":"` + strings.Repeat("a", 5<<20) + `"}}`
	_, err := Parse(ocispec.MediaTypeImageIndex, []byte(big), 0)
	require.NoError(t, err)
	_, err = Parse(ocispec.MediaTypeImageIndex, []byte(big), 4<<20)
	require.ErrorIs(t, err, errdefs.ErrTooLarge)
}

func TestManifestValidMediaType(t *testing.T) {
	tests := []struct {
		mt string
		ok bool
	}{
		{"application/vnd.oci.image.manifest.v1+json", true},
		{"text/plain; charset=utf-8", true},
		{"a/b", true},
		{"application/", false},
		{"/json", false},
		{"application", false},
		{"application/json/x", false},
		{"app lication/json", false},
		{"application/" + strings.Repeat("x", 128), false},
	}
	for _, tt := range tests {
		t.Run(tt.mt, func(t *testing.T) {
			assert.Equal(t, tt.ok, validMediaType(tt.mt))
		})
	}
}

// FuzzParseManifest checks that parseManifest never panics and that what
// it accepts is consistent: a known media type, valid digests, no
// negative sizes, blobs only in image manifests, children only in indexes.
func FuzzParseManifest(f *testing.F) {
	for _, s := range []struct{ ct, p string }{
		{ocispec.MediaTypeImageManifest, sampleOCIManifest},
		{ocispec.MediaTypeImageIndex, sampleOCIIndex},
		{MediaTypeDockerManifest, sampleDockerManifest},
		{MediaTypeDockerManifestList, sampleDockerList},
		{ocispec.MediaTypeImageManifest, sampleArtifact},
		{"", sampleSignature},
		{MediaTypeDockerSchema1, sampleSchema1},
	} {
		f.Add(s.ct, []byte(s.p))
	}
	f.Fuzz(func(t *testing.T, ct string, payload []byte) {
		p, err := Parse(ct, payload, 1<<20)
		if err != nil {
			require.Nil(t, p)
			return
		}
		require.True(t, IsManifest(p.MediaType), p.MediaType)
		require.Equal(t, IsIndex(p.MediaType), p.Index)
		all := append(append([]Descriptor(nil), p.Blobs...), p.Foreign...)
		for _, c := range p.Children {
			all = append(all, c.Descriptor)
		}
		if p.SubjectDescriptor != nil {
			all = append(all, *p.SubjectDescriptor)
			require.Equal(t, p.SubjectDescriptor.Digest, p.Subject)
		}
		for _, d := range all {
			_, err := reference.ParseDigest(d.Digest.String())
			require.NoError(t, err)
			require.GreaterOrEqual(t, d.Size, int64(0))
			require.True(t, validMediaType(d.MediaType))
		}
		if p.Index {
			require.Empty(t, p.Blobs)
			require.Nil(t, p.Config)
		} else {
			require.Empty(t, p.Children)
			require.NotNil(t, p.Config)
			require.Equal(t, *p.Config, p.Blobs[0])
		}
	})
}
