"""scratchnet benchmarks (run from the repository root)."""
