"""The CLIP byte-pair tokenizer that PE-Core's text tower reads, as the official code runs it.

Behaviour (``core/vision_encoder/tokenizer.py``'s ``SimpleTokenizer`` with ``clean="lower"``):

- cleaning: ``ftfy.fix_text``, HTML entities unescaped twice, runs of whitespace collapsed to one
  space, stripped, lower-cased;
- words: the CLIP pattern (contractions ``'s 't 're 've 'm 'll 'd``, letter runs, single digits,
  runs of other non-space symbols), each word's UTF-8 bytes mapped to printable characters and
  merged by the BPE ranks, ``</w>`` marking a word's end;
- ids: ``[<start_of_text>] + tokens + [<end_of_text>]``, zero-padded to the context length (32
  for PE-Core T/S/B/L, 72 for G); a longer sequence is cut to the context length and its last id
  replaced by ``<end_of_text>``. The end token has the highest id (49407), which is how the text
  tower finds it (argmax pooling).

The BPE merges file (``bpe_simple_vocab_16e6.txt.gz``, OpenAI CLIP's) is not part of pe_dense:
it is read from the installed ``open_clip_torch`` package (``pip install 'pe-dense[text]'``),
or from ``vocab_path``. ``ftfy`` and ``regex`` come with that extra.
"""

from __future__ import annotations

import gzip
import html
import importlib.util
import os
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch

__all__ = ["ClipTokenizer", "open_clip_file", "SOT", "EOT", "VOCAB_SIZE"]

SOT, EOT = "<start_of_text>", "<end_of_text>"
VOCAB_FILE = "bpe_simple_vocab_16e6.txt.gz"
NUM_MERGES = 49152 - 256 - 2  # merges used by CLIP: 48894
VOCAB_SIZE = 2 * 256 + NUM_MERGES + 2  # 49408
_WORD_PATTERN = r"""{special}|'s|'t|'re|'ve|'m|'ll|'d|[\p{{L}}]+|[\p{{N}}]|[^\s\p{{L}}\p{{N}}]+"""
_INSTALL = "pip install 'pe-dense[text]' (open_clip_torch ships the CLIP vocabulary; ftfy, regex)"


def open_clip_file(name: str) -> Path:
    """Path of file ``name`` inside the installed ``open_clip`` package, found without importing
    it (its import pulls in timm and takes seconds). ``ImportError`` with the install line if the
    package is absent."""
    spec = importlib.util.find_spec("open_clip")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"the CLIP tokenizer needs open_clip_torch: {_INSTALL}")
    path = Path(next(iter(spec.submodule_search_locations))) / name
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the installed open_clip_torch; "
                                f"reinstall it ({_INSTALL}) or pass vocab_path=")
    return path


@lru_cache(maxsize=1)
def byte_symbols() -> dict[int, str]:
    """Byte -> one printable character: printable Latin-1 bytes stand for themselves, the other
    68 bytes (controls, space, soft hyphen ...) for characters 256, 257, ... in byte order."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
            *range(ord("®"), ord("ÿ") + 1)]
    table = {b: chr(b) for b in keep}
    extra = (b for b in range(256) if b not in table)
    table.update({b: chr(256 + n) for n, b in enumerate(extra)})
    return table


@lru_cache(maxsize=4)
def _load_merges(path: str) -> tuple[tuple[str, str], ...]:
    lines = gzip.open(path).read().decode("utf-8").split("\n")
    merges = tuple(tuple(line.split()) for line in lines[1: NUM_MERGES + 1])
    if len(merges) != NUM_MERGES or any(len(m) != 2 for m in merges):
        raise ValueError(f"{path} is not the CLIP BPE merges file ({VOCAB_FILE})")
    return merges  # type: ignore[return-value]


def _text_libs() -> tuple[Any, Any]:
    try:
        import ftfy
        import regex
    except ImportError as exc:
        raise ImportError(f"the CLIP tokenizer needs ftfy and regex: {_INSTALL}") from exc
    return ftfy, regex


class ClipTokenizer:
    """Text -> CLIP token ids. ``tok(["a dog", ""])`` -> (2, context_length) int64.

    ``context_length``: ids per prompt (the text tower's ``context_length``); ``vocab_path``:
    the BPE merges file, default the one open_clip_torch ships.
    """

    def __init__(self, context_length: int, vocab_path: str | os.PathLike | None = None) -> None:
        if context_length < 2:
            raise ValueError(f"context_length={context_length}: need at least 2 (start and end)")
        self.ftfy, self.regex = _text_libs()
        self.context_length = context_length
        merges = _load_merges(str(vocab_path or open_clip_file(VOCAB_FILE)))
        symbols = list(byte_symbols().values())
        vocab = symbols + [s + "</w>" for s in symbols] + ["".join(m) for m in merges]
        self.encoder = {piece: i for i, piece in enumerate(vocab + [SOT, EOT])}
        self.decoder = {i: piece for piece, i in self.encoder.items()}
        self.ranks = {m: i for i, m in enumerate(merges)}
        self.sot_id, self.eot_id = self.encoder[SOT], self.encoder[EOT]
        special = f"{self.regex.escape(SOT)}|{self.regex.escape(EOT)}"
        self.pattern = self.regex.compile(_WORD_PATTERN.format(special=special),
                                          self.regex.IGNORECASE)
        self._cache: dict[str, list[str]] = {SOT: [SOT], EOT: [EOT]}

    def clean(self, text: str) -> str:
        """ftfy + double HTML unescape, whitespace collapsed, stripped, lower-cased."""
        text = html.unescape(html.unescape(self.ftfy.fix_text(text))).strip()
        return self.regex.sub(r"\s+", " ", text).strip().lower()

    def bpe(self, word: str) -> list[str]:
        """One word (already byte-mapped) -> its BPE pieces, the last one ending in ``</w>``."""
        if word in self._cache:
            return self._cache[word]
        parts = list(word[:-1]) + [word[-1] + "</w>"]
        while len(parts) > 1:
            pairs = {(a, b) for a, b in zip(parts[:-1], parts[1:], strict=True)}
            best = min(pairs, key=lambda p: self.ranks.get(p, NUM_MERGES))
            if best not in self.ranks:
                break
            merged, i = [], 0
            while i < len(parts):
                if i + 1 < len(parts) and (parts[i], parts[i + 1]) == best:
                    merged.append(parts[i] + parts[i + 1])
                    i += 2
                else:
                    merged.append(parts[i])
                    i += 1
            parts = merged
        self._cache[word] = parts
        return parts

    def encode(self, text: str) -> list[int]:
        """The ids of ``text`` without start/end tokens or padding."""
        table = byte_symbols()
        ids: list[int] = []
        for word in self.pattern.findall(self.clean(text)):
            mapped = "".join(table[b] for b in word.encode("utf-8"))
            ids += [self.encoder[piece] for piece in self.bpe(mapped)]
        return ids

    def decode(self, ids: Sequence[int]) -> str:
        """Ids -> text (``</w>`` as spaces; padding zeros and special tokens are dropped)."""
        inverse = {c: b for b, c in byte_symbols().items()}
        pieces = "".join(self.decoder[int(i)] for i in ids
                         if int(i) not in (0, self.sot_id, self.eot_id))
        text = bytearray(inverse[c] for c in pieces).decode("utf-8", errors="replace")
        return text.replace("</w>", " ").strip()

    def __call__(self, texts: str | Sequence[str]) -> torch.Tensor:
        """One prompt or a list -> (N, context_length) int64 ids (see the module docstring)."""
        if isinstance(texts, str):
            texts = [texts]
        out = torch.zeros(len(texts), self.context_length, dtype=torch.long)
        for row, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"prompt {row} is {type(text).__name__}, expected str")
            ids = [self.sot_id, *self.encode(text), self.eot_id][: self.context_length]
            ids[-1] = self.eot_id
            out[row, : len(ids)] = torch.tensor(ids)
        return out
