"""What runs a backend: its worker process, the runner, the registry of backends, fuzzing."""
