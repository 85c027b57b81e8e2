"""The policy engine: envelopes in, decisions out.

Everything in this package is pure (no I/O): :func:`load_policy` compiles YAML text
into a :class:`Policy`; :meth:`Policy.evaluate` decides one envelope and
:meth:`Policy.evaluate_all` the envelopes of one call; :mod:`.normalize` turns HTTP
actions, shell command lines, MCP calls and file operations into envelopes.
"""

from aegisflow.policy.engine import Decision, Explanation, Policy, Verdict
from aegisflow.policy.loader import PolicyLoadError, load_policy

__all__ = ["Decision", "Explanation", "Policy", "PolicyLoadError", "Verdict", "load_policy"]
