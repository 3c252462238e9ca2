"""Judging: derived error bounds, verdicts, dialect identification, and the conform rule."""
