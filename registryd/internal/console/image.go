package console

// An image: its manifest, config, history and layers (sizes as pushed
// and as stored, and the ratio between them).

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/opencontainers/go-digest"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/registryd/internal/authz"
)

// maxConfigShown bounds the config bytes the image page reads.
const maxConfigShown = 1 << 20

// imageData is the image page's.
type imageData struct {
	Repo      string
	Ref       string
	Detail    *engine.ImageDetail
	Manifest  string
	Config    string
	Platform  string
	History   []historyEntry
	Layers    []layerRow
	Index     bool
	Children  []childRow
	Tags      []string
	Referrers []engine.Referrer
	// OtherTags are the repository's other tags (the diff's choices).
	OtherTags []string
	CanScan   bool
	// Replication is the image's replication status at each destination
	// it was queued for (shown with ecr:DescribeImageReplicationStatus).
	Replication    []engine.ImageReplicationStatus
	CanReplication bool
}

// layerRow is one layer with how it is stored.
type layerRow struct {
	Digest    digest.Digest
	MediaType string
	Size      int64
	Stored    int64
	Archived  bool
}

// childRow is one image of an index.
type childRow struct {
	Digest   digest.Digest
	Platform string
	Size     int64
}

// historyEntry is one step of the config's history.
type historyEntry struct {
	Created    string `json:"created"`
	CreatedBy  string `json:"created_by"`
	Comment    string `json:"comment"`
	EmptyLayer bool   `json:"empty_layer"`
}

// imageConfig is what the console reads of an image config.
type imageConfig struct {
	OS           string         `json:"os"`
	Architecture string         `json:"architecture"`
	Variant      string         `json:"variant"`
	History      []historyEntry `json:"history"`
}

func (c imageConfig) platform() platform {
	return platform{OS: c.OS, Architecture: c.Architecture, Variant: c.Variant}
}

// ociManifest is what the console reads of an image manifest or index.
type ociManifest struct {
	Config *struct {
		MediaType string        `json:"mediaType"`
		Digest    digest.Digest `json:"digest"`
		Size      int64         `json:"size"`
	} `json:"config"`
	Layers []struct {
		MediaType string        `json:"mediaType"`
		Digest    digest.Digest `json:"digest"`
		Size      int64         `json:"size"`
	} `json:"layers"`
	Manifests []struct {
		Digest   digest.Digest `json:"digest"`
		Size     int64         `json:"size"`
		Platform *platform     `json:"platform"`
	} `json:"manifests"`
}

// readConfig reads and decodes the config of the image manifest payload
// (at most limit bytes).
func (c *Console) readConfig(r *http.Request, repo string, payload []byte, limit int64) (imageConfig, error) {
	raw, err := c.configBytes(r, repo, payload, limit)
	if err != nil {
		return imageConfig{}, err
	}
	var cfg imageConfig
	err = json.Unmarshal(raw, &cfg)
	return cfg, err
}

// configBytes reads the config blob of the image manifest payload, at
// most limit bytes.
func (c *Console) configBytes(r *http.Request, repo string, payload []byte, limit int64) ([]byte, error) {
	var m ociManifest
	if err := json.Unmarshal(payload, &m); err != nil || m.Config == nil {
		return nil, fmt.Errorf("%w: no config", engine.ErrNotAnImage)
	}
	br, err := c.store.OpenBlob(r.Context(), repo, m.Config.Digest)
	if err != nil {
		return nil, err
	}
	defer br.Close()
	return io.ReadAll(io.LimitReader(br, limit))
}

func (c *Console) imagePage(w http.ResponseWriter, r *http.Request, v *visit) error {
	ctx := r.Context()
	repo, ref := r.URL.Query().Get("repo"), r.URL.Query().Get("ref")
	if err := engine.ValidateRepositoryName(repo); err != nil {
		return err
	}
	if ref == "" {
		return badRequest("no image reference")
	}
	if err := c.require(r, v, append(one(authz.DescribeImages, authz.Repository(repo)), pullAccess(repo)...)); err != nil {
		return err
	}
	det, err := c.store.Image(ctx, repo, ref)
	if err != nil {
		return err
	}
	m, err := c.store.InspectManifest(ctx, repo, string(det.Digest))
	if err != nil {
		return err
	}
	d := imageData{Repo: repo, Ref: ref, Detail: det, Manifest: pretty(m.Payload), Tags: det.Tags,
		CanScan: c.can(r, v, one(authz.DescribeImageScanFindings, authz.Repository(repo)))}
	var om ociManifest
	_ = json.Unmarshal(m.Payload, &om)
	if isIndex(m.MediaType) || om.Config == nil {
		d.Index = true
		for _, ch := range om.Manifests {
			row := childRow{Digest: ch.Digest, Size: ch.Size}
			if ch.Platform != nil {
				row.Platform = ch.Platform.String()
			}
			d.Children = append(d.Children, row)
		}
	} else {
		raw, err := c.configBytes(r, repo, m.Payload, maxConfigShown)
		if err == nil {
			d.Config = pretty(raw)
			var cfg imageConfig
			if json.Unmarshal(raw, &cfg) == nil {
				d.History = cfg.History
				d.Platform = cfg.platform().String()
			}
		}
		for _, l := range om.Layers {
			row := layerRow{Digest: l.Digest, MediaType: l.MediaType, Size: l.Size}
			if st, err := c.store.BlobStorage(ctx, repo, l.Digest); err == nil {
				row.Stored, row.Archived = st.StoredSize, st.Archived
			}
			d.Layers = append(d.Layers, row)
		}
	}
	if c.can(r, v, one(authz.DescribeImageReplicationStatus, authz.Repository(repo))) {
		d.CanReplication = true
		if _, st, err := c.store.ImageReplicationStatuses(ctx, repo, string(det.Digest)); err == nil {
			d.Replication = st
		}
	}
	if refs, err := c.store.AllReferrers(ctx, repo, det.Digest, ""); err == nil {
		d.Referrers = refs
	}
	if imgs, err := c.store.Images(ctx, repo); err == nil {
		for _, im := range imgs {
			if im.Digest == det.Digest {
				continue
			}
			d.OtherTags = append(d.OtherTags, im.Tags...)
		}
	}
	c.render(w, r, v, http.StatusOK, "image", repo+"@"+shortDigest(det.Digest), d)
	return nil
}

// pretty indents JSON (as it is, when it does not parse).
func pretty(b []byte) string {
	var buf bytes.Buffer
	if json.Indent(&buf, b, "", "  ") != nil {
		return string(b)
	}
	return buf.String()
}
