"""C2SP signed notes (aegisflow.ledger.note) and tlog checkpoints (aegisflow.ledger.checkpoint)."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from aegisflow.errors import InputError, KeyMaterialError, MalformedData, SignatureError
from aegisflow.keys import PublicKey, Signer
from aegisflow.ledger import note
from aegisflow.ledger.checkpoint import Checkpoint, open_checkpoint, sign_checkpoint

EM = "\u2014"

# c2sp.org/signed-note v1.0.0, section "Example" (C2SP/C2SP signed-note.md at d4c16da5;
# later revisions replaced it with a poem whose key the spec does not publish).
SPEC_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
SPEC_TEXT = "This is an example message.\n"
SPEC_NOTE = (
    SPEC_TEXT + "\n" + EM + " example.com/foo "
    "Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n"
)

# golang.org/x/mod/sumdb/note (the reference implementation) package doc and tests.
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
PETER_SIG = (
    EM + " PeterNeumann "
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)
ENOCH_SIG = (
    EM + " EnochRoot "
    "rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n"
)
# transparency-dev/formats note tests: a vkey whose base64 contains '+'.
PLUS_VKEY = "TEST+7997405c+AQcC+FTVKf0jlTdHDY3rbevmnKxxPjigCXlVtGe6RIr6"

# c2sp.org/tlog-checkpoint v1.0.0 example (its public key is not published).
SPEC_CHECKPOINT = (
    "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n"
    + EM
    + " example.com/behind-the-sofa "
    "Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"
)

# RFC 8032 section 7.1 TEST 1 and TEST 2 seeds.
LOG = Signer(bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"))
WITNESS = Signer(bytes.fromhex("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb"))
ORIGIN = "aegisflow.example/ledger/test"


def _go_signer() -> Signer:
    raw = base64.b64decode(GO_SKEY.split("+", 4)[4])
    assert raw[0] == 0x01
    return Signer(raw[1:])


# -- signed note: published vectors --------------------------------------------------


def test_spec_example_verifies() -> None:
    name, key = note.parse_verifier_key(SPEC_VKEY)
    assert name == "example.com/foo"
    assert note.key_id(name, key).hex() == "530d903a"
    assert note.verifier_key(name, key) == SPEC_VKEY
    parsed = note.parse_note(SPEC_NOTE)
    assert parsed.text == SPEC_TEXT
    assert [(s.name, s.key_id.hex()) for s in parsed.signatures] == [
        ("example.com/foo", "530d903a")
    ]
    assert note.verify_note(parsed, name, key)
    assert parsed.serialize() == SPEC_NOTE
    assert note.parse_note(SPEC_NOTE.encode()) == parsed


def test_spec_example_tampered_does_not_verify() -> None:
    name, key = note.parse_verifier_key(SPEC_VKEY)
    tampered = note.parse_note(SPEC_NOTE.replace("example message", "example massage"))
    assert not note.verify_note(tampered, name, key)
    # Same key under another name: no line with that name and key id, so no signature.
    assert not note.verify_note(note.parse_note(SPEC_NOTE), "example.com/bar", key)
    assert not note.verify_note(note.parse_note(SPEC_NOTE), name, WITNESS.public_key)


def test_go_reference_signature_is_reproduced_bit_exact() -> None:
    signer = _go_signer()
    assert note.verifier_key("PeterNeumann", signer.public_key) == GO_VKEY
    assert note.sign_note(GO_TEXT, "PeterNeumann", signer) == GO_TEXT + "\n" + PETER_SIG


def test_go_reference_note_with_two_signatures() -> None:
    parsed = note.parse_note(GO_TEXT + "\n" + PETER_SIG + ENOCH_SIG)
    assert len(parsed.signatures) == 2
    for vkey in (GO_VKEY, ENOCH_VKEY):
        assert note.verify_note(parsed, *note.parse_verifier_key(vkey))


def test_vkey_with_plus_in_base64() -> None:
    name, key = note.parse_verifier_key(PLUS_VKEY)
    assert name == "TEST"
    assert note.verifier_key(name, key) == PLUS_VKEY


def test_key_id_definition() -> None:
    key = LOG.public_key
    expected = hashlib.sha256(b"a.example/k\n\x01" + key.raw).digest()[:4]
    assert note.key_id("a.example/k", key) == expected


# -- signed note: our own round trips --------------------------------------------------


def test_every_single_byte_change_of_the_spec_note_is_caught() -> None:
    name, key = note.parse_verifier_key(SPEC_VKEY)
    data = SPEC_NOTE.encode()
    for i in range(len(data)):
        bad = bytearray(data)
        bad[i] ^= 0x01
        try:
            parsed = note.parse_note(bytes(bad))
        except MalformedData:
            continue
        assert not note.verify_note(parsed, name, key), f"byte {i} change went unnoticed"


@pytest.mark.parametrize(
    "text",
    [
        "one line\n",
        "\n",
        "para one\n\npara two\n",
        "ends with a blank line\n\n",
        "unicode: ed è subito sera — ok\n",
        "— looks like a signature line\n",
    ],
)
def test_sign_parse_verify_round_trip(text: str) -> None:
    signed = note.sign_note(text, ORIGIN, LOG)
    parsed = note.parse_note(signed)
    assert parsed.text == text
    assert parsed.serialize() == signed
    assert note.verify_note(parsed, ORIGIN, LOG.public_key)
    assert not note.verify_note(parsed, ORIGIN, WITNESS.public_key)


def test_cosigned_note_and_unknown_signatures_are_ignored() -> None:
    signed = note.sign_note("text\n", ORIGIN, LOG)
    cosig = note.sign_note("text\n", "witness.example", WITNESS).split("\n")[-2] + "\n"
    parsed = note.parse_note(signed + cosig + SPEC_NOTE.split("\n")[-2] + "\n")
    assert len(parsed.signatures) == 3
    assert note.verify_note(parsed, ORIGIN, LOG.public_key)
    assert note.verify_note(parsed, "witness.example", WITNESS.public_key)


def test_a_failing_signature_from_the_known_key_rejects_the_note() -> None:
    good = note.sign_note("text\n", ORIGIN, LOG)
    forged = note.sign_note("other\n", ORIGIN, LOG).split("\n")[-2] + "\n"
    parsed = note.parse_note(good + forged)
    assert not note.verify_note(parsed, ORIGIN, LOG.public_key)


@pytest.mark.parametrize(
    "text", ["", "no newline", "tab\there\n", "nul\x00\n", "cr\r\n", "surrogate \udc80\n"]
)
def test_sign_note_rejects_bad_text(text: str) -> None:
    with pytest.raises(InputError):
        note.sign_note(text, ORIGIN, LOG)


@pytest.mark.parametrize("name", ["", "two words", "a+b", "nbsp\u00a0x", "tab\tx", "nl\nx"])
def test_bad_key_names_are_refused(name: str) -> None:
    with pytest.raises(InputError):
        note.sign_note("text\n", name, LOG)
    with pytest.raises(InputError):
        note.key_id(name, LOG.public_key)


_GOOD_LINE = SPEC_NOTE.split("\n")[-2]
_GOOD_B64 = _GOOD_LINE.split(" ")[-1]


@pytest.mark.parametrize(
    ("data", "match"),
    [
        pytest.param("no signatures\n", "no blank line", id="no-blank-line"),
        pytest.param("text\n\n", "signature block is empty", id="empty-sig-block"),
        pytest.param(SPEC_NOTE[:-1], "final newline", id="no-final-newline"),
        pytest.param(SPEC_TEXT + "\n" + _GOOD_LINE[2:] + "\n", "'— '", id="no-em-dash"),
        pytest.param(SPEC_TEXT + "\n-- " + _GOOD_LINE[2:] + "\n", "'— '", id="ascii-dashes"),
        pytest.param(SPEC_TEXT + "\n" + EM + " example.com/foo\n", "no signature", id="no-sig"),
        pytest.param(
            SPEC_TEXT + "\n" + EM + " example.com/foo  " + _GOOD_B64 + "\n",
            "not valid base64",
            id="double-space",
        ),
        pytest.param(
            SPEC_TEXT + "\n" + EM + " example.com/foo " + _GOOD_B64[:-1] + "\n",
            "not valid base64",
            id="bad-padding",
        ),
        pytest.param(
            SPEC_TEXT + "\n" + EM + " example.com/foo AAAAAA==\n", "too short", id="short-sig"
        ),
        pytest.param(
            SPEC_TEXT + "\n" + EM + " example.com/foo AAAAAAB=\n",
            "not canonical",
            id="noncanonical-base64",
        ),
        pytest.param(
            SPEC_TEXT + "\n" + EM + " a+b " + _GOOD_B64 + "\n", "key name", id="plus-in-name"
        ),
        pytest.param(
            SPEC_TEXT + "\n" + EM + "  " + _GOOD_B64 + "\n", "key name is empty", id="empty-name"
        ),
        pytest.param(SPEC_NOTE.replace("This", "Th\ris"), "control character", id="cr"),
        pytest.param(SPEC_NOTE.replace("This", "Th\tis"), "control character", id="tab"),
        pytest.param(SPEC_NOTE + "\x00", "control character", id="nul"),
        pytest.param(SPEC_NOTE.replace("This", "Th\udc80is"), "UTF-8", id="lone-surrogate"),
        pytest.param(SPEC_NOTE.encode().replace(b"This", b"Th\xffis"), "UTF-8", id="bad-utf8"),
        pytest.param(SPEC_NOTE + _GOOD_LINE + "\n\n", "signature block is empty", id="trailing"),
        pytest.param("x" * (1 << 20) + SPEC_NOTE, "more than", id="too-large-str"),
        pytest.param(("é" * (1 << 19)) + SPEC_NOTE, "more than", id="too-large-utf8"),
        pytest.param(b"x" * (1 << 20) + SPEC_NOTE.encode(), "more than", id="too-large-bytes"),
        pytest.param(SPEC_NOTE + (_GOOD_LINE + "\n") * 100, "101 signatures", id="too-many-sigs"),
    ],
)
def test_parse_note_rejects_malformed(data: str | bytes, match: str) -> None:
    with pytest.raises(MalformedData, match=match):
        note.parse_note(data)


def test_parse_note_signature_limit_is_inclusive_and_configurable() -> None:
    hundred = SPEC_TEXT + "\n" + (_GOOD_LINE + "\n") * 100
    assert len(note.parse_note(hundred).signatures) == 100
    with pytest.raises(MalformedData):
        note.parse_note(hundred, max_signatures=16)
    with pytest.raises(MalformedData):
        note.parse_note(SPEC_NOTE, max_bytes=len(SPEC_NOTE.encode()) - 1)
    assert note.parse_note(SPEC_NOTE, max_bytes=len(SPEC_NOTE.encode())).text == SPEC_TEXT


@pytest.mark.parametrize(
    "vkey",
    [
        "example.com/foo+530d903b+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",  # wrong id
        "example.com/bar+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",  # wrong name
        "example.com/foo+530d903a+AukyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",  # type 0x02
        "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U",  # short
        "example.com/foo+530d903a+not base64!",
        "example.com/foo+530d90+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
        "example.com/foo+530d903a",
        "+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
        "a b+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOkyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
    ],
)
def test_parse_verifier_key_rejects(vkey: str) -> None:
    with pytest.raises(KeyMaterialError):
        note.parse_verifier_key(vkey)


# -- checkpoints -----------------------------------------------------------------------

ROOT = bytes(range(32))

# Golden vector: RFC 8032 TEST 1 seed, origin ORIGIN, size 7, root 00 01 .. 1f. Ed25519 is
# deterministic, so these bytes must never change; they are checked below with pyca
# cryptography and hashlib, independently of aegisflow.keys and aegisflow.ledger.note.
GOLDEN_CHECKPOINT = (
    "aegisflow.example/ledger/test\n"
    "7\n"
    "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n"
    "\n"
    "\u2014 aegisflow.example/ledger/test "
    "C5+jrV5H4YQ/41OW2SrUP0EkfIutALAUCwWK/OqSqER4Gex9CrrR9g69xHgUd9OuD6iacx4mVbfpypWlC9TGyMZ2GAA=\n"
)


def test_checkpoint_body_and_parse_round_trip() -> None:
    cp = Checkpoint(origin=ORIGIN, size=7, root=ROOT)
    assert cp.body() == f"{ORIGIN}\n7\n{base64.b64encode(ROOT).decode()}\n"
    assert Checkpoint.parse_body(cp.body()) == cp
    empty = Checkpoint(origin=ORIGIN, size=0, root=hashlib.sha256(b"").digest())
    assert Checkpoint.parse_body(empty.body()) == empty
    big = Checkpoint(origin=ORIGIN, size=2**64 - 1, root=ROOT)
    assert Checkpoint.parse_body(big.body()) == big


def test_spec_checkpoint_example_parses() -> None:
    parsed = note.parse_note(SPEC_CHECKPOINT)
    cp = Checkpoint.parse_body(parsed.text)
    assert cp.origin == "example.com/behind-the-sofa"
    assert cp.size == 20852163
    assert cp.body() == parsed.text


def test_extension_lines_are_accepted_and_ignored() -> None:
    body = Checkpoint(origin=ORIGIN, size=3, root=ROOT).body()
    assert Checkpoint.parse_body(body + "ext one\next two\n").size == 3
    signed = note.sign_note(body + "ext one\n", ORIGIN, LOG)
    assert open_checkpoint(signed, [(ORIGIN, LOG.public_key)]).size == 3


@pytest.mark.parametrize(
    "kwargs",
    [
        {"origin": ""},
        {"origin": "a\nb"},
        {"origin": "nul\x00"},
        {"origin": "tab\t"},
        {"size": -1},
        {"size": 2**64},
        {"size": True},
        {"size": "7"},
        {"root": ROOT[:31]},
        {"root": ROOT + b"\x00"},
        {"root": bytearray(ROOT)},
    ],
)
def test_checkpoint_rejects_invalid_fields(kwargs: dict[str, object]) -> None:
    fields: dict[str, object] = {"origin": ORIGIN, "size": 1, "root": ROOT}
    fields.update(kwargs)
    with pytest.raises(InputError):
        Checkpoint(**fields)  # type: ignore[arg-type]


_ROOT_B64 = base64.b64encode(ROOT).decode()


@pytest.mark.parametrize(
    "text",
    [
        f"{ORIGIN}\n7\n{_ROOT_B64}",  # no final newline
        f"{ORIGIN}\n7\n",
        f"\n7\n{_ROOT_B64}\n",
        f"{ORIGIN}\n07\n{_ROOT_B64}\n",
        f"{ORIGIN}\n00\n{_ROOT_B64}\n",
        f"{ORIGIN}\n+7\n{_ROOT_B64}\n",
        f"{ORIGIN}\n-0\n{_ROOT_B64}\n",
        f"{ORIGIN}\n 7\n{_ROOT_B64}\n",
        f"{ORIGIN}\n7 \n{_ROOT_B64}\n",
        f"{ORIGIN}\n1_000\n{_ROOT_B64}\n",
        f"{ORIGIN}\n\u0667\n{_ROOT_B64}\n",  # ARABIC-INDIC DIGIT SEVEN
        f"{ORIGIN}\n{2**64}\n{_ROOT_B64}\n",
        f"{ORIGIN}\n\n{_ROOT_B64}\n",
        f"{ORIGIN}\n7\n{base64.b64encode(ROOT[:31]).decode()}\n",
        f"{ORIGIN}\n7\n{_ROOT_B64[:-1]}\n",
        f"{ORIGIN}\n7\n{_ROOT_B64[:-2]}9=\n",  # non-canonical final character
        f"{ORIGIN}\n7\n {_ROOT_B64}\n",
        f"{ORIGIN}\n7\n{_ROOT_B64}\n\n",  # empty extension line
        f"{ORIGIN}\r\n7\n{_ROOT_B64}\n",
        f"{ORIGIN}\n7\r\n{_ROOT_B64}\n",
    ],
)
def test_parse_body_is_strict(text: str) -> None:
    with pytest.raises(MalformedData):
        Checkpoint.parse_body(text)


def test_sign_and_open_checkpoint() -> None:
    cp = Checkpoint(origin=ORIGIN, size=7, root=ROOT)
    signed = sign_checkpoint(cp, LOG, key_name=ORIGIN)
    assert signed.startswith(cp.body() + "\n" + EM + " " + ORIGIN + " ")
    assert open_checkpoint(signed, [(ORIGIN, LOG.public_key)]) == cp
    assert open_checkpoint(signed.encode(), [LOG.public_key]) == cp  # bare key: named ORIGIN
    # Extra untrusted keys and unknown cosignatures do not matter.
    cosig = note.sign_note(cp.body(), "witness.example", WITNESS).split("\n")[-2] + "\n"
    trusted = [("witness.example", WITNESS.public_key), (ORIGIN, LOG.public_key)]
    assert open_checkpoint(signed + cosig, trusted) == cp


def test_golden_checkpoint_vector() -> None:
    cp = Checkpoint(origin=ORIGIN, size=7, root=ROOT)
    signed = sign_checkpoint(cp, LOG, key_name=ORIGIN)
    assert signed == GOLDEN_CHECKPOINT
    # Independent check: key id by hashlib, signature by pyca/cryptography.
    text, _, line = signed.rpartition("\n\n")
    raw = base64.b64decode(line.rstrip("\n").split(" ")[2])
    pub = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
    assert raw[:4] == hashlib.sha256(ORIGIN.encode() + b"\n\x01" + pub).digest()[:4]
    Ed25519PublicKey.from_public_bytes(pub).verify(raw[4:], (text + "\n").encode())
    assert open_checkpoint(GOLDEN_CHECKPOINT, [(ORIGIN, PublicKey(pub))]) == cp


def test_every_single_byte_change_of_the_golden_checkpoint_fails() -> None:
    data = GOLDEN_CHECKPOINT.encode()
    for i in range(len(data)):
        bad = bytearray(data)
        bad[i] ^= 0x01
        with pytest.raises((MalformedData, SignatureError)):
            open_checkpoint(bytes(bad), [(ORIGIN, LOG.public_key)])


def _tamper_size(signed: str) -> str:
    return signed.replace("\n7\n", "\n8\n", 1)


def _tamper_root(signed: str) -> str:
    other = base64.b64encode(bytes(range(1, 33))).decode()
    return signed.replace(_ROOT_B64, other, 1)


def _tamper_origin(signed: str) -> str:
    return signed.replace(ORIGIN + "\n", ORIGIN + "x\n", 1)


@pytest.mark.parametrize(
    ("mutate", "error", "match"),
    [
        pytest.param(_tamper_size, SignatureError, "does not verify", id="size"),
        pytest.param(_tamper_root, SignatureError, "does not verify", id="root"),
        pytest.param(_tamper_origin, SignatureError, "no trusted key", id="origin"),
        pytest.param(
            lambda s: s.replace(f"{EM} {ORIGIN}", f"{EM} other.example", 1),
            SignatureError,
            "no signature from a trusted key",
            id="sig-renamed",
        ),
        pytest.param(
            lambda s: s.replace("\n7\n", "\n07\n", 1), MalformedData, "size", id="size-format"
        ),
        pytest.param(lambda s: s.replace("\n\n", "\n", 1), MalformedData, "blank", id="no-gap"),
    ],
)
def test_tampered_checkpoints_fail(mutate: object, error: type[Exception], match: str) -> None:
    signed = sign_checkpoint(Checkpoint(origin=ORIGIN, size=7, root=ROOT), LOG, key_name=ORIGIN)
    assert callable(mutate)
    tampered = mutate(signed)
    assert tampered != signed
    with pytest.raises(error, match=match):
        open_checkpoint(tampered, [(ORIGIN, LOG.public_key)])


def test_untrusted_key_fails() -> None:
    cp = Checkpoint(origin=ORIGIN, size=7, root=ROOT)
    signed = sign_checkpoint(cp, WITNESS, key_name=ORIGIN)
    with pytest.raises(SignatureError, match="no signature from a trusted key"):
        open_checkpoint(signed, [(ORIGIN, LOG.public_key)])
    with pytest.raises(SignatureError, match="no trusted key for checkpoint origin"):
        open_checkpoint(signed, [])
    # A key trusted under another name does not vouch for this origin.
    with pytest.raises(SignatureError, match="no trusted key for checkpoint origin"):
        open_checkpoint(signed, [("other.example/log", WITNESS.public_key)])


def test_bad_signature_from_trusted_key_rejects_even_with_a_good_one() -> None:
    cp = Checkpoint(origin=ORIGIN, size=7, root=ROOT)
    good = sign_checkpoint(cp, LOG, key_name=ORIGIN)
    forged = note.sign_note(cp.body() + "x\n", ORIGIN, LOG).split("\n")[-2] + "\n"
    with pytest.raises(SignatureError, match="does not verify"):
        open_checkpoint(good + forged, [(ORIGIN, LOG.public_key)])


def test_sign_checkpoint_key_name_must_be_origin() -> None:
    cp = Checkpoint(origin=ORIGIN, size=7, root=ROOT)
    with pytest.raises(InputError, match="must equal the origin"):
        sign_checkpoint(cp, LOG, key_name="other.example")
    spaced = Checkpoint(origin="my log", size=1, root=ROOT)  # allowed by the spec ...
    with pytest.raises(InputError):  # ... but not a valid key name, so we never sign it
        sign_checkpoint(spaced, LOG, key_name="my log")


def test_open_checkpoint_with_origin_that_is_not_a_key_name() -> None:
    text = "my log\n1\n" + _ROOT_B64 + "\n"
    fake = text + "\n" + EM + " mylog " + _GOOD_B64 + "\n"
    with pytest.raises(SignatureError, match="not a valid key name"):
        open_checkpoint(fake, [LOG.public_key])
