package childproc

import "syscall"

// Attr makes the kernel kill a child when its parent dies, even by
// SIGKILL, so no server outlives the run. For commands started elsewhere
// (exec.CommandContext) too.
func Attr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
