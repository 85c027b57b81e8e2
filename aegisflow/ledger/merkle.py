"""RFC 6962 / RFC 9162 Merkle tree hashing, proofs and compact ranges.

Pure: this module only hashes bytes with :mod:`hashlib`. It does no file, network or
clock I/O; callers read and store leaf hashes, proofs and compact-range nodes.

Conventions:

* A *leaf hash* is ``SHA-256(0x00 || data)`` and an interior node is
  ``SHA-256(0x01 || left || right)``; the distinct prefixes stop a leaf from being passed
  off as a node (second-preimage attacks).
* Functions that build trees or proofs take ``leaves`` as a sequence of leaf hashes
  (32 bytes each), never raw entries, so the caller hashes each entry exactly once.
* Builders raise on bad arguments; verifiers never raise on a bad proof, they return
  ``False``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Final

from aegisflow.errors import InputError, MalformedData

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "CompactRange",
    "consistency_proof",
    "inclusion_proof",
    "inclusion_proofs",
    "leaf_hash",
    "node_hash",
    "root",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE: Final = 32
"""Length in bytes of every leaf, node and root hash (SHA-256)."""

EMPTY_ROOT: Final = hashlib.sha256(b"").digest()
"""Root of the tree with no leaves: SHA-256 of the empty string (RFC 6962 2.1)."""

_LEAF_PREFIX: Final = b"\x00"
_NODE_PREFIX: Final = b"\x01"

# A tree size fits in 64 bits (RFC 9162 uses uint64 indices), so no valid inclusion or
# consistency proof is longer than this. Checked first so a hostile proof costs nothing.
_MAX_PROOF_LEN: Final = 64
_MAX_TREE_SIZE: Final = 2**64 - 1


def leaf_hash(data: bytes) -> bytes:
    """Hash one entry into a leaf: ``SHA-256(0x00 || data)``.

    Args:
        data: The entry bytes exactly as stored.

    Returns:
        The 32-byte leaf hash.
    """
    return hashlib.sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Hash two children into their parent: ``SHA-256(0x01 || left || right)``.

    The lengths are not checked so that the RFC 6962 hasher vectors (which hash short
    strings) can be reproduced; every caller inside this module passes 32-byte hashes.

    Args:
        left: Hash of the left subtree.
        right: Hash of the right subtree.

    Returns:
        The 32-byte parent hash.
    """
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def root(leaves: Sequence[bytes]) -> bytes:
    """Compute the Merkle tree hash (RFC 6962 2.1 ``MTH``) of a list of leaf hashes.

    Hashes level by level: pairing neighbours and promoting an unpaired last node
    unchanged yields exactly the RFC's "split at the largest power of two below n" tree,
    without recursion and with one list comprehension per level.

    Args:
        leaves: Leaf hashes (see :func:`leaf_hash`), 32 bytes each, in log order.

    Returns:
        The 32-byte root; :data:`EMPTY_ROOT` when ``leaves`` is empty.

    Raises:
        MalformedData: If any leaf hash is not 32 bytes long.
    """
    _check_hashes(leaves, "leaf hash")
    return _root(leaves)


def inclusion_proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """Build the audit path of one leaf (RFC 6962 2.1.1 ``PATH``).

    Args:
        leaves: All leaf hashes of the tree, 32 bytes each.
        index: Zero-based position of the leaf whose inclusion is proven.

    Returns:
        The proof hashes, ordered from the leaf's sibling up to the root's child; empty
        for a one-leaf tree.

    Raises:
        InputError: If ``index`` is not in ``[0, len(leaves))``.
        MalformedData: If any leaf hash is not 32 bytes long.
    """
    size = len(leaves)
    if not 0 <= index < size:
        raise InputError(f"leaf index {index} is outside a tree of size {size}")
    _check_hashes(leaves, "leaf hash")
    # Walk down from the root. The recursive definition appends each sibling after the
    # deeper part of the path, so collect top-down and reverse.
    path: list[bytes] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _split(hi - lo)
        mid = lo + k
        if index < mid:
            path.append(_root(leaves[mid:hi]))
            hi = mid
        else:
            path.append(_root(leaves[lo:mid]))
            lo = mid
    path.reverse()
    return path


def inclusion_proofs(leaves: Sequence[bytes], indices: Sequence[int]) -> dict[int, list[bytes]]:
    """Audit paths of many leaves at once, hashing the tree a single time.

    Keeps every level of the tree (about twice the leaves in memory) and reads each path
    bottom-up: the sibling at each level where one exists; an unpaired last node has no
    sibling at its level and is promoted, exactly as in :func:`inclusion_proof`.

    Args:
        leaves: All leaf hashes of the tree, 32 bytes each.
        indices: Zero-based positions whose paths are wanted.

    Returns:
        ``{index: proof}`` for every requested index.

    Raises:
        InputError: If an index is not in ``[0, len(leaves))``.
        MalformedData: If any leaf hash is not 32 bytes long.
    """
    size = len(leaves)
    for index in indices:
        if not 0 <= index < size:
            raise InputError(f"leaf index {index} is outside a tree of size {size}")
    _check_hashes(leaves, "leaf hash")
    levels: list[Sequence[bytes]] = [leaves]
    sha256 = hashlib.sha256
    while len(levels[-1]) > 1:
        level = levels[-1]
        paired = [
            sha256(_NODE_PREFIX + left + right).digest()
            for left, right in zip(level[0::2], level[1::2], strict=False)
        ]
        if len(level) & 1:
            paired.append(level[-1])
        levels.append(paired)
    proofs: dict[int, list[bytes]] = {}
    for index in indices:
        path: list[bytes] = []
        i = index
        for level in levels[:-1]:
            sibling = i ^ 1
            if sibling < len(level):
                path.append(level[sibling])
            i >>= 1
        proofs[index] = path
    return proofs


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """Check that ``leaf`` sits at ``index`` in the tree of ``size`` leaves with ``root``.

    Follows RFC 9162 2.1.3.2:

    1. Reject an index outside ``[0, size)`` and hashes that are not 32 bytes.
    2. Set ``fn = index``, ``sn = size - 1`` and ``r = leaf``.
    3. For each proof hash ``p``: fail if ``sn`` is 0; if ``fn`` is odd or
       ``fn == sn``, set ``r = node(p, r)`` and, when ``fn`` was even, shift ``fn`` and
       ``sn`` right until ``fn`` is odd or 0; otherwise set ``r = node(r, p)``. Then
       shift ``fn`` and ``sn`` right once.
    4. Accept only if ``sn`` is 0 and ``r`` equals ``root``.

    Args:
        leaf: The leaf hash (32 bytes), not the raw entry.
        index: Zero-based position claimed for the leaf.
        size: Number of leaves in the tree the root commits to.
        proof: The audit path, as returned by :func:`inclusion_proof`.
        root: The trusted root of the tree of ``size`` leaves.

    Returns:
        ``True`` if the proof is valid; ``False`` for any mismatch or out-of-range input.
        Never raises on a malformed proof.
    """
    if not (
        0 <= index < size <= _MAX_TREE_SIZE
        and _is_hash(leaf)
        and _is_hash(root)
        and _is_path(proof)
    ):
        return False
    fn, sn = index, size - 1
    r = leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def consistency_proof(leaves: Sequence[bytes], old_size: int) -> list[bytes]:
    """Build the proof that the first ``old_size`` leaves are a prefix of ``leaves``.

    This is RFC 6962 2.1.2 ``PROOF(m, D[n]) = SUBPROOF(m, D[n], true)`` with
    ``m = old_size`` and ``n = len(leaves)``.

    Args:
        leaves: All leaf hashes of the new tree, 32 bytes each.
        old_size: Size of the earlier tree, ``0 <= old_size <= len(leaves)``.

    Returns:
        The proof hashes; empty when ``old_size`` is 0 or equals ``len(leaves)``
        (nothing needs proving).

    Raises:
        InputError: If ``old_size`` is negative or larger than ``len(leaves)``.
        MalformedData: If any leaf hash is not 32 bytes long.
    """
    size = len(leaves)
    if not 0 <= old_size <= size:
        raise InputError(f"old size {old_size} is outside [0, {size}]")
    _check_hashes(leaves, "leaf hash")
    if old_size in (0, size):
        return []
    # Iterative SUBPROOF(m, D[lo:hi], b). Each step appends one subtree hash after the
    # deeper part of the proof, so collect top-down and reverse.
    proof: list[bytes] = []
    lo, hi, m, complete = 0, size, old_size, True
    while m != hi - lo:
        k = _split(hi - lo)
        mid = lo + k
        if m <= k:
            proof.append(_root(leaves[mid:hi]))
            hi = mid
        else:
            proof.append(_root(leaves[lo:mid]))
            lo, m, complete = mid, m - k, False
    if not complete:
        # SUBPROOF(m, D[m], false) = [MTH(D[m])]: this part of the old tree is not the
        # whole old tree, so the verifier cannot know its hash and must be given it.
        proof.append(_root(leaves[lo:hi]))
    proof.reverse()
    return proof


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """Check that the tree with ``new_root`` extends the tree with ``old_root``.

    Follows RFC 9162 2.1.4.2, with the trivial cases made strict:

    1. Reject sizes outside ``0 <= old_size <= new_size`` and hashes that are not
       32 bytes.
    2. ``old_size == 0``: reject unless ``old_root == EMPTY_ROOT``.
    3. ``old_size == new_size``: accept only an empty proof and equal roots; otherwise,
       if ``old_size == 0``, accept only an empty proof.
    4. Otherwise reject an empty proof; prepend ``old_root`` when ``old_size`` is a power
       of two; set ``fn = old_size - 1``, ``sn = new_size - 1`` and shift both right
       while ``fn`` is odd; start ``fr`` and ``sr`` at the first proof hash.
    5. For each further proof hash ``c``: fail if ``sn`` is 0; if ``fn`` is odd or
       ``fn == sn``, set ``fr = node(c, fr)``, ``sr = node(c, sr)`` and, when ``fn`` was
       even, shift ``fn`` and ``sn`` right until ``fn`` is odd or 0; otherwise set
       ``sr = node(sr, c)``. Then shift ``fn`` and ``sn`` right once.
    6. Accept only if ``fr == old_root``, ``sr == new_root`` and ``sn`` is 0.

    Args:
        old_size: Size of the earlier tree.
        new_size: Size of the later tree.
        old_root: Trusted root of the earlier tree.
        new_root: Trusted root of the later tree.
        proof: The proof, as returned by :func:`consistency_proof`.

    Returns:
        ``True`` if the proof is valid; ``False`` for any mismatch or out-of-range input.
        Never raises on a malformed proof.
    """
    if not (
        0 <= old_size <= new_size <= _MAX_TREE_SIZE
        and _is_hash(old_root)
        and _is_hash(new_root)
        and _is_path(proof)
    ):
        return False
    if old_size == 0 and old_root != EMPTY_ROOT:
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    if old_size == 0:
        # Every tree extends the empty tree; there is nothing to prove.
        return not proof
    return _verify_consistency_path(old_size, new_size, old_root, new_root, proof)


def _verify_consistency_path(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """Steps 4 to 6 of :func:`verify_consistency`, for ``0 < old_size < new_size``."""
    if not proof:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        # A power-of-two old tree is a node of the new tree, so the proof omits its hash.
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == old_root and sr == new_root and sn == 0


class CompactRange:
    """An append-only Merkle tree over leaves ``[0, size)`` that keeps O(log n) hashes.

    It stores only the roots of the perfect subtrees that tile ``[0, size)``, largest
    first: one per set bit of ``size`` (the tree's "right border"). Appending a leaf
    merges equal-sized subtrees like a binary counter, and :meth:`root` folds the border
    from the right, so a writer can sign a checkpoint after every batch without keeping
    the leaves, and recovery can resume from the nodes stored in the last checkpoint
    (:meth:`from_nodes`).

    Not thread-safe; :meth:`copy` before handing it to another owner.
    """

    __slots__ = ("_nodes", "_size")

    def __init__(self) -> None:
        """Create the range of the empty tree."""
        self._size = 0
        self._nodes: list[bytes] = []

    @classmethod
    def from_nodes(cls, size: int, nodes: Sequence[bytes]) -> CompactRange:
        """Rebuild a range from its size and perfect-subtree hashes (e.g. a checkpoint).

        Args:
            size: Number of leaves the range covers.
            nodes: The subtree hashes as returned by :attr:`nodes`, largest first.

        Returns:
            A range equal to the one the nodes were taken from.

        Raises:
            MalformedData: If ``size`` is negative or too large, ``len(nodes)`` is not the
                number of set bits in ``size``, or a node is not 32 bytes of ``bytes``.
        """
        if not 0 <= size <= _MAX_TREE_SIZE:
            raise MalformedData(f"compact range size {size} is outside [0, 2**64)")
        expected = size.bit_count()
        if len(nodes) != expected:
            raise MalformedData(
                f"compact range of size {size} needs {expected} nodes, got {len(nodes)}"
            )
        for i, node in enumerate(nodes):
            if not isinstance(node, bytes) or len(node) != HASH_SIZE:
                raise MalformedData(f"compact range node {i} is not a {HASH_SIZE}-byte hash")
        rng = cls()
        rng._size = size
        rng._nodes = list(nodes)
        return rng

    @property
    def size(self) -> int:
        """Number of leaves appended so far."""
        return self._size

    @property
    def nodes(self) -> tuple[bytes, ...]:
        """The perfect-subtree hashes tiling ``[0, size)``, largest subtree first."""
        return tuple(self._nodes)

    def append(self, leaf: bytes) -> None:
        """Add one leaf hash at position :attr:`size`.

        Amortised O(1) hashes, at most ``log2(size)`` for one call.

        Args:
            leaf: The leaf hash (see :func:`leaf_hash`), 32 bytes.

        Raises:
            MalformedData: If ``leaf`` is not a 32-byte hash.
        """
        if not isinstance(leaf, bytes) or len(leaf) != HASH_SIZE:
            raise MalformedData(f"leaf hash must be {HASH_SIZE} bytes")
        node = leaf
        carry = self._size
        # Each trailing 1 bit of the size is a subtree as large as the one being built.
        while carry & 1:
            node = node_hash(self._nodes.pop(), node)
            carry >>= 1
        self._nodes.append(node)
        self._size += 1

    def root(self) -> bytes:
        """Root of the tree over all leaves appended so far, in O(log n) hashes.

        Returns:
            The same value as :func:`root` over all leaf hashes appended so far.
        """
        if not self._nodes:
            return EMPTY_ROOT
        r = self._nodes[-1]
        for node in reversed(self._nodes[:-1]):
            r = node_hash(node, r)
        return r

    def copy(self) -> CompactRange:
        """Return an independent range with the same size and nodes."""
        rng = CompactRange()
        rng._size = self._size
        rng._nodes = list(self._nodes)
        return rng

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CompactRange):
            return NotImplemented
        return self._size == other._size and self._nodes == other._nodes

    __hash__ = None  # type: ignore[assignment]  # mutable, so unhashable

    def __repr__(self) -> str:
        return f"CompactRange(size={self._size}, root={self.root().hex()})"


def _split(n: int) -> int:
    """Largest power of two strictly less than ``n`` (``n >= 2``): RFC 6962's ``k``."""
    return 1 << ((n - 1).bit_length() - 1)


def _is_hash(value: object) -> bool:
    """Whether ``value`` is a 32-byte ``bytes`` hash."""
    return isinstance(value, bytes) and len(value) == HASH_SIZE


def _is_path(proof: Sequence[object]) -> bool:
    """Whether ``proof`` is short enough for a 64-bit tree and holds only 32-byte hashes."""
    return len(proof) <= _MAX_PROOF_LEN and all(_is_hash(p) for p in proof)


def _check_hashes(hashes: Sequence[bytes], what: str) -> None:
    """Raise unless every item is 32 bytes long.

    Raises:
        MalformedData: Naming the first offending position.
    """
    # One C-level pass over the lengths; locate the culprit only on failure.
    if set(map(len, hashes)) <= {HASH_SIZE}:
        return
    for i, h in enumerate(hashes):
        if len(h) != HASH_SIZE:
            raise MalformedData(f"{what} {i} is {len(h)} bytes, expected {HASH_SIZE}")


def _root(leaves: Sequence[bytes]) -> bytes:
    """:func:`root` without the length check, for callers that already checked."""
    if not leaves:
        return EMPTY_ROOT
    sha256 = hashlib.sha256
    prefix = _NODE_PREFIX
    level = leaves
    while len(level) > 1:
        paired = [
            sha256(prefix + left + right).digest()
            for left, right in zip(level[0::2], level[1::2], strict=False)
        ]
        if len(level) & 1:
            # The unpaired last node moves up unchanged (RFC 6962's unbalanced right edge).
            paired.append(level[-1])
        level = paired
    return level[0]
