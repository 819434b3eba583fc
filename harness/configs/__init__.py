"""The run config: its Hydra schema, composing and validating it, a run's typed spec, the
experiment registry, and the other YAML files under harness/conf."""
