"""Command-line adapters: ``aegisctl`` (operators and auditors) and ``aegisflow``."""
