package trust

import (
	"fmt"
	"os"
)

// checkStoredCA refuses a stored CA whose files someone else could have
// planted or changed: a key or certificate that is not a regular file (a
// symbolic link can point anywhere), that belongs to another user, or that
// group or others may write. Such a CA may be one an attacker knows the key
// of, and whoever knows it can read every intercepted tunnel. A key that
// group or others may only read is tightened to 0600: it was exposed, which
// the error cannot undo, but it was not replaced. data_dir itself is
// tightened by PrepareDataDir before this runs.
func checkStoredCA(certFile, keyFile string) error {
	for _, f := range []struct {
		name  string
		isKey bool
	}{{certFile, false}, {keyFile, true}} {
		fi, err := os.Lstat(f.name)
		if err != nil {
			return err
		}
		if !fi.Mode().IsRegular() {
			return fmt.Errorf("%s is not a regular file (%s): postern does not follow links or devices for its keys; "+
				"move it away and let postern make a new CA", f.name, fi.Mode().Type())
		}
		if uid, ok := fileOwner(fi); ok && uid != os.Getuid() {
			return fmt.Errorf("%s belongs to uid %d, not to postern's uid %d: another user could have planted it; "+
				"move it away and let postern make a new CA", f.name, uid, os.Getuid())
		}
		perm := fi.Mode().Perm()
		if perm&0o022 != 0 {
			return fmt.Errorf("%s has mode %04o: group or others may replace it; move it away and let postern make a new CA",
				f.name, perm)
		}
		if f.isKey && perm&0o044 != 0 {
			if err := os.Chmod(f.name, perm&0o600); err != nil {
				return fmt.Errorf("%s has mode %04o, readable by other users, and postern cannot tighten it (%w): "+
					"run `chmod 600 %s` as its owner", f.name, perm, err, f.name)
			}
		}
	}
	return nil
}
