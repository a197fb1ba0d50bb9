package cli

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/engine"
)

func TestKeysCommand(t *testing.T) {
	data := t.TempDir()
	for _, tc := range []struct {
		args []string
		code int
		out  string
		err  string
	}{
		{args: []string{"keys", "create", "--data", data, "team-a"}, out: "created team-a"},
		{args: []string{"keys", "create", "--data", data, "team-a"}, code: exitError, err: "already exists"},
		{args: []string{"repo", "create", "--data", data, "--encryption", "KMS", "--kms-key", "team-a", "app"}},
		{args: []string{"keys", "rotate", "--data", data, "team-a"}, out: "rotated team-a to version 2"},
		{args: []string{"keys", "disable", "--data", data, "team-a"}, out: "disabled team-a"},
		{args: []string{"keys", "enable", "--data", data, "team-a"}, out: "enabled team-a"},
		{args: []string{"keys", "list", "--data", data}, out: "team-a         enabled  2        1 "},
		{args: []string{"keys", "destroy", "--data", data, "team-a"}, code: exitUsage, err: "--yes"},
		{args: []string{"keys", "destroy", "--data", data, "--yes", "team-a"}, out: "destroyed team-a"},
		{args: []string{"keys", "destroy", "--data", data, "--yes", "berth-default"}, code: exitError, err: "cannot be destroyed"},
		{args: []string{"keys", "create", "--data", data, "pkcs11:token=berth;object=x"}, code: exitError, err: "PKCS#11"},
		{args: []string{"keys", "create", "--data", data}, code: exitUsage},
		{args: []string{"keys", "frob", "--data", data}, code: exitUsage, err: "unknown subcommand"},
		{args: []string{"keys"}, code: exitUsage},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, out, errOut := run(t, "", tc.args...)
			assert.Equal(t, tc.code, code, "stdout %s\nstderr %s", out, errOut)
			assert.Contains(t, out, tc.out)
			assert.Contains(t, errOut, tc.err)
		})
	}
	code, out, _ := run(t, "", "keys", "list", "--json", "--data", data)
	require.Equal(t, exitOK, code)
	var keys []engine.KeyStatus
	require.NoError(t, json.Unmarshal([]byte(out), &keys))
	states := map[string]string{}
	for _, k := range keys {
		states[k.Name] = string(k.State)
	}
	assert.Equal(t, map[string]string{"berth-default": "enabled", "team-a": "destroyed"}, states)
}
