"""Language calibration of a multilingual embedding space: remove its language directions.

Why: multilingual-e5 vectors carry, besides their meaning, a component that says which
language a text is written in. A Chinese question is therefore closer to every Chinese passage
than to the English passage that answers it, and plain top-k buries the other language
(dev set, plain dense top-k: English→Chinese R@5 0.00; README). The component is close to one direction per prompt
("query: " and "passage: "), so it can be estimated from a parallel word list and projected
out of both the question and the passages; what is left compares meaning across languages.

The directions come from the bilingual glossary (`assistant/glossary.tsv`): the mean English
term minus the mean Chinese term, once embedded as queries and once as passages. A parallel
list measures language alone, not what the library happens to be about, so the same axes
serve any library built with the model. They cost one embedding pass (about 1 s), cached
next to the model.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from assistant.glossary import Glossary
from index.model.embedder import Embedder
from ingest.disk import write_atomic


@dataclass(frozen=True)
class LanguageAxes:
    """Orthonormal rows spanning the directions that separate languages."""

    basis: np.ndarray  # (r, dim)

    def project(self, vecs: np.ndarray) -> np.ndarray:
        """`vecs` with the language directions removed (not renormalised)."""
        vecs = np.asarray(vecs, dtype=np.float32)
        return vecs - (vecs @ self.basis.T) @ self.basis

    def cosines(self, query: np.ndarray, passages: np.ndarray) -> np.ndarray:
        """Cosine between the projected query and each projected passage."""
        q = self.project(query)
        p = self.project(passages)
        q_norm = float(np.linalg.norm(q)) or 1.0
        p_norm = np.linalg.norm(p, axis=1)
        return (p @ q) / (q_norm * np.where(p_norm > 0, p_norm, 1.0))


def _basis(directions: list[np.ndarray]) -> np.ndarray:
    q, r = np.linalg.qr(np.stack(directions).T.astype(np.float64))
    keep = np.abs(np.diag(r)) > 1e-6  # a direction the others already span adds nothing
    return q.T[keep].astype(np.float32)


def estimate_axes(embedder: Embedder, glossary: Glossary) -> LanguageAxes:
    """Language directions of `embedder`, from the glossary's (Chinese, English) term pairs."""
    zh = list(glossary.zh_to_en)
    en = [glossary.zh_to_en[term][0] for term in zh]
    directions = []
    for kind in ("query", "passage"):
        vecs = embedder.embed(zh + en, kind=kind)
        directions.append(vecs[len(zh) :].mean(axis=0) - vecs[: len(zh)].mean(axis=0))
    return LanguageAxes(_basis(directions))


def _key(embedder: Embedder, glossary: Glossary) -> str:
    text = embedder.name + "\n" + "\n".join(f"{z}\t{e[0]}" for z, e in glossary.zh_to_en.items())
    return hashlib.sha256(text.encode()).hexdigest()[:16]


_MEMORY: dict[str, LanguageAxes] = {}


def language_axes(embedder: Embedder, glossary: Glossary, cache_dir: Path | None) -> LanguageAxes:
    """Cached `estimate_axes`: in memory, and as a small .npy file in `cache_dir` if given."""
    key = _key(embedder, glossary)
    if key in _MEMORY:
        return _MEMORY[key]
    path = cache_dir / f"language-axes-{key}.npy" if cache_dir else None
    axes = None
    if path is not None and path.is_file():
        try:
            basis = np.load(path)
            if basis.ndim == 2 and basis.shape[1] == embedder.dim:
                axes = LanguageAxes(basis.astype(np.float32))
        except (OSError, ValueError):
            axes = None  # a damaged cache file is recomputed, never trusted
    if axes is None:
        axes = estimate_axes(embedder, glossary)
        if path is not None:
            try:
                buf = io.BytesIO()
                np.save(buf, axes.basis)
                write_atomic(path, buf.getvalue())
            except OSError:
                pass  # a read-only home only costs the recomputation next time
    _MEMORY[key] = axes
    return axes
