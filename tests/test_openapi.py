"""Property-based tests of the whole HTTP API from its own OpenAPI schema (schemathesis):
for every route, generated requests, valid and not, never get a 5xx."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi")
schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, settings  # noqa: E402

from assistant.config import AssistantConfig  # noqa: E402
from index.config import LibraryConfig  # noqa: E402
from index.library import Library  # noqa: E402
from tests.helpers import FakeEmbedder  # noqa: E402
from ui.api import create_app  # noqa: E402
from ui.guard import Policy  # noqa: E402
from ui.serving import Served  # noqa: E402

DOCS = {
    "tea.en.md": "# Tea\n\nGreen tea is steeped at 80 degrees for two minutes.\n",
    "python.zh.md": "# 函数\n\n使用 def 关键字定义函数。\n\n## 默认参数\n\n默认参数只求值一次。\n",
}


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    tmp = tmp_path_factory.mktemp("openapi")
    docs = tmp / "docs"
    docs.mkdir()
    for name, text in DOCS.items():
        (docs / name).write_text(text, encoding="utf-8")
    config = LibraryConfig(name="openapi", home=tmp / "home", model="fake")
    Library.open(config, FakeEmbedder(), create=True).ingest([docs])
    served = Served(AssistantConfig(library=config), embedder=FakeEmbedder())
    # schemathesis calls the app as http://testserver: that name is allowed, as --allowed-host
    policy = Policy.make(allowed=["testserver"])
    return schemathesis.openapi.from_asgi("/openapi.json", create_app(served, policy=policy))


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_route_answers_a_5xx(case) -> None:  # noqa: ANN001
    # a program's request (so writes are not refused as a page's), on a loopback Host
    response = case.call(headers={"x-askdocs": "1"})
    assert response.status_code < 500, (case.method, case.path, response.text[:300])
    if response.status_code >= 400:
        body = response.json()
        assert set(body) == {"error", "message", "hint"}, body
        assert response.status_code != 421, "the Host was refused: nothing was tested"
