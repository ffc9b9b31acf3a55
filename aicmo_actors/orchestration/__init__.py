"""orchestration: the module registry, the modules' switches and their health."""
