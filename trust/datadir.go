package trust

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// dataDirMode is the only mode postern accepts for data_dir: it holds the
// private keys of the interception and self-signed CAs and the ACME account,
// so no other user may list it, let alone read it.
const dataDirMode fs.FileMode = 0o700

// PrepareDataDir makes sure dir exists and is open to its owner only. A
// missing dir is created with mode 0700; an existing one whose group or
// other permission bits are set is tightened to its owner's bits (0755
// becomes 0700). When postern cannot change the mode (another user's
// directory, a read-only mount) it returns an error naming dir, its mode and
// the command that fixes it, instead of keeping keys where others can reach
// them.
func PrepareDataDir(dir string) error {
	if dir == "" {
		return errors.New("data_dir is not set")
	}
	fi, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, dataDirMode); err != nil {
			return fmt.Errorf("creating data_dir %s: %w", dir, err)
		}
		// MkdirAll's mode is filtered by the umask; state it exactly.
		if err := os.Chmod(dir, dataDirMode); err != nil {
			return fmt.Errorf("creating data_dir %s: %w", dir, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("data_dir %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("data_dir %s is not a directory", dir)
	}
	perm := fi.Mode().Perm()
	if perm&^dataDirMode == 0 {
		return nil
	}
	if err := os.Chmod(dir, perm&dataDirMode); err != nil {
		return fmt.Errorf("data_dir %s has mode %04o, open to other users, and postern cannot tighten it (%w): "+
			"run `chmod 700 %s` as its owner, or point data_dir at a directory postern owns", dir, perm, err, dir)
	}
	return nil
}
