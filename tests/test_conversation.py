"""Follow-up questions are resolved against the conversation; conversations round-trip as JSON."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from assistant.answer import compose_extractive
from assistant.conversation import Conversation, is_follow_up, key_terms, resolve
from assistant.records import Answer, Citation, Hit, Sentence
from ingest.errors import InputError
from ingest.records import Chunk
from tests.helpers import retrieval


@pytest.mark.parametrize(
    "question",
    [
        "那它和 list 有什么区别？",
        "它的参数是什么？",
        "参数呢？",
        "what about in Python 3.8?",
        "How is it different from a tuple?",
        "and the default value?",
        "Examples?",
    ],
)
def test_follow_ups_are_detected(question):
    assert is_follow_up(question)


@pytest.mark.parametrize(
    "question",
    [
        "Python 的字典是什么？",
        "如何用 open 函数读取文件内容？",
        "Why is there no switch/case statement in Python?",
        "What does PyBool_FromLong(0) return?",
    ],
)
def test_self_contained_questions_are_left_alone(question):
    assert not is_follow_up(question)
    assert resolve(question, "walrus operator") == question


def test_follow_up_takes_the_previous_topic():
    # The pronoun is replaced by what it points to; the follow-up's own words lead.
    assert (
        resolve("那它和 list 有什么区别？", "Python 的字典是什么？") == "字典和 list 有什么区别？"
    )
    assert (
        resolve("what about in Python 3.8?", "How do I use the walrus operator?")
        == "walrus operator: what about in Python 3.8?"
    )
    assert (
        resolve("它的参数是什么？", "functools.partial 怎么用？")
        == "functools.partial 的参数是什么？"
    )
    assert resolve("它的参数是什么？", None) == "它的参数是什么？"  # nothing to lean on


@pytest.mark.parametrize(
    ("previous", "question", "query"),
    [
        ("What does str.split return?", "And str.join?", "What does str.join return?"),
        ("ASCII 编码占几个字节？", "那 Unicode 呢？", "Unicode 编码占几个字节？"),
        ("json.dumps 是做什么的？", "And json.loads?", "json.loads 是做什么的？"),
        ("heapq 模块实现了什么算法？", "怎么用它找出最小的 n 个元素？",
         "怎么用 heapq 找出最小的 n 个元素？"),
        ("Why use the decimal module instead of floats?", "How do I set its precision?",
         "How do I set decimal's precision?"),
    ],
)  # fmt: skip
def test_ellipsis_and_pronouns_resolve_to_one_readable_question(previous, question, query):
    assert resolve(question, previous) == query


def test_the_issue_chats_resolve_to_lru_cache():
    """The issue's chat: the first answer led with lru_cache, so "its" and "它" mean lru_cache,
    not the words of the first question."""
    doc = "lru_cache memoizes a function, caching up to maxsize recent calls."
    cite = Citation(1, "docs.en.txt", "d", 0, len(doc), doc, "", "en")
    conv = Conversation()
    q1 = "How do I cache a function's results?"
    conv.add(Answer(q1, True, (Sentence(doc, (1,)),), (cite,), (), q1))
    q2 = conv.resolve("and how do I limit its size?")
    assert q2 == "How do I limit lru_cache's size?"
    conv.add(Answer("and how do I limit its size?", True, (Sentence(doc, (1,)),), (cite,), (), q2))
    assert conv.resolve("怎么清空它？") == "怎么清空 lru_cache？"


def test_topic_carries_through_a_chain_of_follow_ups():
    conv = Conversation()
    for q in ["functools.partial 怎么用？", "它的参数是什么？", "那返回值呢？"]:
        query = conv.resolve(q)
        conv.add(Answer(q, True, (Sentence("…"),), (), (), query))
    assert [t.query for t in conv.turns] == [
        "functools.partial 怎么用？",
        "functools.partial 的参数是什么？",
        "functools.partial：那返回值呢？",
    ]


def test_key_terms_keep_identifiers_and_drop_question_words():
    assert key_terms("What does PyBool_FromLong(0) return?") == ["PyBool_FromLong", "0", "return"]
    assert key_terms("如何用 open 函数读取文件内容？") == ["open", "函数", "读取", "文件", "内容"]


def test_resolved_follow_up_finds_the_answer_and_is_reported_as_query():
    doc = (
        "functools.partial(func, *args, **keywords) returns a new partial object. "
        "When called, the partial object behaves like func called with the positional "
        "arguments args and keyword arguments keywords.\n\n"
        "Lists are mutable sequences."
    )
    chunk = Chunk(1, "d", "functools.md", 0, len(doc), doc, "functools", "en", "")
    conv = Conversation()
    conv.add(
        Answer(
            "How do I use functools.partial?", True, (), (), (), "How do I use functools.partial?"
        )
    )
    question = "What arguments does it take?"
    query = conv.resolve(question)
    assert query == "What arguments does functools.partial take?"

    answer = compose_extractive(question, retrieval(query, (Hit(chunk, 1.0, 1),)), None, query)
    assert answer.query == query and answer.question == question
    assert "functools.partial(func" in answer.citations[0].text


def test_save_load_round_trip(tmp_path):
    cite = Citation(1, "notes.zh.md", "abc", 10, 20, "布尔值只有两种值", "基础 > 布尔值", "zh")
    conv = Conversation()
    conv.add(
        Answer(
            "布尔值有几种？",
            True,
            (Sentence("布尔值只有两种值", (1,)),),
            (cite,),
            (),
            "布尔值有几种？",
        )
    )
    conv.add(
        Answer(
            "那空值呢？",
            False,
            (Sentence("文档库中没有找到这个问题的答案。"),),
            (),
            (),
            "布尔值 那空值呢？",
        )
    )
    path = tmp_path / "sub" / "chat.json"
    conv.save(path)
    loaded = Conversation.load(path)
    assert loaded == conv
    assert loaded.turns[0].citations[0] == cite
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["version"] == 1 and data["turns"][1]["query"] == "布尔值 那空值呢？"
    assert Conversation.load(tmp_path / "missing.json") == Conversation()


def test_load_rejects_a_foreign_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"turns": [{"oops": 1}]}', encoding="utf-8")
    with pytest.raises(InputError):
        Conversation.load(bad)
    bad.write_text("not json", encoding="utf-8")
    with pytest.raises(InputError):
        Conversation.load(bad)


TURN = '{"question": "q", "query": QUERY, "answer": "a", "answered": true}'


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("[1, 2]", "holds list"),
        ('{"turns": [' + TURN.replace("QUERY", "5") + "]}", 'turn\'s "query"'),
        ('{"turns": 7}', '"turns" is not a list'),
        ('{"turns": [null]}', "a turn is NoneType"),
        (
            '{"turns": [' + TURN.replace("QUERY", '"x", "citations": [{"n": "1"}]') + "]}",
            'citation\'s "n"',
        ),  # fmt: skip
        ("[" * 100_000 + "]" * 100_000, "not an askdocs conversation"),
    ],
)
def test_a_conversation_file_that_is_not_one_is_a_clear_error(tmp_path, text, words):
    """Each was a TypeError, AttributeError or RecursionError traceback."""
    bad = tmp_path / "bad.json"
    bad.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as err:
        Conversation.load(bad)
    assert words in str(err.value) and err.value.hint


def test_a_folder_is_no_conversation_file_and_a_failed_save_keeps_the_turns(tmp_path):
    with pytest.raises(InputError, match="cannot be read"):
        Conversation.load(tmp_path)  # IsADirectoryError before
    conv = Conversation.from_json(json.loads('{"turns": [' + TURN.replace("QUERY", '"q"') + "]}"))
    with pytest.raises(InputError, match="could not be saved") as err:
        conv.save(tmp_path)
    assert "kept" in err.value.hint and len(conv.turns) == 1
    conv.save(tmp_path / "chat.json")
    assert len(Conversation.load(tmp_path / "chat.json").turns) == 1


def test_a_conversation_keeps_its_last_turns_only():
    from assistant.conversation import MAX_TURNS

    turns = [json.loads(TURN.replace("QUERY", f'"q{i}"')) for i in range(MAX_TURNS + 10)]
    conv = Conversation.from_json({"turns": turns})
    assert len(conv.turns) == MAX_TURNS and conv.turns[-1].query == f"q{MAX_TURNS + 9}"


def test_the_conversation_set_quotes_the_bundled_library():
    """examples/conversations.jsonl: ≥ 40 conversations of two or three turns, both languages
    and across, every turn with gold quotes found in the corpus file it names."""
    import json
    from pathlib import Path

    from assistant.dialogues import load_dialogues
    from assistant.evaluate import fold

    root = Path(__file__).resolve().parent.parent
    path = root / "examples" / "conversations.jsonl"
    dialogues = load_dialogues(path)
    assert len(dialogues) >= 40 and all(len(d.turns) in (2, 3) for d in dialogues)
    kinds = {t.kind for d in dialogues for t in d.turns}
    assert {"en-en", "zh-zh", "zh-en", "en-zh"} <= kinds
    corpus = {p.name: fold(p.read_text(encoding="utf-8")) for p in (root / "corpus").iterdir()}
    for line in path.read_text(encoding="utf-8").splitlines():
        for turn in json.loads(line)["turns"]:
            assert turn["gold"]
            for g in turn["gold"]:
                assert fold(g["quote"]) in corpus[g["doc"]], g


def _turn(question: str, *cited: str, query: str = "") -> Answer:
    cites = tuple(
        Citation(n, "docs.en.txt", "d", 0, len(t), t, "", "en") for n, t in enumerate(cited, 1)
    )
    return Answer(question, True, tuple(Sentence(t, (1,)) for t in cited), cites, (), query)


def test_a_plain_subject_becomes_the_api_name_the_answer_gave_for_it():
    """The library's real first answer to the issue's chat leads with `cache` (unbounded) and
    lists lru_cache: "its size" is the size of the cache the answer named, lru_cache."""
    conv = Conversation()
    conv.add(
        _turn(
            "How do I cache a function's results?",
            "cache is a simple unbounded function cache, often called memoize.",
            "cached_property transforms a method into a cached property.",
            "The module provides several functions including cache, cached_property, "
            "cmp_to_key, lru_cache, partial and wraps.",
        )
    )
    assert conv.resolve("and how do I limit its size?") == "How do I limit lru_cache's size?"


def test_a_question_word_becomes_the_class_the_answer_named():
    conv = Conversation()
    conv.add(
        _turn(
            "What about a LIFO one?",
            "The queue module also provides LifoQueue for last in, first out (LIFO) behavior.",
            query="Which module has thread-safe LIFO?",
        )
    )
    conv.turns[-1] = replace(conv.turns[-1], topic="LIFO")  # as "What about a LIFO one?" left it
    assert (
        conv.resolve("How do I wait until all its items are processed?")
        == "How do I wait until all LifoQueue's items are processed?"
    )


def test_a_question_in_plain_words_resolves_to_the_module_its_answer_names():
    conv = Conversation()
    conv.add(
        _turn(
            "怎么把 Python 对象序列化成字节流？",
            "把变量从内存中变成可存储或传输的过程称之为序列化。",
            "The pickle module allows Python objects to be serialized into a byte stream.",
        )
    )
    assert conv.resolve("那怎么反序列化回来？") == "pickle：那怎么反序列化回来？"


def test_an_ellipsis_replaces_the_words_the_question_had_not_part_of_one():
    """The subject from the answer ("queue") is inside "queues": the new term replaces what the
    question said ("FIFO queues"), never half a word."""
    conv = Conversation()
    conv.add(
        _turn(
            "Which module has thread-safe FIFO queues?",
            "The queue module implements thread-safe first in, first out (FIFO) queues.",
        )
    )
    assert conv.resolve("What about a LIFO one?") == "Which module has thread-safe LIFO?"


@pytest.mark.parametrize(
    ("question", "topic", "said", "missing"),
    [
        ("怎么清空它？", "lru_cache", "lru_cache memoizes a function, caching up to maxsize", True),
        ("and how do I limit its size?", "lru_cache", "caching up to maxsize recent calls", False),
        ("Is it threadsafe?", "lru_cache", "The cache is threadsafe.", False),
        ("怎么清空它？", "linecache", "linecache has clearcache() to clear the cache", False),
        ("用完以后它会删除吗？", "TemporaryFile", "a file that is deleted when closed", False),
        ("What about it?", "heapq", "heapq implements a heap queue", False),  # nothing asked
    ],
)
def test_a_follow_up_whose_asked_words_no_sentence_holds_is_uncovered(
    question, topic, said, missing
):
    from assistant.conversation import uncovered

    assert uncovered(question, topic, said) is missing


def test_an_uncovered_follow_up_keeps_its_sentences_under_a_notice():
    from assistant.conversation import on_subject

    answer = _turn("怎么清空它？", "lru_cache memoizes a function, caching up to maxsize calls.")
    shown = on_subject(answer, "lru_cache")
    assert shown.near_miss and shown.notice.startswith("文档库没有说明所问的 lru_cache 的细节")
    assert shown.sentences == answer.sentences and shown.answered
    assert on_subject(answer, "") is answer  # a first turn is not read this way
