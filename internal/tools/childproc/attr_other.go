//go:build !linux

package childproc

import "syscall"

// Attr: only Linux can tie a child's life to its parent's; elsewhere the
// deferred stop is all there is.
func Attr() *syscall.SysProcAttr { return nil }
