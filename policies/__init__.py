"""Pure policy layer: Cedar policy sets, evaluation with reasons, lints."""
