"""Turning uploaded bytes into corpus text: encoding detection and normalization.

Accepted: UTF-8 (with or without BOM), UTF-16 with a BOM, else Windows-1252, the usual
encodings of plain-text books. Line endings become LF. Binary data is refused rather than
decoded into nonsense: a NUL byte in a BOM-less file, or a NUL character after decoding.
"""

import codecs
import hashlib
import re

from shared.contracts.errors import CorpusRejectedError

# White space (exactly what str.isspace calls so) and the byte-order mark a UTF-8 file may
# start with: a text of nothing else holds no text. Written in the syntax both Python's re
# and JSON Schema (ECMA-262) read alike, so the API's schema says the same (TEXT_PATTERN).
_BLANK = (r"\t-\r\u001c-\u001f \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f"
          r"\u3000\ufeff")
_VISIBLE = re.compile(f"[^{_BLANK}]")
# A text this module accepts, as a JSON Schema pattern over the uploaded string: no NUL,
# and at least one character that is not blank.
TEXT_PATTERN = rf"^[^\u0000]*[^\u0000{_BLANK}][^\u0000]*$"


def decode_corpus(data):
    """Return (text, encoding) for uploaded `data`, or raise CorpusRejectedError."""
    if data.startswith(codecs.BOM_UTF8):
        text, encoding = _decode(data[len(codecs.BOM_UTF8):], "utf-8"), "utf-8-sig"
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        text, encoding = _decode(data, "utf-16"), "utf-16"
    elif b"\x00" in data:
        raise CorpusRejectedError("the upload looks binary (it contains NUL bytes)",
                                  field="file")
    else:
        try:
            text, encoding = data.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            text, encoding = _decode(data, "windows-1252"), "windows-1252"
    if "\x00" in text:
        raise CorpusRejectedError("the upload looks binary (it contains NUL characters)",
                                  field="file")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not _VISIBLE.search(text):
        raise CorpusRejectedError("the upload holds no text", field="file")
    return text, encoding


def _decode(data, encoding):
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as e:
        raise CorpusRejectedError(
            f"the upload is not valid text in {encoding} (byte {e.start})", field="file"
        ) from e


def text_sha256(text):
    """The corpus' identity in the artifact store: the hash of its normalized UTF-8 text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
