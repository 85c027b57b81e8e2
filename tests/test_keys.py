"""aegisflow.keys: RFC 8032 vectors, OpenSSH key files and trusted-key parsing."""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from aegisflow import keys
from aegisflow.errors import KeyMaterialError
from aegisflow.keys import PublicKey, Signer

# RFC 8032 section 7.1: (name, secret key/seed, public key, message, signature), hex.
RFC8032_ED25519 = [
    (
        "TEST 1",
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    ),
    (
        "TEST 2",
        "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    ),
    (
        "TEST 3",
        "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
        "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
        "af82",
        "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
    ),
    (
        "TEST SHA(abc)",
        "833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42",
        "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf",
        "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
        "dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b58909351fc9ac90b3ecfdfbc7c66431e0303dca179c138ac17ad9bef1177331a704",
    ),
]

needs_ssh_keygen = pytest.mark.skipif(
    shutil.which("ssh-keygen") is None, reason="ssh-keygen not installed"
)


@pytest.mark.parametrize(
    ("seed", "public", "message", "signature"),
    [pytest.param(*v[1:], id=v[0]) for v in RFC8032_ED25519],
)
def test_rfc8032_vectors_bit_exact(seed: str, public: str, message: str, signature: str) -> None:
    signer = Signer(bytes.fromhex(seed))
    msg = bytes.fromhex(message)
    assert signer.public_key.raw.hex() == public
    assert signer.sign(msg).hex() == signature
    key = PublicKey(bytes.fromhex(public))
    assert key.verify(msg, bytes.fromhex(signature))
    # The SHA(abc) message is the SHA-512 of "abc": the vector is what its name says.
    if message.startswith("ddaf35"):
        assert msg == hashlib.sha512(b"abc").digest()


@pytest.mark.parametrize(
    ("public", "message", "signature"),
    [pytest.param(*v[2:], id=v[0]) for v in RFC8032_ED25519],
)
def test_rfc8032_vectors_reject_any_change(public: str, message: str, signature: str) -> None:
    key = PublicKey(bytes.fromhex(public))
    msg, sig = bytes.fromhex(message), bytes.fromhex(signature)
    assert not key.verify(msg + b"\x00", sig)
    for i in (0, 31, 32, 63):
        bad = bytearray(sig)
        bad[i] ^= 0x01
        assert not key.verify(msg, bytes(bad))
    assert not key.verify(msg, sig[:63])
    assert not key.verify(msg, sig + b"\x00")


def test_signatures_agree_with_a_second_implementation() -> None:
    signer = Signer(bytes(range(32)))
    msg = b"cross-check with pyca/cryptography"
    Ed25519PublicKey.from_public_bytes(signer.public_key.raw).verify(signer.sign(msg), msg)


def test_public_key_requires_32_bytes() -> None:
    with pytest.raises(KeyMaterialError):
        PublicKey(b"\x00" * 31)
    with pytest.raises(KeyMaterialError):
        Signer(b"\x00" * 33)


def test_signer_repr_does_not_leak_the_seed() -> None:
    seed = bytes.fromhex(RFC8032_ED25519[0][1])
    text = repr(Signer(seed))
    assert seed.hex() not in text
    assert "SHA256:" in text


def test_openssh_private_round_trip() -> None:
    signer = Signer(bytes.fromhex(RFC8032_ED25519[1][1]))
    data = signer.openssh_private("ledger@test")
    assert data.startswith(b"-----BEGIN OPENSSH PRIVATE KEY-----\n")
    assert data.endswith(b"-----END OPENSSH PRIVATE KEY-----\n")
    again = Signer.from_openssh_private(data)
    assert again.public_key == signer.public_key
    assert again.sign(b"m") == signer.sign(b"m")


def test_openssh_private_rejects_garbage() -> None:
    with pytest.raises(KeyMaterialError):
        Signer.from_openssh_private(b"not a key")
    data = Signer(bytes(32)).openssh_private().decode().splitlines()
    data[1] = "A" + data[1][1:]  # break the magic header
    with pytest.raises(KeyMaterialError):
        Signer.from_openssh_private("\n".join(data).encode())


def test_openssh_public_round_trip() -> None:
    key = Signer(bytes(range(32))).public_key
    line = key.openssh("me@host")
    assert line.startswith("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI")
    assert line.endswith(" me@host")
    assert PublicKey.from_openssh(line) == key
    assert PublicKey.from_openssh(key.openssh()) == key
    with pytest.raises(KeyMaterialError):
        PublicKey.from_openssh("ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ")


@needs_ssh_keygen
def test_ssh_keygen_reads_our_private_key(tmp_path: Path) -> None:
    signer = Signer(bytes(range(32)))
    path = tmp_path / "id_ed25519"
    keys.save_signer(signer, path, comment="ledger@test")
    assert (path.stat().st_mode & 0o777) == 0o600
    out = subprocess.run(
        ["ssh-keygen", "-y", "-f", str(path)], capture_output=True, text=True, check=True
    ).stdout
    assert PublicKey.from_openssh(out) == signer.public_key
    fp = subprocess.run(
        ["ssh-keygen", "-l", "-f", str(keys.public_path(path))],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert signer.public_key.fingerprint in fp


def test_save_signer_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "k"
    keys.save_signer(Signer(bytes(32)), path, comment="c")
    with pytest.raises(KeyMaterialError, match="already exists"):
        keys.save_signer(Signer(bytes(32)), path, comment="c")


def test_load_signer_round_trip_and_refuses_0644(tmp_path: Path) -> None:
    signer = Signer(bytes(range(32)))
    path = tmp_path / "k"
    keys.save_signer(signer, path, comment="c")
    assert keys.load_signer(path).public_key == signer.public_key
    os.chmod(path, 0o644)
    with pytest.raises(KeyMaterialError, match="group or others") as info:
        keys.load_signer(path)
    assert info.value.hint == f"chmod 600 {path}"


def test_load_signer_missing_file(tmp_path: Path) -> None:
    with pytest.raises(KeyMaterialError, match="does not exist"):
        keys.load_signer(tmp_path / "absent")


def test_parse_public_keys_accepts_all_three_forms() -> None:
    k1 = Signer(bytes([1]) * 32).public_key
    k2 = Signer(bytes([2]) * 32).public_key
    text = "\n".join(
        [
            "# trusted ledger keys",
            "",
            k1.openssh("ops@example"),
            f'ledger@example namespaces="git" {k2.openssh()}',
            "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
        ]
    )
    found = keys.parse_public_keys(text)
    assert found[:2] == [k1, k2]
    assert found[2].raw == base64.b64decode("AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k")[1:]


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("garbage", 1),
        ("# c\n\nssh-rsa AAAAB3NzaC1yc2E= x", 3),
        ("ssh-ed25519 !!!notbase64", 1),
        ("a+b+AQ==", 1),  # a vkey shape, but not 33 bytes
        ("name+01020304+AgAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", 1),  # type 0x02
        # the spec's vkey with the key id of another name
        ("# x\nexample.com/bar+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k", 2),
    ],
)
def test_parse_public_keys_rejects_garbage_with_line_number(text: str, line: int) -> None:
    with pytest.raises(KeyMaterialError, match=rf"^line {line}: "):
        keys.parse_public_keys(text)


def test_parse_public_keys_needs_at_least_one_key() -> None:
    with pytest.raises(KeyMaterialError, match="no public key"):
        keys.parse_public_keys("# only a comment\n\n")


def test_parse_public_keys_vkey_with_plus_in_base64() -> None:
    # Regression: the vkey was once split at its LAST "+", but base64 may contain "+".
    # transparency-dev/formats test key: its base64 contains a "+".
    vkey = "TEST+7997405c+AQcC+FTVKf0jlTdHDY3rbevmnKxxPjigCXlVtGe6RIr6"
    [key] = keys.parse_public_keys(vkey)
    assert key.raw == base64.b64decode(vkey.split("+", 2)[2])[1:]
