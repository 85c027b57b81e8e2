"""Tests for the RFC 6962 Merkle tree in :mod:`aegisflow.ledger.merkle`.

Three kinds of evidence:

* bit-exact vectors published by transparency-dev/merkle (transcribed as data below);
* an independent, literal transcription of the RFC 6962 2.1 recursive definitions
  (``_ref_*``), compared with the iterative implementation for every small tree;
* hypothesis properties and tamper tables for the verifiers.
"""

from __future__ import annotations

import ast
import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aegisflow.errors import InputError, MalformedData
from aegisflow.ledger import merkle
from aegisflow.ledger.merkle import (
    EMPTY_ROOT,
    CompactRange,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root,
    verify_consistency,
    verify_inclusion,
)

# -- vectors -------------------------------------------------------------------------
#
# Transcribed from github.com/transparency-dev/merkle (Apache-2.0):
#   * testonly/constants.go: LeafInputs, NodeHashes, RootHashes, CompactTrees,
#     EmptyRootHash;
#   * testonly/reference_test.go: TestRefInclusionProof, TestRefConsistencyProof;
#   * proof/verify_test.go: inclusionProofs (1-based leaf numbers there, 0-based
#     indices here), consistencyProofs, and the corruption probes the tamper tables
#     below are modelled on;
#   * rfc6962/rfc6962_test.go: TestRFC6962Hasher.

LEAF_INPUTS = [
    bytes.fromhex(""),
    bytes.fromhex("00"),
    bytes.fromhex("10"),
    bytes.fromhex("2021"),
    bytes.fromhex("3031"),
    bytes.fromhex("40414243"),
    bytes.fromhex("5051525354555657"),
    bytes.fromhex("606162636465666768696a6b6c6d6e6f"),
]

# NODE_HASHES[level][i] is the hash of the perfect subtree of 2**level leaves starting
# at leaf i * 2**level.
NODE_HASHES = [
    [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
        "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
        "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
        "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
    ],
    [
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
    ],
    [
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    [
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ],
]

# ROOT_HASHES[n] is the root of the tree over the first n leaves.
ROOT_HASHES = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]

# COMPACT_NODES[n] is the compact range over the first n leaves, largest subtree first,
# as (level, index) into NODE_HASHES.
COMPACT_NODES: list[list[tuple[int, int]]] = [
    [],
    [(0, 0)],
    [(1, 0)],
    [(1, 0), (0, 2)],
    [(2, 0)],
    [(2, 0), (0, 4)],
    [(2, 0), (1, 2)],
    [(2, 0), (1, 2), (0, 6)],
    [(3, 0)],
]

# (index, size, proof)
INCLUSION_VECTORS: list[tuple[int, int, list[str]]] = [
    (0, 1, []),
    (0, 2, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"]),
    (1, 2, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"]),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
]

# (old_size, new_size, proof)
CONSISTENCY_VECTORS: list[tuple[int, int, list[str]]] = [
    (1, 1, []),
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
]

# From proof/verify_test.go: an arbitrary 32-byte value that is no node of the tree.
SOME_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")

LEAVES = [leaf_hash(data) for data in LEAF_INPUTS]


def _h(hexes: Sequence[str]) -> list[bytes]:
    return [bytes.fromhex(x) for x in hexes]


# -- reference: RFC 6962 2.1 written out literally (recursive, slow, obviously right) --


def _ref_k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def _ref_mth(d: Sequence[bytes]) -> bytes:
    if not d:
        return hashlib.sha256(b"").digest()
    if len(d) == 1:
        return d[0]
    k = _ref_k(len(d))
    return hashlib.sha256(b"\x01" + _ref_mth(d[:k]) + _ref_mth(d[k:])).digest()


def _ref_path(m: int, d: Sequence[bytes]) -> list[bytes]:
    if len(d) == 1:
        return []
    k = _ref_k(len(d))
    if m < k:
        return [*_ref_path(m, d[:k]), _ref_mth(d[k:])]
    return [*_ref_path(m - k, d[k:]), _ref_mth(d[:k])]


def _ref_subproof(m: int, d: Sequence[bytes], b: bool) -> list[bytes]:
    if m == len(d):
        return [] if b else [_ref_mth(d)]
    k = _ref_k(len(d))
    if m <= k:
        return [*_ref_subproof(m, d[:k], b), _ref_mth(d[k:])]
    return [*_ref_subproof(m - k, d[k:], False), _ref_mth(d[:k])]


def _leaves(n: int, salt: bytes = b"") -> list[bytes]:
    """Distinct leaf hashes, so a proof for one leaf can never fit another."""
    return [leaf_hash(salt + i.to_bytes(8, "big")) for i in range(n)]


def _flip(proof: Sequence[bytes], i: int, byte: int = 0, mask: int = 0x10) -> list[bytes]:
    out = list(proof)
    element = bytearray(out[i])
    element[byte] ^= mask
    out[i] = bytes(element)
    return out


# -- purity ------------------------------------------------------------------------


def test_module_imports_only_pure_modules() -> None:
    # The Merkle core must stay free of I/O (STYLE.md rule 1).
    allowed = {"__future__", "hashlib", "collections.abc", "typing", "aegisflow.errors"}
    tree = ast.parse(Path(merkle.__file__).read_text(encoding="utf-8"))
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.module is not None
            imported.add(node.module)
    assert imported <= allowed, imported - allowed


# -- hashing vectors -----------------------------------------------------------------


def test_rfc6962_hasher_vectors() -> None:
    assert EMPTY_ROOT.hex() == ROOT_HASHES[0]
    assert leaf_hash(b"").hex() == NODE_HASHES[0][0]
    # echo -n 004C313233343536 | xxd -r -p | sha256sum
    assert leaf_hash(b"L123456").hex() == (
        "395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56"
    )
    # echo -n 014E3132334E343536 | xxd -r -p | sha256sum
    assert node_hash(b"N123", b"N456").hex() == (
        "aa217fe888e47007fa15edab33c2b492a722cb106c64667fc2b044444de66bbb"
    )


def test_domain_separation() -> None:
    a, b = leaf_hash(b"Hello"), leaf_hash(b"World")
    assert a != b
    assert node_hash(a, b) != leaf_hash(a + b)
    assert node_hash(a, b) != node_hash(b, a)
    assert leaf_hash(b"") != EMPTY_ROOT


def test_node_hash_vectors() -> None:
    for level, row in enumerate(NODE_HASHES):
        width = 1 << level
        for i, expected in enumerate(row):
            assert root(LEAVES[i * width : (i + 1) * width]).hex() == expected


@pytest.mark.parametrize("size", range(len(ROOT_HASHES)))
def test_root_vectors(size: int) -> None:
    assert root(LEAVES[:size]).hex() == ROOT_HASHES[size]


@pytest.mark.parametrize("size", range(len(COMPACT_NODES)))
def test_compact_range_vectors(size: int) -> None:
    cr = CompactRange()
    for leaf in LEAVES[:size]:
        cr.append(leaf)
    expected = tuple(bytes.fromhex(NODE_HASHES[lv][i]) for lv, i in COMPACT_NODES[size])
    assert cr.size == size
    assert cr.nodes == expected
    assert cr.root().hex() == ROOT_HASHES[size]


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION_VECTORS)
def test_inclusion_vectors(index: int, size: int, proof: list[str]) -> None:
    expected = _h(proof)
    assert inclusion_proof(LEAVES[:size], index) == expected
    tree_root = bytes.fromhex(ROOT_HASHES[size])
    assert verify_inclusion(LEAVES[index], index, size, expected, tree_root)


@pytest.mark.parametrize(("old_size", "new_size", "proof"), CONSISTENCY_VECTORS)
def test_consistency_vectors(old_size: int, new_size: int, proof: list[str]) -> None:
    expected = _h(proof)
    assert consistency_proof(LEAVES[:new_size], old_size) == expected
    old_root = bytes.fromhex(ROOT_HASHES[old_size])
    new_root = bytes.fromhex(ROOT_HASHES[new_size])
    assert verify_consistency(old_size, new_size, old_root, new_root, expected)


# -- tamper tables (after proof/verify_test.go corruptInclusionProof / ...Consistency) --

InclusionArgs = tuple[bytes, int, int, list[bytes], bytes]
InclusionMutation = Callable[[InclusionArgs], InclusionArgs]


def _flip_inclusion(i: int) -> InclusionMutation:
    return lambda a: (a[0], a[1], a[2], _flip(a[3], i, 0, 8), a[4])


def _inclusion_mutations(proof_len: int) -> list[tuple[str, InclusionMutation]]:
    muts: list[tuple[str, InclusionMutation]] = [
        ("index - 1", lambda a: (a[0], a[1] - 1, a[2], a[3], a[4])),
        ("index + 1", lambda a: (a[0], a[1] + 1, a[2], a[3], a[4])),
        ("index ^ 2", lambda a: (a[0], a[1] ^ 2, a[2], a[3], a[4])),
        ("size * 2", lambda a: (a[0], a[1], a[2] * 2, a[3], a[4])),
        ("size // 2", lambda a: (a[0], a[1], a[2] // 2, a[3], a[4])),
        ("wrong leaf", lambda a: (b"WrongLeaf", a[1], a[2], a[3], a[4])),
        ("other 32-byte leaf", lambda a: (SOME_HASH, a[1], a[2], a[3], a[4])),
        ("empty root", lambda a: (a[0], a[1], a[2], a[3], EMPTY_ROOT)),
        ("random root", lambda a: (a[0], a[1], a[2], a[3], SOME_HASH)),
        ("short root", lambda a: (a[0], a[1], a[2], a[3], a[4][:31])),
        ("trailing garbage", lambda a: (a[0], a[1], a[2], [*a[3], b""], a[4])),
        ("trailing root", lambda a: (a[0], a[1], a[2], [*a[3], a[4]], a[4])),
        ("preceding garbage", lambda a: (a[0], a[1], a[2], [b"", *a[3]], a[4])),
        ("preceding root", lambda a: (a[0], a[1], a[2], [a[4], *a[3]], a[4])),
    ]
    muts.extend((f"flip proof[{i}] bit 3", _flip_inclusion(i)) for i in range(proof_len))
    if proof_len > 0:
        muts.append(("removed component", lambda a: (a[0], a[1], a[2], a[3][:-1], a[4])))
    if proof_len > 1:
        muts.append(
            (
                "inserted component",
                lambda a: (a[0], a[1], a[2], [a[3][0], SOME_HASH, *a[3][1:]], a[4]),
            )
        )
    return muts


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION_VECTORS)
def test_inclusion_tamper_table(index: int, size: int, proof: list[str]) -> None:
    good: InclusionArgs = (LEAVES[index], index, size, _h(proof), bytes.fromhex(ROOT_HASHES[size]))
    assert verify_inclusion(*good)
    accepted = [
        name for name, mutate in _inclusion_mutations(len(proof)) if verify_inclusion(*mutate(good))
    ]
    assert accepted == []


ConsistencyArgs = tuple[int, int, bytes, bytes, list[bytes]]
ConsistencyMutation = Callable[[ConsistencyArgs], ConsistencyArgs]


def _flip_consistency(i: int) -> ConsistencyMutation:
    return lambda a: (a[0], a[1], a[2], a[3], _flip(a[4], i))


def _consistency_mutations(proof_len: int) -> list[tuple[str, ConsistencyMutation]]:
    muts: list[tuple[str, ConsistencyMutation]] = [
        ("old_size - 1", lambda a: (a[0] - 1, a[1], a[2], a[3], a[4])),
        ("old_size + 1", lambda a: (a[0] + 1, a[1], a[2], a[3], a[4])),
        ("old_size ^ 2", lambda a: (a[0] ^ 2, a[1], a[2], a[3], a[4])),
        ("new_size * 2", lambda a: (a[0], a[1] * 2, a[2], a[3], a[4])),
        ("new_size // 2", lambda a: (a[0], a[1] // 2, a[2], a[3], a[4])),
        ("wrong old root", lambda a: (a[0], a[1], b"WrongRoot", a[3], a[4])),
        ("wrong new root", lambda a: (a[0], a[1], a[2], b"WrongRoot", a[4])),
        ("random old root", lambda a: (a[0], a[1], SOME_HASH, a[3], a[4])),
        ("random new root", lambda a: (a[0], a[1], a[2], SOME_HASH, a[4])),
        ("swapped roots", lambda a: (a[0], a[1], a[3], a[2], a[4])),
        ("empty proof", lambda a: (a[0], a[1], a[2], a[3], [])),
        ("trailing garbage", lambda a: (a[0], a[1], a[2], a[3], [*a[4], b""])),
        ("trailing old root", lambda a: (a[0], a[1], a[2], a[3], [*a[4], a[2]])),
        ("trailing new root", lambda a: (a[0], a[1], a[2], a[3], [*a[4], a[3]])),
        ("preceding garbage", lambda a: (a[0], a[1], a[2], a[3], [b"", *a[4]])),
        ("preceding old root", lambda a: (a[0], a[1], a[2], a[3], [a[2], *a[4]])),
        ("preceding new root", lambda a: (a[0], a[1], a[2], a[3], [a[3], *a[4]])),
        ("preceding proof[0]", lambda a: (a[0], a[1], a[2], a[3], [a[4][0], *a[4]])),
        ("truncated proof", lambda a: (a[0], a[1], a[2], a[3], a[4][:-1])),
    ]
    muts.extend((f"flip proof[{i}] bit 4", _flip_consistency(i)) for i in range(proof_len))
    return muts


@pytest.mark.parametrize(
    ("old_size", "new_size", "proof"), [v for v in CONSISTENCY_VECTORS if v[2]]
)
def test_consistency_tamper_table(old_size: int, new_size: int, proof: list[str]) -> None:
    old_root = bytes.fromhex(ROOT_HASHES[old_size])
    new_root = bytes.fromhex(ROOT_HASHES[new_size])
    good: ConsistencyArgs = (old_size, new_size, old_root, new_root, _h(proof))
    assert verify_consistency(*good)
    accepted = [
        name
        for name, mutate in _consistency_mutations(len(proof))
        if verify_consistency(*mutate(good))
    ]
    assert accepted == []


# -- against the literal RFC definitions -----------------------------------------------


def test_matches_reference_for_every_small_tree() -> None:
    leaves = _leaves(33)
    for n in range(len(leaves) + 1):
        d = leaves[:n]
        assert root(d) == _ref_mth(d)
        for m in range(n):
            assert inclusion_proof(d, m) == _ref_path(m, d)
        for m in range(1, n):
            assert consistency_proof(d, m) == _ref_subproof(m, d, True)


def test_large_tree_root_agrees_with_compact_range() -> None:
    leaves = _leaves((1 << 16) + 3)
    cr = CompactRange()
    for leaf in leaves:
        cr.append(leaf)
    assert cr.root() == root(leaves)
    assert len(cr.nodes) == 3


# -- hypothesis properties -----------------------------------------------------------

sizes = st.integers(min_value=1, max_value=300)
salts = st.binary(max_size=8)


@given(st.lists(st.binary(max_size=40), max_size=200))
def test_compact_range_matches_root_for_any_sequence(entries: list[bytes]) -> None:
    leaves = [leaf_hash(e) for e in entries]
    cr = CompactRange()
    assert cr.root() == root([])
    for n, leaf in enumerate(leaves, start=1):
        cr.append(leaf)
        assert cr.size == n
        assert len(cr.nodes) == n.bit_count()
    assert cr.root() == root(leaves)


@given(sizes, st.data(), salts)
def test_every_inclusion_proof_verifies(size: int, data: st.DataObject, salt: bytes) -> None:
    leaves = _leaves(size, salt)
    tree_root = root(leaves)
    index = data.draw(st.integers(0, size - 1), label="index")
    proof = inclusion_proof(leaves, index)
    assert verify_inclusion(leaves[index], index, size, proof, tree_root)
    if size > 1:
        other = data.draw(st.integers(0, size - 1).filter(lambda i: i != index), label="other")
        assert not verify_inclusion(leaves[other], index, size, proof, tree_root)
        assert not verify_inclusion(leaves[index], other, size, proof, tree_root)
        # The other leaf's own proof still works, so the failure is the mismatch.
        assert verify_inclusion(
            leaves[other], other, size, inclusion_proof(leaves, other), tree_root
        )


@given(sizes, st.data(), salts)
def test_inclusion_proof_byte_flip_fails(size: int, data: st.DataObject, salt: bytes) -> None:
    leaves = _leaves(size, salt)
    index = data.draw(st.integers(0, size - 1), label="index")
    proof = inclusion_proof(leaves, index)
    if not proof:
        return
    i = data.draw(st.integers(0, len(proof) - 1), label="element")
    byte = data.draw(st.integers(0, 31), label="byte")
    mask = data.draw(st.sampled_from([1 << b for b in range(8)]), label="mask")
    assert not verify_inclusion(
        leaves[index], index, size, _flip(proof, i, byte, mask), root(leaves)
    )


@given(st.integers(2, 300), st.data(), salts)
def test_every_consistency_proof_verifies(size: int, data: st.DataObject, salt: bytes) -> None:
    leaves = _leaves(size, salt)
    new_size = data.draw(st.integers(2, size), label="new_size")
    old_size = data.draw(st.integers(1, new_size - 1), label="old_size")
    old_root, new_root = root(leaves[:old_size]), root(leaves[:new_size])
    proof = consistency_proof(leaves[:new_size], old_size)
    assert verify_consistency(old_size, new_size, old_root, new_root, proof)
    assert not verify_consistency(old_size, new_size, new_root, old_root, proof)
    i = data.draw(st.integers(0, len(proof) - 1), label="element")
    byte = data.draw(st.integers(0, 31), label="byte")
    mask = data.draw(st.sampled_from([1 << b for b in range(8)]), label="mask")
    flipped = _flip(proof, i, byte, mask)
    assert not verify_consistency(old_size, new_size, old_root, new_root, flipped)


@given(st.integers(0, 300), salts)
def test_from_nodes_round_trips(size: int, salt: bytes) -> None:
    leaves = _leaves(size + 5, salt)
    cr = CompactRange()
    for leaf in leaves[:size]:
        cr.append(leaf)
    restored = CompactRange.from_nodes(cr.size, cr.nodes)
    assert restored == cr
    assert restored.size == size
    assert restored.nodes == cr.nodes
    assert restored.root() == cr.root() == root(leaves[:size])
    # Resuming after recovery gives the same tree as never having stopped.
    for leaf in leaves[size:]:
        restored.append(leaf)
    assert restored.root() == root(leaves)


# -- edge cases ----------------------------------------------------------------------


def test_empty_tree() -> None:
    assert root([]) == EMPTY_ROOT
    assert hashlib.sha256(b"").digest() == EMPTY_ROOT
    cr = CompactRange()
    assert cr.size == 0
    assert cr.nodes == ()
    assert cr.root() == EMPTY_ROOT
    assert CompactRange.from_nodes(0, []) == cr


def test_single_leaf_tree() -> None:
    # The root and the leaf hash of a one-leaf tree coincide and the proof is empty.
    h = leaf_hash(b"data")
    assert root([h]) == h
    assert inclusion_proof([h], 0) == []
    assert verify_inclusion(h, 0, 1, [], h)
    assert not verify_inclusion(h, 0, 1, [], b"")
    assert not verify_inclusion(b"", 0, 1, [], h)
    assert not verify_inclusion(b"", 0, 1, [], b"")


@pytest.mark.parametrize("index", [-1, 3, 4, 100])
def test_inclusion_proof_index_out_of_range_raises(index: int) -> None:
    with pytest.raises(InputError, match="outside"):
        inclusion_proof(LEAVES[:3], index)


def test_inclusion_proof_of_empty_tree_raises() -> None:
    with pytest.raises(InputError):
        inclusion_proof([], 0)


@pytest.mark.parametrize(("index", "size"), [(0, 0), (1, 0), (1, 1), (2, 1), (-1, 1), (8, 8)])
def test_verify_inclusion_out_of_range_is_false(index: int, size: int) -> None:
    for leaf, tree_root in [
        (SOME_HASH, b""),
        (b"", EMPTY_ROOT),
        (SOME_HASH, EMPTY_ROOT),
        (LEAVES[0], LEAVES[0]),
    ]:
        assert not verify_inclusion(leaf, index, size, [], tree_root)


def test_verify_inclusion_rejects_oversized_proof_and_size() -> None:
    assert not verify_inclusion(LEAVES[0], 0, 2**64, [SOME_HASH] * 64, SOME_HASH)
    assert not verify_inclusion(LEAVES[0], 0, 2, [SOME_HASH] * 65, SOME_HASH)
    assert not verify_inclusion(LEAVES[0], 0, 2, ["not bytes"], SOME_HASH)  # type: ignore[list-item]


@pytest.mark.parametrize("old_size", [-1, 4])
def test_consistency_proof_old_size_out_of_range_raises(old_size: int) -> None:
    with pytest.raises(InputError, match="outside"):
        consistency_proof(LEAVES[:3], old_size)


@pytest.mark.parametrize("size", [0, 1, 5, 8])
def test_consistency_proof_trivial_sizes_are_empty(size: int) -> None:
    leaves = LEAVES[:size]
    assert consistency_proof(leaves, 0) == []
    assert consistency_proof(leaves, size) == []
    tree_root = root(leaves)
    assert verify_consistency(0, size, EMPTY_ROOT, tree_root, [])
    assert verify_consistency(size, size, tree_root, tree_root, [])


def test_verify_consistency_trivial_cases() -> None:
    # Adapted from TestVerifyConsistency in proof/verify_test.go. Unlike that code we
    # also require old_root == EMPTY_ROOT for old_size 0 and 32-byte roots, so the
    # "don't care" roots there are real hashes here.
    r1, r2 = leaf_hash(b"don't care 1"), leaf_hash(b"don't care 2")
    cases: list[tuple[int, int, bytes, bytes, list[bytes], bool]] = [
        (0, 0, r1, r2, [], False),
        (1, 1, r1, r2, [], False),
        (0, 0, EMPTY_ROOT, EMPTY_ROOT, [], True),
        (0, 1, EMPTY_ROOT, r2, [], True),
        (1, 1, r2, r2, [], True),
        # Time travel to the past.
        (1, 0, r1, r2, [], False),
        (2, 1, r1, r2, [], False),
        (-1, 1, EMPTY_ROOT, r2, [], False),
        # Empty proof for a real extension.
        (1, 2, r1, r2, [], False),
        # Roots don't match.
        (0, 0, EMPTY_ROOT, r2, [], False),
        (1, 1, EMPTY_ROOT, r2, [], False),
        # Old root of the empty tree must be the empty root.
        (0, 1, r1, r2, [], False),
        # Roots match but the proof is not empty.
        (0, 0, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT], False),
        (0, 1, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT], False),
        (1, 1, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT], False),
        # Hashes of the wrong length.
        (1, 1, b"short", b"short", [], False),
        # Sizes beyond 64 bits and proofs longer than any 64-bit tree needs.
        (2**64, 2**64, r1, r1, [], False),
        (1, 2, r1, r2, [r1] * 65, False),
    ]
    for old_size, new_size, old_root, new_root, proof, want in cases:
        got = verify_consistency(old_size, new_size, old_root, new_root, proof)
        assert got is want, (old_size, new_size, old_root.hex(), new_root.hex(), proof)


# -- malformed hashes and compact-range validation -------------------------------------


def test_builders_reject_wrong_length_leaves() -> None:
    bad = [*LEAVES[:3], b"\x00" * 31, LEAVES[4]]
    with pytest.raises(MalformedData, match="leaf hash 3"):
        root(bad)
    with pytest.raises(MalformedData):
        inclusion_proof(bad, 0)
    with pytest.raises(MalformedData):
        consistency_proof(bad, 2)


def test_append_rejects_wrong_length_leaf() -> None:
    cr = CompactRange()
    with pytest.raises(MalformedData):
        cr.append(b"\x00" * 33)
    with pytest.raises(MalformedData):
        cr.append(bytearray(32))  # type: ignore[arg-type]
    assert cr.size == 0


@pytest.mark.parametrize(
    ("size", "nodes"),
    [
        (1, []),
        (0, [SOME_HASH]),
        (3, [SOME_HASH]),
        (3, [SOME_HASH, SOME_HASH, SOME_HASH]),
        (4, [SOME_HASH, SOME_HASH]),
        (3, [SOME_HASH, SOME_HASH[:31]]),
        (1, [SOME_HASH + b"\x00"]),
        (1, [bytearray(SOME_HASH)]),
        (-1, []),
        (2**64, []),
    ],
)
def test_from_nodes_rejects_malformed(size: int, nodes: list[bytes]) -> None:
    with pytest.raises(MalformedData):
        CompactRange.from_nodes(size, nodes)


def test_compact_range_copy_is_independent() -> None:
    cr = CompactRange()
    for leaf in LEAVES[:5]:
        cr.append(leaf)
    clone = cr.copy()
    assert clone == cr
    clone.append(LEAVES[5])
    assert clone != cr
    assert cr.size == 5
    assert cr.root().hex() == ROOT_HASHES[5]
    assert clone.root().hex() == ROOT_HASHES[6]


def test_compact_range_is_not_hashable_and_compares_by_value() -> None:
    cr = CompactRange()
    with pytest.raises(TypeError):
        hash(cr)
    assert cr != object()
    assert "size=0" in repr(cr)


@given(st.integers(min_value=1, max_value=80), st.data())
def test_inclusion_proofs_batch_equals_single(size: int, data: st.DataObject) -> None:
    leaves = [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(size)]
    wanted = data.draw(st.lists(st.integers(0, size - 1), max_size=10))
    proofs = merkle.inclusion_proofs(leaves, wanted)
    for index in wanted:
        assert proofs[index] == merkle.inclusion_proof(leaves, index)
