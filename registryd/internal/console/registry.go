package console

// The registry's pages: creation templates and pull-through cache rules
// (read), and the store's health (sizes, dedupe, the last collection,
// keys and their states).

import (
	"net/http"
	"time"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/registryd/internal/authz"
)

// registryData is the templates-and-rules page's.
type registryData struct {
	Templates              []engine.CreationTemplate
	Rules                  []engine.PullThroughCacheRule
	CanTemplates, CanRules bool
}

func (c *Console) registryPage(w http.ResponseWriter, r *http.Request, v *visit) error {
	d := registryData{
		CanTemplates: c.can(r, v, one(authz.DescribeRepositoryCreationTemplates, authz.Registry)),
		CanRules:     c.can(r, v, one(authz.DescribePullThroughCacheRules, authz.Registry)),
	}
	if !d.CanTemplates && !d.CanRules {
		return c.require(r, v, one(authz.DescribeRepositoryCreationTemplates, authz.Registry))
	}
	var err error
	if d.CanTemplates {
		if d.Templates, err = c.store.CreationTemplates(r.Context()); err != nil {
			return err
		}
	}
	if d.CanRules {
		if d.Rules, err = c.store.PullThroughCacheRules(r.Context()); err != nil {
			return err
		}
	}
	c.render(w, r, v, http.StatusOK, "registry", "Templates and pull-through rules", d)
	return nil
}

// healthData is the store health page's.
type healthData struct {
	Stats engine.StoreStats
	// Referenced sums the repositories' image sizes; Dedupe is it over
	// the bytes stored once (how much dedupe saves).
	Referenced int64
	Dedupe     string
	Compress   string
	GC         engine.GCStats
	LastGC     time.Time
	Keys       []engine.KeyStatus
	CanKeys    bool
}

func (c *Console) healthPage(w http.ResponseWriter, r *http.Request, v *visit) error {
	ctx := r.Context()
	if err := c.require(r, v, one(authz.DescribeRegistry, authz.Registry)); err != nil {
		return err
	}
	st, err := c.store.StoreStats(ctx)
	if err != nil {
		return err
	}
	d := healthData{Stats: st, GC: c.store.GCStats(), Compress: ratio(st.Bytes, st.StoredBytes)}
	d.LastGC = d.GC.LastGCRun
	names, err := c.store.ListRepositories(ctx, "", 0)
	if err != nil {
		return err
	}
	for _, s := range c.summaries.get(ctx, names, false) {
		d.Referenced += s.Size
	}
	d.Dedupe = ratio(d.Referenced, st.Bytes)
	if c.can(r, v, one(authz.KMSListKeys, authz.Registry)) {
		d.CanKeys = true
		keys, err := c.store.Keys(ctx)
		if err != nil {
			return err
		}
		for _, k := range keys {
			if c.can(r, v, one(authz.KMSDescribeKey, authz.Key(k.Name))) {
				d.Keys = append(d.Keys, k)
			}
		}
	}
	c.render(w, r, v, http.StatusOK, "health", "Store health", d)
	return nil
}
