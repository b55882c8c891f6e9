"""backprop cross-check: tolerances, comparisons, configurations and the report shared by tests and tools."""
