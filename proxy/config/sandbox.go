package config

import _ "embed"

//go:embed sandbox.toml
var sandboxConfig []byte

// sandboxSource names the embedded configuration in messages.
const sandboxSource = "embedded sandbox configuration"

// LoadSandbox returns the embedded sandbox configuration: one route for the
// legacy Clickatell path that sends nothing.
func LoadSandbox() (*Config, error) {
	return Load(sandboxSource, sandboxConfig, LoadOptions{})
}
