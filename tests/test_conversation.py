"""Follow-up questions are resolved against the conversation; conversations round-trip as JSON."""

from __future__ import annotations

import json

import pytest

from assistant.answer import compose_extractive
from assistant.conversation import Conversation, is_follow_up, key_terms, resolve
from assistant.records import Answer, Citation, Hit, Sentence
from ingest.errors import InputError
from ingest.records import Chunk
from tests.helpers import FakeEmbedder, retrieval


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
    assert (
        resolve("那它和 list 有什么区别？", "Python 的字典是什么？")
        == "Python 字典 那它和 list 有什么区别？"
    )
    assert (
        resolve("what about in Python 3.8?", "How do I use the walrus operator?")
        == "walrus operator what about in Python 3.8?"
    )
    assert (
        resolve("它的参数是什么？", "functools.partial 怎么用？")
        == "functools.partial 它的参数是什么？"
    )
    assert resolve("它的参数是什么？", None) == "它的参数是什么？"  # nothing to lean on


def test_topic_carries_through_a_chain_of_follow_ups():
    conv = Conversation()
    for q in ["functools.partial 怎么用？", "它的参数是什么？", "那返回值呢？"]:
        query = conv.resolve(q)
        conv.add(Answer(q, True, (Sentence("…"),), (), (), query))
    assert [t.query for t in conv.turns] == [
        "functools.partial 怎么用？",
        "functools.partial 它的参数是什么？",
        "functools.partial 参数 那返回值呢？",
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
    assert query.startswith("functools.partial")

    answer = compose_extractive(
        question, retrieval(query, (Hit(chunk, 1.0, 1),)), None, FakeEmbedder(), query
    )
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
