"""Bytes -> one JSON document, the same way for every input path (HTTP, CloudEvents, `trm solve`).

JSON exchanged between systems is UTF-8 (RFC 8259 section 8.1). A UTF-8 byte-order mark is
tolerated (the RFC lets a parser ignore it, and editors on Windows write one); everything else that
is not plain UTF-8 JSON gets a `DecodeError` that says what the bytes are and what to send instead:
another charset, a UTF-16/32 body, compressed bytes, invalid UTF-8, a truncated or malformed
document, NaN/Infinity (Python extensions, not JSON), a number of thousands of digits or nesting too
deep to parse.
"""

from __future__ import annotations

import email.message
import json
from typing import Any

# compressed formats by their magic bytes: a body sent compressed without saying so, or a .gz file
_COMPRESSED = ((b"\x1f\x8b", "gzip"), (b"\x28\xb5\x2f\xfd", "zstd"), (b"BZh", "bzip2"), (b"\xfd7zXZ\x00", "xz"), (b"PK\x03\x04", "zip"))
# byte-order marks of the encodings JSON may not use on the wire (UTF-32 first: FF FE 00 00 starts with FF FE)
_BOMS = ((b"\x00\x00\xfe\xff", "UTF-32 (big-endian)"), (b"\xff\xfe\x00\x00", "UTF-32 (little-endian)"), (b"\xfe\xff", "UTF-16 (big-endian)"), (b"\xff\xfe", "UTF-16 (little-endian)"))
UTF8_BOM = b"\xef\xbb\xbf"
_UTF8_NAMES = {"utf-8", "utf8", "us-ascii", "ascii"}  # ASCII is a subset of UTF-8


class DecodeError(ValueError):
    """The bytes are not one UTF-8 JSON document; the message says what they are instead.

    `unsupported` is True for a media problem (another charset or a compression): an HTTP caller
    answers it 415 Unsupported Media Type, and any other problem 400."""

    def __init__(self, message: str, *, unsupported: bool = False) -> None:
        super().__init__(message)
        self.unsupported = unsupported


def check_media(content_type: str | None, content_encoding: str | None = None, what: str = "the body") -> None:
    """Raise DecodeError (unsupported) for a declared charset other than UTF-8 or a content coding.

    `content_type` is a Content-Type header value (or None), `content_encoding` a Content-Encoding one."""
    if content_encoding and content_encoding.strip().lower() not in ("", "identity"):
        raise DecodeError(f"{what} is {content_encoding.strip()}-encoded (Content-Encoding); send it uncompressed", unsupported=True)
    if content_type:
        message = email.message.Message()
        message["content-type"] = content_type
        charset = message.get_param("charset")
        if isinstance(charset, str) and charset.strip().lower() not in _UTF8_NAMES:
            raise DecodeError(f"charset {charset.strip()!r} is not supported; send {what} as UTF-8 (charset=utf-8)", unsupported=True)


def decode_text(data: bytes, what: str = "the body") -> str:
    """UTF-8 bytes -> text, a leading UTF-8 byte-order mark dropped. Raises DecodeError."""
    for magic, name in _COMPRESSED:
        if data.startswith(magic):
            raise DecodeError(f"{what} is {name}-compressed data; send it uncompressed", unsupported=True)
    for bom, name in _BOMS:
        if data.startswith(bom):
            raise DecodeError(f"{what} is {name} (byte-order mark {bom.hex(' ').upper()}); JSON must be UTF-8")
    if data.startswith(UTF8_BOM):
        data = data[len(UTF8_BOM) :]
    if b"\x00" in data[:4] and len(data) >= 2:
        raise DecodeError(f"{what} holds NUL bytes at its start: UTF-16 or UTF-32 without a byte-order mark? JSON must be UTF-8")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        if e.end == len(data) and e.reason == "unexpected end of data":
            raise DecodeError(f"{what} ends in the middle of a UTF-8 character: truncated?") from None
        byte = data[e.start]
        hint = " (latin-1 or another 8-bit charset?)" if 0x80 <= byte else ""
        raise DecodeError(f"{what} is not valid UTF-8: byte 0x{byte:02x} at offset {e.start}: {e.reason}{hint}") from None


def loads(data: bytes | str, what: str = "the body") -> Any:
    """One JSON document from UTF-8 bytes (or text). Raises DecodeError saying what is wrong and where."""
    text = decode_text(data, what) if isinstance(data, bytes) else data.removeprefix("\ufeff")
    if not text.strip():
        raise DecodeError(f"{what} is empty; send a JSON document")

    def no_constant(name: str) -> Any:
        raise DecodeError(f"{what} holds {name}, which is not JSON (a Python extension); use a number or null")

    try:
        return json.loads(text, parse_constant=no_constant)
    except json.JSONDecodeError as e:
        if e.pos >= len(text.rstrip()) or e.msg.startswith("Unterminated string"):  # the text ran out
            raise DecodeError(f"{what} ends early ({e.msg}, line {e.lineno}, column {e.colno}): truncated?") from None
        raise DecodeError(f"{what} is not valid JSON: {e.msg} (line {e.lineno}, column {e.colno})") from None
    except RecursionError:
        raise DecodeError(f"{what} is nested too deeply to parse") from None
    except ValueError as e:  # int() refuses a literal of more digits than sys.get_int_max_str_digits() (4300)
        raise DecodeError(f"{what} holds a number too long to read ({e}); no field takes such a number") from None
