"""The run config: its Hydra schema, composing and validating it, the experiment registry and the other YAML files under harness/conf."""
