"""adamconf: a verified reference of Adam and a conformance suite for its implementations.

``import adamconf`` imports no framework: adapters import theirs lazily.
"""

__version__ = "0.1.0"
