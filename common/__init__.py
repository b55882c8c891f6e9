"""Framework-free pieces every backend and the harness share: the registry of names (more to come)."""
