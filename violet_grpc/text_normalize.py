"""Text normalisation for comparing transcripts (aggregation, scoring, tests)."""
from __future__ import annotations

import re
import unicodedata

_NON_WORD = re.compile(r"[^\w\s']+")
_SPACES = re.compile(r"\s+")


def normalize_text(text: str) -> str:
    """Lower case, punctuation removed (apostrophes kept inside words), single spaces."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = _NON_WORD.sub(" ", text).replace(" '", " ").replace("' ", " ")
    return _SPACES.sub(" ", text).strip()
