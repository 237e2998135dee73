"""Lightning callbacks (the run folder, logger-agnostic image logging, run-info recording, phase checkpoints)."""
