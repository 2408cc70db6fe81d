"""Project settings (Kedro's defaults: conf/ with OmegaConfigLoader, base and local)."""
