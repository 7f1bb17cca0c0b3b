"""How fresh the public reads are, and what each process keeps between them: the view's version
token read at most once a second (another process's change seen within it, the process's own at
once), a view rebuilt after VIEW_MAX_AGE kept when it shows the same, and the campaign's standings
read from the vote Redis at most once a second for every URL together."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.factories import Org, counted


def _vote(client: FlaskClient, org: Org, number: str, voter: int) -> None:
    response = client.post(
        "/api/v1/campaigns/v1/votes", json={"nominee": number}, headers=org.voter(voter)
    )
    assert response.status_code == 201, response.json


def _names(client: FlaskClient) -> list[str]:
    return [n["name"] for n in client.get("/api/v1/campaigns/v1/nominees").json["items"]]


def test_another_process_change_is_seen_within_the_token_time_and_an_own_change_at_once(
    app: Flask, client: FlaskClient, org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    from core.extensions import db, redis_store
    from nominations.models import Nomination

    org.voting_campaign(nominees=2)
    monkeypatch.setitem(app.config, "PUBLIC_VIEW_TOKEN_SECONDS", 3600)
    before = _names(client)
    assert len(before) == 2

    # Another process renames a nominee and replaces the token; this one trusts the token it
    # read for the configured time (here: the whole test) and keeps its view.
    with app.app_context():
        row = db.session.query(Nomination).filter_by(status="approved").first()
        row.name = "改名之后"
        db.session.commit()
        redis_store.client.set(redis_store.key("public-view", "v1"), "from-elsewhere")
        db.session.remove()
    assert _names(client) == before

    # With no time to trust it (as under test by default), the next read asks and rebuilds.
    monkeypatch.setitem(app.config, "PUBLIC_VIEW_TOKEN_SECONDS", 0)
    assert "改名之后" in _names(client)

    # This process's own change is seen at once, whatever the time.
    monkeypatch.setitem(app.config, "PUBLIC_VIEW_TOKEN_SECONDS", 3600)
    _names(client)
    response = client.patch(
        "/api/v1/campaigns/v1", json={"title": "新的标题"}, headers=org.headers("admin")
    )
    assert response.status_code == 200, response.json
    assert "新的标题" in client.get("/c/v1").get_data(as_text=True)


def test_a_view_rebuilt_unchanged_keeps_its_bodies_and_a_changed_one_does_not(
    app: Flask, client: FlaskClient, org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    from core.extensions import db
    from nominations import public_view
    from nominations.models import Nomination

    numbers = org.voting_campaign(nominees=2)
    monkeypatch.setitem(app.config, "H5_RENDER_SECONDS", 3600)
    page = f"/c/v1/n/{numbers[0]}"
    assert client.get(page).status_code == 200
    with app.app_context():
        first = public_view.campaign_view("v1")

    # Past VIEW_MAX_AGE the view is built again (its statements run) and, showing the same,
    # the one already kept is used: its deeds and rendered bodies stay (no deeds statement).
    monkeypatch.setattr(public_view, "VIEW_MAX_AGE", 0.0)
    with app.app_context():
        with counted() as seen:
            assert client.get(page).status_code == 200
        assert len([s for s in seen if s.strip().upper() != "BEGIN"]) == 4
        assert public_view.campaign_view("v1") is first

    # A change that replaces no token (as a transcoded video's) but shows something else:
    # a new view, rendered afresh.
    with app.app_context():
        row = db.session.query(Nomination).filter_by(number=numbers[0]).one()
        row.summary = "新的简介文字"
        db.session.commit()
        db.session.remove()
    card = client.get(f"/api/v1/campaigns/v1/nominees/{numbers[0]}").json
    assert card["summary"] == "新的简介文字"
    with app.app_context():
        assert public_view.campaign_view("v1") is not first


def test_the_standings_are_read_once_per_time_for_every_url(
    app: Flask, client: FlaskClient, org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    numbers = org.voting_campaign(nominees=3)
    _vote(client, org, numbers[1], 1)
    _vote(client, org, numbers[1], 2)
    _vote(client, org, numbers[2], 3)
    monkeypatch.setitem(app.config, "PUBLIC_COUNTS_SECONDS", 3600)

    def votes() -> dict[str, int]:
        items = client.get("/api/v1/campaigns/v1/nominees").json["items"]
        return {n["number"]: n["votes"] for n in items}

    assert votes() == {numbers[0]: 0, numbers[1]: 2, numbers[2]: 1}
    ranking = client.get("/api/v1/campaigns/v1/ranking?category=doctor").json["items"]
    # The same ranks on every read: competition ranking of the approved nominees.
    assert [(i["number"], i["votes"], i["rank"]) for i in ranking] == [
        (numbers[1], 2, 1),
        (numbers[2], 1, 2),
        (numbers[0], 0, 3),
    ]
    detail = client.get(f"/api/v1/campaigns/v1/nominees/{numbers[2]}").json
    assert (detail["votes"], detail["rank"]) == (1, 2)

    # Within the time, a new vote is not read yet, by any URL ...
    _vote(client, org, numbers[0], 4)
    _vote(client, org, numbers[0], 5)
    _vote(client, org, numbers[0], 6)
    assert votes()[numbers[0]] == 0
    assert f'data-number="{numbers[0]}">0</b>' in client.get(f"/c/v1/n/{numbers[0]}").get_data(
        as_text=True
    )
    # ... and after it (0: every read asks), every URL shows it, ranks moved with it.
    monkeypatch.setitem(app.config, "PUBLIC_COUNTS_SECONDS", 0)
    assert votes() == {numbers[0]: 3, numbers[1]: 2, numbers[2]: 1}
    detail = client.get(f"/api/v1/campaigns/v1/nominees/{numbers[2]}").json
    assert (detail["votes"], detail["rank"]) == (1, 3)
    ranking = client.get("/api/v1/campaigns/v1/ranking?category=doctor").json["items"]
    assert [i["number"] for i in ranking] == [numbers[0], numbers[1], numbers[2]]


def test_a_dead_vote_redis_is_503_for_the_api_ranking(
    make_app: Callable[..., Flask], org: Org
) -> None:
    org.voting_campaign(nominees=2)
    broken = make_app(REDIS_URL="redis://127.0.0.1:1/0").test_client()
    response = broken.get("/api/v1/campaigns/v1/ranking?category=doctor")
    assert response.status_code == 503, response.get_data(as_text=True)
    assert response.json["error"]["code"] == "service_unavailable"


def test_the_ranking_page_is_rendered_again_at_most_every_ranking_time(
    app: Flask, client: FlaskClient, org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    numbers = org.voting_campaign(nominees=2)
    _vote(client, org, numbers[0], 1)
    monkeypatch.setitem(app.config, "H5_RANKING_SECONDS", 3600)
    monkeypatch.setitem(app.config, "H5_RENDER_SECONDS", 0)

    def count(path: str, number: str) -> str:
        html = client.get(path).get_data(as_text=True)
        marker = f'data-number="{number}">' if "ranking" in path else 'id="nominee-votes"'
        return html.split(marker, 1)[1].split("<", 1)[0]

    assert count("/c/v1/ranking", numbers[0]) == "1"
    _vote(client, org, numbers[0], 2)
    # The nominee page shows the vote at once; the ranking keeps its body for its time.
    assert count(f"/c/v1/n/{numbers[0]}", numbers[0]).endswith(">2")
    assert count("/c/v1/ranking", numbers[0]) == "1"
    monkeypatch.setitem(app.config, "H5_RANKING_SECONDS", 0)
    assert count("/c/v1/ranking", numbers[0]) == "2"
