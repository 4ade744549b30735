package config

// buildRetries reads upstream_retries (default defaultUpstreamRetries; 0
// turns retries off).
func (v *validator) buildRetries(sf serverFile, cfg *Config) {
	cfg.Retries = defaultUpstreamRetries
	if sf.UpstreamRetries == nil {
		return
	}
	cfg.Retries = *sf.UpstreamRetries
	if cfg.Retries < 0 || cfg.Retries > maxUpstreamRetries {
		v.at("server.upstream_retries", "upstream_retries must be between 0 and %d", maxUpstreamRetries)
	}
}
