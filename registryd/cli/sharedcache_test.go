package cli

import (
	"flag"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sharedCacheTTL: the flag and the file reach the engine; without
// metadata, or negative, it is refused.
func TestSharedCacheTTL(t *testing.T) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	c, err := parseFlags(fs, []string{"--metadata", "postgres://u@127.0.0.1:5432/db", "--shared-cache-ttl", "2s"}, bindServeFlags)
	require.NoError(t, err)
	require.NoError(t, c.Validate())
	assert.Equal(t, Duration(2*time.Second), c.SharedCacheTTL)

	fc := DefaultConfig()
	require.NoError(t, parseConfig([]byte("metadata: postgres://u@127.0.0.1:5432/db\nsharedCacheTTL: 1s\n"), "f", &fc))
	require.NoError(t, fc.Validate())
	assert.Equal(t, Duration(time.Second), fc.SharedCacheTTL)

	for _, bad := range []Config{
		{SharedCacheTTL: Duration(time.Second)},
		{Metadata: "postgres://u@127.0.0.1:5432/db", SharedCacheTTL: Duration(-time.Second)},
	} {
		c := DefaultConfig()
		c.Metadata, c.SharedCacheTTL = bad.Metadata, bad.SharedCacheTTL
		err := c.Validate()
		require.ErrorIs(t, err, ErrConfig)
		assert.Contains(t, err.Error(), "sharedCacheTTL")
	}
}
