"""Developer tools apart from the judging path: the benchmark and the bound's sharpness."""
