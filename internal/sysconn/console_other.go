//go:build !linux

package sysconn

import "os"

// Console writes through the *os.File elsewhere than Linux.
type Console struct{ f *os.File }

// NewConsole returns a Console for f.
func NewConsole(f *os.File) *Console { return &Console{f: f} }

// Raw reports whether writes try a raw non-blocking system call first:
// never here.
func (c *Console) Raw() bool { return false }

// Write writes all of p through the file.
func (c *Console) Write(p []byte) (int, error) { return c.f.Write(p) }

// Close closes nothing: the file is the caller's.
func (c *Console) Close() error { return nil }
