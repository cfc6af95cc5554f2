"""Whether a change left retrieval and answers as they were: two `askdocs eval --json` runs
(with or without --answers) of the same questions on the same library, compared question by
question.

    askdocs eval ../shared/eval/dev.jsonl --library base --answers --json > before.json
    (change the code; the same library, not re-ingested)
    python -m ui.cli eval ../shared/eval/dev.jsonl --library base --answers --json > after.json
    python bench/same_results.py before.json after.json

Counted: the same top 10 in order (chunk ids and scores), the same abstention, and (with
--answers) the same answer (text, citations, flags; its latency left out).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def _questions(path: Path) -> dict[str, dict]:
    return {q["id"]: q for q in json.loads(path.read_text(encoding="utf-8"))["questions"]}


def _top(q: dict) -> list[tuple[int, float]]:
    return [(h["chunk_id"], h["score"]) for h in q["hits"][:10]]


def _answer(q: dict) -> str:
    a = {k: v for k, v in (q.get("answer") or {}).items() if "latency" not in k}
    return json.dumps(a, sort_keys=True, ensure_ascii=False)


def main(before: Path, after: Path) -> int:
    b, a = _questions(before), _questions(after)
    same_top = [k for k in b if k in a and _top(b[k]) == _top(a[k])]
    same_abst = [k for k in b if k in a and b[k]["abstained"] == a[k]["abstained"]]
    same_ans = [k for k in b if k in a and _answer(b[k]) == _answer(a[k])]
    print("| questions | same top 10 | same abstention | same answer | only in one |")
    print("|---|---|---|---|---|")
    print(
        f"| {len(b)} | {len(same_top)} | {len(same_abst)} | {len(same_ans)} | {len(set(a) ^ set(b))} |"
    )
    for k in b:
        if k not in same_top or k not in same_ans:
            print(f"differs: {k}")
    return 0 if len(same_top) == len(same_ans) == len(b) == len(a) else 1


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
