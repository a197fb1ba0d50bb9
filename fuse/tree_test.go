package fuse

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/engine/enginetest"
)

func TestSymlinkTarget(t *testing.T) {
	tests := []struct {
		name, target, want string
		keep               bool
	}{
		{"etc/localtime", "/usr/share/zoneinfo/UTC", "../usr/share/zoneinfo/UTC", false},
		{"bin", "/usr/bin", "usr/bin", false},
		{"a/b/root", "/", "../..", false},
		{"top", "/", ".", false},
		{"a/rel", "../x", "../x", false},
		{"etc/localtime", "/usr/share/zoneinfo/UTC", "/usr/share/zoneinfo/UTC", true},
	}
	for _, tt := range tests {
		t.Run(tt.name+"->"+tt.target, func(t *testing.T) {
			m := newMerger(10, enginetest.QuietLogger(), tt.keep)
			got := m.symlinkTarget(&engine.TOCEntry{Name: tt.name, Linkname: tt.target})
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestMergerCapsEntries(t *testing.T) {
	m := newMerger(2, enginetest.QuietLogger(), false)
	toc := &engine.LayerTOC{Entries: []engine.TOCEntry{
		{Name: "a", Type: engine.TOCReg}, {Name: "b", Type: engine.TOCReg}, {Name: "c", Type: engine.TOCReg},
	}}
	assert.ErrorIs(t, m.apply(0, toc), errTreeTooLarge)
}
