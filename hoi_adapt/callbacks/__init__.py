"""Lightning callbacks (logger-agnostic image logging, run-info recording)."""
