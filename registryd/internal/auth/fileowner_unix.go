//go:build unix

package auth

import (
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// checkOwner refuses a file that this process's (effective) user does
// not own: another user could have written the key it holds.
func checkOwner(fi fs.FileInfo) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	if uid := os.Geteuid(); int64(st.Uid) != int64(uid) {
		return fmt.Errorf("owned by uid %d, not by this process's user (uid %d); chown it to the daemon's user", st.Uid, uid)
	}
	return nil
}
