"""LightningModules (stage-0 estimator training, the alternating adaptation schedule) and the CLI."""
