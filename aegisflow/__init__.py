"""AegisFlow: the governance layer between coding agents and the tools they call."""

__version__ = "0.1.0"
