"""The evidence ledger: a git repository whose commit chain is the signed hash chain."""
