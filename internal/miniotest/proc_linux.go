package miniotest

import "syscall"

// procAttr puts the server in its own process group and has the kernel
// kill it with the test process, also when that dies without running its
// cleanups (a panic, a timeout).
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
