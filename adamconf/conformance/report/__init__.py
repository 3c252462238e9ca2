"""Readers of a run's records: terminal text, JSON and JUnit, HTML, the findings document."""
