"""JSON Lines: the one reader of JSONL files, shared by ingest's formats and `eval --pairs`.

Python's json module refuses valid-looking lines in more ways than `JSONDecodeError`: nesting
deeper than it recurses (RecursionError), an integer longer than it converts (ValueError). And
it accepts a lone surrogate escape ("\\ud800"), a string no UTF-8 text can hold, which fails
much later in whatever encodes it (the store's hash, a tokenizer). `parse_json` turns each of
these into one error that says what the text held, so every reader names the file and line.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from traitforge.curation.sources.base import (
    GZIP_ERRORS,
    SKIP_HINT,
    encoding_error,
    gzip_error,
    has_bad_bytes,
    open_input,
    refuse_wide_text,
)
from traitforge.errors import InputError

# A lone surrogate in a parsed value comes from an escape like this one, or from the text itself.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


class JSONRefusal(ValueError):
    """A text that gives no storable JSON value: what it held, in words, and how to fix it.
    `key` is the top-level key whose value holds the fault, where one can be named."""

    def __init__(self, received: str, fix: str, key: str | None = None) -> None:
        super().__init__(received)
        self.received = received
        self.fix = fix
        self.key = key


def parse_json(text: str) -> Any:
    """`json.loads(text)`, raising JSONRefusal for every text it refuses or that holds a lone
    surrogate; the json module's own error is the refusal's cause."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise JSONRefusal(f"malformed JSON ({e.msg} at column {e.colno})", "fix the JSON") from e
    except RecursionError as e:
        raise JSONRefusal(
            "JSON nested deeper than Python's parser can read",
            "nest the lists or objects less deeply",
        ) from e
    except ValueError as e:
        # int() of more digits than sys.get_int_max_str_digits() is the one known case.
        limit = sys.get_int_max_str_digits()
        received = f"a number of more than {limit} digits" if "digits" in str(e) else str(e)
        raise JSONRefusal(received, "write the number as a string or leave it out") from e
    if not _encodes(text) or _SURROGATE_ESCAPE.search(text):
        found, key = _lone_surrogate(value)
        if found:
            raise JSONRefusal(
                "a lone surrogate escape (one of \\ud800-\\udfff without its pair), which is "
                "no character",
                "write the character itself or remove the escape",
                key,
            )
    return value


def _lone_surrogate(value: Any) -> tuple[bool, str | None]:
    """Whether a string in `value` holds a lone surrogate, and the top-level key it is under
    (None when `value` is no object, or the key itself holds it)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if not _encodes(key):
                return True, None
            if _holds_surrogate(item):
                return True, key
        return False, None
    return _holds_surrogate(value), None


def _holds_surrogate(value: Any) -> bool:
    # Iterative: a value nested as deep as the parser allows would overflow a recursive walk.
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if not _encodes(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def json_object(
    path: Path, line: int, text: str, hint: str = SKIP_HINT, example: str | None = None
) -> dict[str, Any] | InputError:
    """One line's JSON object, or the InputError that names the file, line and (where it can)
    the field. `hint` ends every fix ('or ...'); `example` shows the object a line should be."""
    try:
        value = parse_json(text)
    except JSONRefusal as e:
        error = InputError(
            path,
            line,
            e.key,
            expected="one JSON object per line",
            received=e.received,
            fix=f"{e.fix}, {hint}",
        )
        error.__cause__ = e.__cause__ or e
        return error
    if not isinstance(value, dict):
        wrap = f"write the line as {example}" if example else "wrap the values in an object"
        return InputError(
            path,
            line,
            None,
            expected="a JSON object per line",
            received=type(value).__name__,
            fix=f"{wrap}, {hint}",
        )
    return value


def jsonl_rows(
    path: Path, hint: str = SKIP_HINT, example: str | None = None
) -> Iterator[tuple[int, dict[str, Any] | InputError]]:
    """(line number, object) for each non-blank line; a bad line yields its InputError.

    A gzip file is read decompressed. A truncated or corrupt one, or a UTF-16 file, raises
    one InputError for the whole file. `hint` and `example` are `json_object`'s."""
    with open_input(path) as f:
        number = 0
        try:
            refuse_wide_text(path, f.peek(4096)[:4096])
            for raw in f:
                number += 1
                # Without its line ending, so an error at the end names the line's last column.
                text = raw.decode("utf-8", errors="surrogateescape").rstrip("\r\n")
                if number == 1:
                    text = text.removeprefix("\ufeff")
                if not text.strip():
                    continue
                if has_bad_bytes(text):
                    yield number, encoding_error(path, number, hint=hint)
                    continue
                yield number, json_object(path, number, text, hint, example)
        except GZIP_ERRORS as e:
            raise gzip_error(path, number, e) from e
