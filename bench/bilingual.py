"""Bilingual passages: what a second embedding of every chunk, with its glossary translation
appended, would buy cross-language retrieval, and what it would cost at ingest.

    python bench/bilingual.py [--library default] [--questions ../shared/eval/dev.jsonl]
                              [--weights 0,0.25,0.5,0.75,1]

Document-side translation, at the level of terms: each chunk is embedded a second time as its
passage text plus the other language's glossary terms for the words it contains (the terms a
Chinese question would use for an English passage). A question is then compared with a
passage of the *other* language through (1 - w) · its own vector + w · that bilingual vector;
passages of its own language keep their own vector. Weight 0 is the shipped retriever.

The bilingual vectors are built in memory (nothing is written to the library); the table gives
the dev metrics per weight and the time of the extra embedding pass, which ingest would add.
The questions are the dev set, so the rows show sensitivity, not held-out quality.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEV = ROOT.parent / "shared" / "eval" / "dev.jsonl"


class CrossLanguageView:
    """The library as the retriever sees it, except that passages of a language other than
    the question's are compared through a blend of their own and their bilingual vector."""

    def __init__(self, library, blends: dict[str, tuple[list[int], np.ndarray]]) -> None:
        self.library = library
        self.blends = {
            code: (ids, mat, {j: i for i, j in enumerate(ids)})
            for code, (ids, mat) in blends.items()
        }
        self.q_lang = "en"

    def __getattr__(self, name: str):
        return getattr(self.library, name)

    def dense(self, qvec: np.ndarray, k: int, lang: str | None = None) -> list[tuple[int, float]]:
        if lang == self.q_lang or lang not in self.blends:
            return self.library.dense(qvec, k, lang)
        ids, mat, _ = self.blends[lang]
        scores = mat @ qvec
        top = np.argsort(-scores)[:k]
        return [(ids[i], float(scores[i])) for i in top]

    def vectors(self, ids: list[int], lang: str) -> np.ndarray:
        if lang == self.q_lang or lang not in self.blends:
            return self.library.vectors(ids, lang)
        _, mat, pos = self.blends[lang]
        return mat[[pos[j] for j in ids]]


def main() -> int:
    from assistant import evaluate
    from assistant.glossary import default_glossary
    from assistant.retrieve import Retriever
    from index.config import LibraryConfig
    from index.embedded.writer import passage_text
    from index.library import Library
    from ingest.text import index_lang, text_lang

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--library", default="default")
    p.add_argument("--questions", default=str(DEV))
    p.add_argument("--weights", default="0,0.25,0.5,0.75,1")
    args = p.parse_args()

    class CrossLanguageRetriever(Retriever):
        """Tells the view the question's language before each search."""

        def search(self, query: str, k: int = 10, lang: str | None = None):
            self.library.q_lang = text_lang(query.strip())
            return super().search(query, k, lang)

    library = Library.open(LibraryConfig(name=args.library))
    glossary = default_glossary()
    rows: dict[str, list[tuple[int, str]]] = {}
    for doc in library.documents():
        for chunk in library.chunks(doc.doc_id):
            code = index_lang(chunk.lang)
            if code not in ("en", "zh"):
                continue
            terms = glossary.expand(f"{chunk.heading}\n{chunk.text}", code)
            text = passage_text(chunk, doc.title)
            rows.setdefault(code, []).append(
                (chunk.chunk_id, f"{text}\n{terms}" if terms else text)
            )
    embedder = library.embedder
    embedder.embed(["warm-up"], kind="passage")
    start = time.perf_counter()
    bilingual = {
        code: embedder.embed([text for _, text in pairs], kind="passage")
        for code, pairs in rows.items()
    }
    seconds = time.perf_counter() - start
    n = sum(len(pairs) for pairs in rows.values())

    questions = evaluate.load_questions(args.questions)
    reports = {}
    for w in (float(x) for x in args.weights.split(",")):
        blends = {}
        for code, pairs in rows.items():
            ids = [j for j, _ in pairs]
            mix = (1 - w) * library.vectors(ids, code) + w * bilingual[code]
            blends[code] = (ids, mix / np.linalg.norm(mix, axis=1, keepdims=True))
        search = evaluate.search_with(CrossLanguageRetriever(CrossLanguageView(library, blends)))
        name = "shipped (weight 0)" if w == 0 else f"bilingual weight {w:g}"
        reports[name] = evaluate.summarize(evaluate.run(search, questions, 10), 10)
        print(f"done: {name}", file=sys.stderr)
    print(evaluate.format_table(reports))
    print(f"\nExtra embedding pass that ingest would add: {n} chunks in {seconds:.1f} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
