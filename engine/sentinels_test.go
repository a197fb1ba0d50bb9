package engine

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/berthstore/berth/engine/internal/errdefs"
	"github.com/berthstore/berth/index"
)

// The sentinels the engine shares with its internal packages are the very
// values it exports, so that an error made deep inside (a manifest that
// does not parse) matches errors.Is(err, engine.ErrManifestInvalid).
func TestSharedSentinelsAreExported(t *testing.T) {
	for name, pair := range map[string][2]error{
		"ErrNameInvalid":         {errdefs.ErrNameInvalid, ErrNameInvalid},
		"ErrTagInvalid":          {errdefs.ErrTagInvalid, ErrTagInvalid},
		"ErrDigestInvalid":       {errdefs.ErrDigestInvalid, ErrDigestInvalid},
		"ErrTooLarge":            {errdefs.ErrTooLarge, ErrTooLarge},
		"ErrManifestInvalid":     {errdefs.ErrManifestInvalid, ErrManifestInvalid},
		"ErrUnsupported":         {errdefs.ErrUnsupported, ErrUnsupported},
		"ErrCorrupt":             {errdefs.ErrCorrupt, ErrCorrupt},
		"ErrInvalidArgument":     {errdefs.ErrInvalidArgument, ErrInvalidArgument},
		"ErrLayerRefused":        {errdefs.ErrLayerRefused, ErrLayerRefused},
		"ErrMetadataUnavailable": {index.ErrUnavailable, ErrMetadataUnavailable},
	} {
		assert.Same(t, pair[0], pair[1], name)
	}
}
