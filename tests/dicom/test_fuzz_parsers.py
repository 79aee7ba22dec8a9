"""Fuzzing the parsers that take what the network sends: the multipart reader of STOW-RS and
the DICOM file parser shared by STOW-RS and C-STORE. Only clean refusals are allowed
(``MultipartError``, ``InstanceRejected``); anything else would be a 500 or a dead worker.

Hypothesis builds the inputs: bodies from a multipart grammar with its corners (delimiters
split, missing CRLFs, preambles, transport padding, truncation, huge header lines), and DICOM
files mutated from valid ones (bit flips, truncations, inserted and duplicated bytes, lengths
and VRs overwritten, integers past 64 bits). ``FUZZ_EXAMPLES`` (default 400 per test) says how
hard to try; the seed is fixed so CI is repeatable, and a run with ``FUZZ_SEED`` explores more.
"""

from __future__ import annotations

import io
import os
import struct

import pydicom
import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from tests.dicom.conftest import multipart_body, stow
from yilian.dicom.multipart import MultipartError, build_multipart, parse_multipart
from yilian.dicom.parse import InstanceRejected, prepare_instance
from yilian.dicom.synth import ct_series, dr_image

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "400"))
SEED = int(os.environ.get("FUZZ_SEED", "20261130"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=False,
                suppress_health_check=list(HealthCheck), database=None)

_SEEDS: list[bytes] = []


def seeds() -> list[bytes]:
    """Valid files to mutate: a CT slice, a DR image, and pydicom's own test files."""
    if not _SEEDS:
        _SEEDS.extend([ct_series(1, 32)[0], dr_image(64)])
        from pydicom.data import get_testdata_file

        for name in ("CT_small.dcm", "MR_small.dcm", "rtplan.dcm", "JPEG2000.dcm",
                     "waveform_ecg.dcm", "SC_rgb_small_odd.dcm"):
            path = get_testdata_file(name)
            if path is not None and os.path.exists(str(path)):
                with open(str(path), "rb") as f:
                    _SEEDS.append(f.read())
    return _SEEDS


@st.composite
def mutated_dicom(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(seeds())))
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["flip", "truncate", "insert", "dup", "len", "vr", "big"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "truncate":
            del data[at:]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=64))
        elif kind == "dup":
            data[at:at] = data[at:at + draw(st.integers(1, 256))]
        elif kind == "len" and len(data) > at + 4:
            data[at:at + 4] = struct.pack("<I", draw(st.sampled_from(
                [0, 1, 0xFFFF, 0xFFFFFFFF, 0x7FFFFFFF, draw(st.integers(0, 2**32 - 1))])))
        elif kind == "vr" and len(data) > at + 2:
            data[at:at + 2] = draw(st.sampled_from([b"SQ", b"UN", b"OB", b"IS", b"DS", b"UL",
                                                    b"SV", b"UV", b"AT", b"\x00\x00"]))
        elif kind == "big" and len(data) > at + 20:
            data[at:at + 20] = b"99999999999999999999"
    return bytes(data)


@seed(SEED)
@FUZZ
@given(mutated_dicom())
def test_the_dicom_parser_only_refuses(data: bytes) -> None:
    try:
        prepare_instance(data)
    except InstanceRejected:
        pass


_BOUNDARY = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789'()+_,-./:=? ",
                    min_size=1, max_size=70).filter(lambda b: not b.endswith(" "))


@st.composite
def multipart_bodies(draw: st.DrawFn) -> tuple[bytes, str]:
    boundary = draw(_BOUNDARY)
    parts = draw(st.lists(st.tuples(
        st.binary(max_size=200),
        st.dictionaries(st.sampled_from(["Content-Type", "Content-Length", "X-A", "content-type",
                                         "Content-Location"]),
                        st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126),
                                max_size=40), max_size=3)),
        max_size=6))
    body = bytearray(build_multipart(parts, boundary))
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["cut", "crlf", "insert", "preamble", "delim", "padding",
                                     "longline"]))
        at = draw(st.integers(0, len(body)))
        if kind == "cut":
            del body[at:]
        elif kind == "crlf":
            body[at:at] = draw(st.sampled_from([b"\r\n", b"\n", b"\r", b"\r\n\r\n"]))
        elif kind == "insert":
            body[at:at] = draw(st.binary(max_size=40))
        elif kind == "preamble":
            body[:0] = draw(st.binary(max_size=80))
        elif kind == "delim":
            body[at:at] = b"\r\n--" + boundary.encode() + draw(st.sampled_from([b"", b"--",
                                                                                b"\r\n", b"  "]))
        elif kind == "padding":
            body[at:at] = b" \t" * draw(st.integers(1, 20))
        elif kind == "longline":
            body[at:at] = b"X-Long: " + b"a" * draw(st.integers(1000, 20000)) + b"\r\n"
    return bytes(body), boundary


@seed(SEED)
@FUZZ
@given(multipart_bodies())
def test_the_multipart_reader_only_refuses(case: tuple[bytes, str]) -> None:
    body, boundary = case
    try:
        parse_multipart(body, boundary)
    except MultipartError:
        pass


@pytest.mark.slow
async def test_stow_answers_fuzzed_uploads_without_5xx(api) -> None:
    """Through the real server: mutated files inside well-formed and fuzzed bodies."""
    township = await api.login("township")
    examples: list[tuple[bytes, str]] = []  # (body, Content-Type)

    @seed(SEED)
    @settings(max_examples=max(20, EXAMPLES // 10), deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(st.lists(mutated_dicom(), min_size=1, max_size=3), multipart_bodies())
    def collect(files: list[bytes], fuzzed: tuple[bytes, str]) -> None:
        examples.append(multipart_body(files))
        body, boundary = fuzzed
        examples.append((body, f'multipart/related; type="application/dicom"; '
                               f'boundary="{boundary}"'))

    collect()
    statuses: dict[int, int] = {}
    for body, content_type in examples:
        async with api.http.post(
            api.url("/dicomweb/studies"), data=body,
            headers=township.headers({"Content-Type": content_type,
                                      "Accept": "application/dicom+json"})) as resp:
            await resp.read()
            statuses[resp.status] = statuses.get(resp.status, 0) + 1
            assert resp.status < 500, (resp.status, body[:200])
    assert sum(statuses.values()) == len(examples)
    status, _ = await stow(township, [ct_series(1, 32)[0]])
    assert status == 200  # and the server still stores


def test_the_seeds_are_valid() -> None:
    """The fuzzer starts from files the parser takes, so it explores near real input."""
    for data in seeds()[:2]:
        assert prepare_instance(data).sop_uid
        assert pydicom.dcmread(io.BytesIO(data)).SOPInstanceUID
