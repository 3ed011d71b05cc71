"""trm.jsonio: the one decoder of JSON bytes behind every input path."""

from __future__ import annotations

import gzip
import json

import pytest

from trm import jsonio

DOC = {"task": "sudoku", "note": "café"}
TEXT = json.dumps(DOC, ensure_ascii=False)


@pytest.mark.parametrize("data", [TEXT.encode(), b"\xef\xbb\xbf" + TEXT.encode(), TEXT, "\ufeff" + TEXT, b"\n" + TEXT.encode() + b"\n"])
def test_utf8_with_or_without_a_byte_order_mark_is_read(data):
    assert jsonio.loads(data) == DOC


@pytest.mark.parametrize(
    ("data", "fragment", "unsupported"),
    [
        (TEXT.encode("latin-1"), f"not valid UTF-8: byte 0xe9 at offset {TEXT.index('é')}", False),
        (TEXT.encode("utf-16"), "UTF-16 (little-endian) (byte-order mark FF FE)", False),
        (TEXT.encode("utf-16-be"), "NUL bytes", False),
        (TEXT.encode("utf-32"), "UTF-32 (little-endian)", False),
        (gzip.compress(TEXT.encode()), "gzip-compressed", True),
        (b"BZh91AY&SY", "bzip2-compressed", True),
        (TEXT.encode()[:-3], "middle of a UTF-8 character: truncated?", False),
        (TEXT.encode()[:-2], "ends early", False),  # inside a string
        (TEXT.encode()[:-1], "ends early", False),  # the closing brace
        (b'{"a": 1', "ends early", False),
        (b"", "is empty", False),
        (b"  \n", "is empty", False),
        (b'{"a": NaN}', "holds NaN, which is not JSON", False),
        (b'{"a": -Infinity}', "holds -Infinity, which is not JSON", False),
        (b'{"a": 1} trailing', "not valid JSON: Extra data (line 1, column 10)", False),
        (b"[" * 100_000, "nested too deeply", False),
        (b'{"a": 1' + b"0" * 5000 + b"}", "a number too long to read", False),  # past int()'s 4300 digits
    ],
)
def test_everything_else_is_a_decode_error_that_says_what_the_bytes_are(data, fragment, unsupported):
    with pytest.raises(jsonio.DecodeError) as e:
        jsonio.loads(data, "the body")
    assert fragment in str(e.value) and str(e.value).startswith("the body"), str(e.value)
    assert e.value.unsupported is unsupported


@pytest.mark.parametrize(
    ("content_type", "encoding", "fragment"),
    [
        ("application/json; charset=latin-1", None, "charset 'latin-1'"),
        ('application/json; charset="Windows-1252"', None, "charset 'Windows-1252'"),
        ("application/json", "gzip", "gzip-encoded"),
        ("application/json", "br", "br-encoded"),
    ],
)
def test_declared_media_other_than_plain_utf8_is_unsupported(content_type, encoding, fragment):
    with pytest.raises(jsonio.DecodeError) as e:
        jsonio.check_media(content_type, encoding)
    assert e.value.unsupported and fragment in str(e.value)


@pytest.mark.parametrize("content_type", [None, "", "application/json", "application/json; charset=utf-8", "application/json;charset=UTF8", "text/plain; charset=us-ascii"])
def test_utf8_and_ascii_declarations_pass(content_type):
    jsonio.check_media(content_type, "identity")
