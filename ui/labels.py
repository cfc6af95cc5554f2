"""Interface labels in English and Chinese; `label(key, lang)` picks one.

Only the interface switches language: answers and documents stay in the language they are in.
"""

from __future__ import annotations

UI_LANGS = ("en", "zh")  # languages the interface speaks (not chunk languages)
LANG_NAMES = {"en": "English", "zh": "中文"}

LABELS: dict[str, dict[str, str]] = {
    "en": {
        "app_title": "askdocs",
        "interface": "Interface language",
        "page": "Page",
        "library": "Library",
        "page_chat": "Chat",
        "page_doc": "Document",
        "page_library": "Library",
        "settings": "Settings",
        "mode": "Answer mode",
        "mode_extractive": "Extractive (quotes the documents)",
        "mode_llm": "LLM (written by a language model)",
        "llm_base_url": "LLM endpoint base URL",
        "llm_model": "LLM model",
        "llm_key": "LLM API key",
        "llm_timeout": "LLM time limit (seconds)",
        "k": "Number of sources",
        "lang_filter": "Source language",
        "lang_all": "All",
        "chat_placeholder": "Ask a question in Chinese or English…",
        "chat_empty": "Ask anything about the documents in the library “{library}”.",
        "clear": "Clear conversation",
        "copy": "Copy answer",
        "query": "Searched query",
        "sources": "Sources",
        "open": "Open in document ↗",
        "no_answer": "No answer was found in the documents.",
        "unsupported": "(not supported by the sources)",
        "thinking": "Searching the documents…",
        "loading": "Loading the library and the model…",
        "sample_ingest": "The library is empty: adding the bundled sample library…",
        "sample_done": "Sample library added: {n} documents.",
        "progress": "{stage}: {done} / {total}",
        "stage_scan": "Scanning files",
        "stage_load": "Reading and chunking",
        "stage_embed": "Embedding passages",
        "stage_tokenize": "Updating the keyword index",
        "stage_index": "Writing the index",
        "doc_filter": "Filter documents",
        "doc_pick": "Document",
        "doc_none": "The library has no documents yet. Add some on the Library page.",
        "doc_missing": "This document is not in the library (any more).",
        "doc_missing_hint": "Pick another document from the list; the link may be from an older library.",
        "span_bad": "The cited place ({start}–{end}) is not inside this document.",
        "span_bad_hint": "The document may have changed since the link was made.",
        "prev": "◀ Previous chunk",
        "next": "Next chunk ▶",
        "chunk_pos": "Chunk {i} of {n}",
        "doc_meta": "{source} · {language} · {chunks} chunks · {chars} characters",
        "no_match": "No document matches the filter.",
        "upload": "Add files",
        "upload_help": "Markdown, text, reStructuredText, HTML or PDF, up to {mb} MB each.",
        "upload_go": "Add to library",
        "upload_done": "Added {n} file(s) to the library.",
        "upload_skipped": "{n} file(s) were already in the library unchanged.",
        "upload_refused": "Not added: {names} (see below).",
        "documents": "Documents",
        "col_title": "Title",
        "col_source": "Source",
        "col_lang": "Language",
        "col_chunks": "Chunks",
        "col_chars": "Characters",
        "col_ingested": "Ingested",
        "manage_pick": "Document to delete or re-index",
        "delete": "Delete",
        "reindex": "Re-index",
        "deleted": "Deleted “{title}”.",
        "reindexed": "Re-indexed “{title}”.",
        "library_empty": "The library is empty.",
        "error_hint": "What to do: {hint}",
    },
    "zh": {
        "app_title": "askdocs",
        "interface": "界面语言",
        "page": "页面",
        "library": "文档库",
        "page_chat": "问答",
        "page_doc": "文档",
        "page_library": "文档库",
        "settings": "设置",
        "mode": "回答方式",
        "mode_extractive": "摘录（引用原文）",
        "mode_llm": "大模型（由语言模型撰写）",
        "llm_base_url": "大模型接口地址",
        "llm_model": "大模型名称",
        "llm_key": "大模型 API 密钥",
        "llm_timeout": "大模型时间上限（秒）",
        "k": "来源数量",
        "lang_filter": "来源语言",
        "lang_all": "全部",
        "chat_placeholder": "用中文或英文提问…",
        "chat_empty": "可以就文档库“{library}”中的文档提任何问题。",
        "clear": "清空对话",
        "copy": "复制回答",
        "query": "实际检索的查询",
        "sources": "来源",
        "open": "在文档中打开 ↗",
        "no_answer": "文档中没有找到答案。",
        "unsupported": "（来源不支持此句）",
        "thinking": "正在检索文档…",
        "loading": "正在加载文档库和模型…",
        "sample_ingest": "文档库为空：正在导入自带的示例文档…",
        "sample_done": "示例文档已导入：{n} 篇。",
        "progress": "{stage}：{done} / {total}",
        "stage_scan": "扫描文件",
        "stage_load": "读取并分段",
        "stage_embed": "计算向量",
        "stage_tokenize": "更新关键词索引",
        "stage_index": "写入索引",
        "doc_filter": "筛选文档",
        "doc_pick": "文档",
        "doc_none": "文档库中还没有文档。请在“文档库”页面添加。",
        "doc_missing": "文档库中没有（或已不再有）这篇文档。",
        "doc_missing_hint": "请从列表中选择其他文档；这个链接可能来自旧的文档库。",
        "span_bad": "引用位置（{start}–{end}）不在这篇文档范围内。",
        "span_bad_hint": "生成链接之后，文档可能已经改变。",
        "prev": "◀ 上一段",
        "next": "下一段 ▶",
        "chunk_pos": "第 {i} 段，共 {n} 段",
        "doc_meta": "{source} · {language} · {chunks} 段 · {chars} 字符",
        "no_match": "没有符合筛选条件的文档。",
        "upload": "添加文件",
        "upload_help": "Markdown、纯文本、reStructuredText、HTML 或 PDF，每个不超过 {mb} MB。",
        "upload_go": "加入文档库",
        "upload_done": "已将 {n} 个文件加入文档库。",
        "upload_skipped": "{n} 个文件已在文档库中且未改变。",
        "upload_refused": "未加入：{names}（原因见下）。",
        "documents": "文档",
        "col_title": "标题",
        "col_source": "来源",
        "col_lang": "语言",
        "col_chunks": "段数",
        "col_chars": "字符数",
        "col_ingested": "导入时间",
        "manage_pick": "要删除或重新索引的文档",
        "delete": "删除",
        "reindex": "重新索引",
        "deleted": "已删除“{title}”。",
        "reindexed": "已重新索引“{title}”。",
        "library_empty": "文档库为空。",
        "error_hint": "建议：{hint}",
    },
}

LANG_BADGES = {
    "en": {"en": "English", "zh": "Chinese", "other": "Other"},
    "zh": {"en": "英文", "zh": "中文", "other": "其他"},
}


def label(key: str, lang: str = "en", **values: object) -> str:
    """The label `key` in the interface language `lang`, formatted with `values`."""
    table = LABELS.get(lang, LABELS["en"])
    text = table.get(key) or LABELS["en"][key]
    return text.format(**values) if values else text


def stage_name(stage: str, lang: str = "en") -> str:
    """A progress stage of ingest ("scan", "load", "embed", "index") for people."""
    key = f"stage_{stage}"
    return label(key, lang) if key in LABELS["en"] else stage


def lang_badge(doc_lang: str, lang: str = "en") -> str:
    """How a document language ("zh", "en", "other") is named in the interface language."""
    return LANG_BADGES.get(lang, LANG_BADGES["en"]).get(doc_lang, doc_lang)
