package engine

// The preparer: tables of contents of pushed images' layers built in the
// background (Options.PrepareLayersOnPush), for the FUSE view.

import (
	"context"

	"github.com/opencontainers/go-digest"
)

// prepareJob asks for the layer tables of contents of one pushed manifest.
type prepareJob struct {
	repo string
	d    digest.Digest
}

// startPreparer runs PrepareImage for pushed manifests, one at a time, in
// the background (Options.PrepareLayersOnPush), so that the FUSE view
// lists a freshly pushed image at once.
func (e *Engine) startPreparer() {
	if !e.opts.PrepareLayersOnPush {
		return
	}
	e.prepare = make(chan prepareJob, 256)
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		for {
			select {
			case <-e.stop:
				return
			case j := <-e.prepare:
				ctx, cancel := context.WithCancel(context.Background())
				go func() {
					select {
					case <-e.stop:
						cancel()
					case <-ctx.Done():
					}
				}()
				if err := e.PrepareImage(ctx, j.repo, string(j.d), nil); err != nil {
					e.log.Warn("indexing pushed image for the FUSE view", "repository", j.repo, "digest", j.d, "err", err)
				}
				cancel()
			}
		}
	}()
}

// queuePrepare queues a pushed manifest for startPreparer's worker; when
// the queue is full the image is indexed on first use instead.
func (e *Engine) queuePrepare(repo string, d digest.Digest) {
	if e.prepare == nil {
		return
	}
	select {
	case e.prepare <- prepareJob{repo, d}:
	default:
	}
}
