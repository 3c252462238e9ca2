"""The cases: the catalogue, the golden files and their data, hypothesis strategies."""
