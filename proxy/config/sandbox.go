package config

import _ "embed"

//go:embed sandbox.toml
var sandboxConfig []byte

// SandboxSource names the embedded configuration in messages.
const SandboxSource = "embedded sandbox configuration"

// LoadSandbox returns the embedded sandbox configuration: one route for the
// legacy Clickatell path that sends nothing.
func LoadSandbox() (*Config, error) {
	return Load(SandboxSource, sandboxConfig, LoadOptions{})
}
