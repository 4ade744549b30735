package config

import (
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/postern/postern/trust"
)

// Provisioning: the only code in this package that reads files or the
// environment (the config file, env: and file: secrets, CA files). Load
// decodes, then validates (pure: where a value needs what is outside the
// file, validation only registers a provisioning step with v.later), then
// provisions by running those steps in order. Problems of all three phases
// are reported together, sorted by position.

// LoadFile reads and validates a config file.
func LoadFile(path string, opts LoadOptions) (*Config, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	return Load(path, src, opts)
}

// ReadAdminListen returns [server] admin_listen of the config file at path
// (DefaultAdminListen when unset, AdminOff when off) without validating the
// rest of it: `postern health` and `postern reload` find a running postern
// by it even when the file has been broken since that postern started.
func ReadAdminListen(path string) (string, error) {
	var fc struct {
		Server struct {
			AdminListen string `toml:"admin_listen"`
		} `toml:"server"`
	}
	if _, err := toml.DecodeFile(path, &fc); err != nil {
		return "", fmt.Errorf("reading admin_listen from %s: %w", path, err)
	}
	if fc.Server.AdminListen == "" {
		return DefaultAdminListen, nil
	}
	return fc.Server.AdminListen, nil
}

// secret resolves s; with SkipSecrets it only checks the form of an env:
// or file: reference and returns a stand-in that passes every check a real
// value would.
func (v *validator) secret(s Secret) (string, error) {
	if !v.opts.SkipSecrets {
		return s.resolve(v.lookupEnv)
	}
	return s.standIn()
}

// resolve returns the secret value. Errors name the variable or file, never
// the value.
func (s Secret) resolve(lookupEnv func(string) (string, bool)) (string, error) {
	switch {
	case strings.HasPrefix(s.ref, "env:"):
		name := strings.TrimPrefix(s.ref, "env:")
		if name == "" {
			return "", errors.New(`"env:" needs a variable name`)
		}
		v, ok := lookupEnv(name)
		if !ok || v == "" {
			return "", fmt.Errorf("environment variable %s is not set", name)
		}
		return v, nil
	case strings.HasPrefix(s.ref, "file:"):
		path := strings.TrimPrefix(s.ref, "file:")
		b, err := os.ReadFile(path)
		if err != nil {
			// The *PathError names the file and the reason, not the content.
			return "", fmt.Errorf("reading secret file: %w", err)
		}
		v := strings.TrimRight(string(b), "\r\n")
		if v == "" {
			return "", fmt.Errorf("secret file %s is empty", path)
		}
		return v, nil
	}
	return s.ref, nil
}

// later registers a provisioning step.
func (v *validator) later(step func()) { v.provisioning = append(v.provisioning, step) }

// runProvisioning runs every registered step once, in order.
func (v *validator) runProvisioning() {
	for _, step := range v.provisioning {
		step()
	}
	v.provisioning = nil
}

// loadRoots loads the PEM files a ca_files key names (none: the system
// roots). A problem is recorded at key, its message after prefix.
func (v *validator) loadRoots(key, prefix string, files []string) (*trust.Roots, bool) {
	roots, err := trust.LoadRoots(files)
	if err != nil {
		v.at(key, "%s%v", prefix, err)
		return nil, false
	}
	return roots, true
}

// checkKeyPair reads the HTTPS listener's certificate and key files and
// checks that they belong together.
func (v *validator) checkKeyPair(certFile, keyFile string) {
	if _, err := tls.LoadX509KeyPair(certFile, keyFile); err != nil {
		v.at("tls.cert_file", "[tls] cert_file/key_file: %v", err)
	}
}
