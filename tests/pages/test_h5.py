"""The H5 voting page, through Flask's test client: what the server renders, the device
identity cookie, the vote from the page's session (CSRF), escaping and the weight budget."""

from __future__ import annotations

import re

from flask import Flask
from flask.testing import FlaskClient

from tests.factories import Org

WECHAT_UA = (
    "Mozilla/5.0 (Linux; Android 10; V1990A) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/107.0 Mobile Safari/537.36 MicroMessenger/8.0.47.2560 NetType/4G Language/zh_CN"
)


def _vote_from_page(client: FlaskClient, slug: str, number: str, token: str, key: str = ""):  # type: ignore[no-untyped-def]
    headers = {"X-CSRF-Token": token}
    if key:
        headers["Idempotency-Key"] = key
    return client.post(f"/api/v1/campaigns/{slug}/votes", json={"nominee": number}, headers=headers)


def test_home_lists_cards_with_counts_tabs_rules_and_countdown(
    client: FlaskClient, org: Org
) -> None:
    numbers = org.voting_campaign(nominees=3)
    response = client.get("/c/v1")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    for number in numbers:
        assert f'data-testid="card-{number}"' in html
        assert f'data-testid="vote-{number}"' in html
    assert "候选人0" in html and 'data-testid="tab-doctor"' in html
    assert 'id="countdown-value"' in html and "距投票结束还有" in html
    assert "每人每天可投 5 票" in html
    assert 'class="vote-count"' in html  # counts shown while the campaign shows them
    policy = response.headers["Content-Security-Policy"]
    assert "unsafe-inline" not in policy and "res.wx.qq.com" not in policy


def test_search_by_name_and_by_number(client: FlaskClient, org: Org) -> None:
    numbers = org.voting_campaign(nominees=3)
    by_name = client.get("/c/v1?q=候选人1").get_data(as_text=True)
    assert f"card-{numbers[1]}" in by_name and f"card-{numbers[0]}" not in by_name
    by_number = client.get(f"/c/v1?q={numbers[2]}").get_data(as_text=True)
    assert f"card-{numbers[2]}" in by_number and f"card-{numbers[1]}" not in by_number
    assert "没有找到" in client.get("/c/v1?q=无此人").get_data(as_text=True)


def test_paging_renders_more_cards_as_a_fragment(client: FlaskClient, org: Org) -> None:
    numbers = org.voting_campaign(nominees=14)
    first = client.get("/c/v1").get_data(as_text=True)
    assert first.count('data-testid="card-') == 12
    assert 'data-next="/c/v1/cards?page=2"' in first
    more = client.get("/c/v1/cards?page=2").get_data(as_text=True)
    assert more.count('data-testid="card-') == 2 and numbers[13] in more
    assert "<html" not in more and "load-more" not in more
    # Without a script, the same link is a plain page.
    assert client.get("/c/v1?page=2").status_code == 200


def test_hidden_counts_show_neither_votes_nor_ranking(client: FlaskClient, org: Org) -> None:
    org.voting_campaign(nominees=2, rules={"hide_counts": True})
    html = client.get("/c/v1").get_data(as_text=True)
    assert 'class="vote-count"' not in html and "票数暂不公开" in html
    ranking = client.get("/c/v1/ranking").get_data(as_text=True)
    assert "暂不公开排行" in ranking


def _edit_nominee(app: Flask, number: str, **values: object) -> int:
    from core.extensions import db
    from nominations.models import Nomination

    with app.app_context():
        nomination = db.session.query(Nomination).filter_by(number=number).one()
        for name, value in values.items():
            setattr(nomination, name, value)
        db.session.commit()
        nomination_id = nomination.id
        db.session.remove()
    return nomination_id


def test_nominee_page_has_deeds_vote_button_and_escapes_user_input(
    client: FlaskClient, org: Org, app: Flask
) -> None:
    number = org.voting_campaign(nominees=1)[0]
    _edit_nominee(
        app,
        number,
        name="<script>alert(1)</script>",
        deeds="第一段<img src=x onerror=alert(1)>\n第二段",
    )
    response = client.get(f"/c/v1/n/{number}")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert f'data-testid="vote-{number}"' in html and 'id="vote-refusal"' in html
    home = client.get("/c/v1").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in home


def test_unknown_campaign_nominee_or_category_is_a_chinese_404(
    client: FlaskClient, org: Org
) -> None:
    org.voting_campaign(nominees=1)
    for path in ("/c/nope", "/c/v1/n/Z999", "/c/v1?category=nope", "/c/v1/ranking?category=x"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert "<html" in response.get_data(as_text=True) and "不存在" in response.get_data(
            as_text=True
        )
    org.campaign("draft1", phase="draft")
    assert client.get("/c/draft1").status_code == 404


def test_ranking_page_orders_by_votes(client: FlaskClient, org: Org) -> None:
    numbers = org.voting_campaign(nominees=3)
    for voter in (1, 2):
        assert (
            client.post(
                "/api/v1/campaigns/v1/votes", json={"nominee": numbers[2]}, headers=org.voter(voter)
            ).status_code
            == 201
        )
    html = client.get("/c/v1/ranking").get_data(as_text=True)
    assert html.index(f"rank-{numbers[2]}") < html.index(f"rank-{numbers[0]}")


def test_device_identity_sets_the_voter_cookie_and_the_page_votes_until_the_quota(
    client: FlaskClient, org: Org
) -> None:
    numbers = org.voting_campaign(nominees=3, rules={"votes_per_day": 2})
    assert client.get("/c/v1").status_code == 200
    state = client.get("/c/v1/me").json
    assert state["identity"] == "device" and "remaining_today" not in state
    token = state["csrf_token"]
    assert client.post("/c/v1/voter", json={"device_id": "phone-0001"}).status_code == 403
    response = client.post(
        "/c/v1/voter", json={"device_id": "phone-0001"}, headers={"X-CSRF-Token": token}
    )
    assert response.status_code == 200 and response.json == {"identity": "ready"}
    cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("zm_voter="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    state = client.get("/c/v1/me").json
    assert state["identity"] == "ready" and state["remaining_today"] == 2

    first = _vote_from_page(client, "v1", numbers[0], token, key="tap-1")
    assert first.status_code == 201 and first.json["remaining_today"] == 1
    replay = _vote_from_page(client, "v1", numbers[0], token, key="tap-1")
    assert replay.status_code == 201 and replay.headers["Idempotent-Replayed"] == "true"
    assert _vote_from_page(client, "v1", numbers[1], token).status_code == 201
    spent = _vote_from_page(client, "v1", numbers[2], token)
    assert spent.status_code == 429
    assert spent.json["error"]["code"] == "daily_quota_exhausted"
    assert "明天" in spent.json["error"]["message"]
    me = client.get("/api/v1/campaigns/v1/votes/me").json
    assert me["remaining_today"] == 0
    assert client.get("/c/v1/me").json["remaining_today"] == 0


def test_device_identity_is_off_in_production_settings(make_app, org: Org) -> None:  # type: ignore[no-untyped-def]
    app = make_app(DEVICE_IDENTITY=False)
    client = app.test_client()
    org.voting_campaign(nominees=1)
    state = client.get("/c/v1/me").json
    assert state["identity"] == "none"
    response = client.post(
        "/c/v1/voter",
        json={"device_id": "phone-0001"},
        headers={"X-CSRF-Token": state["csrf_token"], "Accept": "application/json"},
    )
    assert response.status_code == 404 and response.json["error"]["code"] == "provider_disabled"


def test_inside_wechat_the_page_uses_oauth_and_allows_the_jssdk(make_app, org: Org) -> None:  # type: ignore[no-untyped-def]
    app = make_app(WECHAT_APP_ID="wx123", WECHAT_APP_SECRET="s" * 32)
    client = app.test_client()
    org.voting_campaign(nominees=1)
    response = client.get("/c/v1", headers={"User-Agent": WECHAT_UA})
    html = response.get_data(as_text=True)
    # The body is the same in and out of WeChat (it is cached); the script loads the JS-SDK
    # only inside WeChat, and /me says how this visitor gets an identity.
    assert 'data-wechat-sdk="1"' in html
    assert html == client.get("/c/v1").get_data(as_text=True)
    assert "https://res.wx.qq.com" in response.headers["Content-Security-Policy"]
    state = client.get("/c/v1/me", headers={"User-Agent": WECHAT_UA}).json
    assert state["identity"] == "wechat" and state["in_wechat"] is True


def test_video_profile_plays_inline_without_autoplay(
    client: FlaskClient, org: Org, app: Flask
) -> None:
    number = org.voting_campaign(nominees=1)[0]
    nomination_id = _edit_nominee(app, number)
    from core.extensions import db
    from media.models import MediaAsset

    with app.app_context():
        db.session.add(
            MediaAsset(
                nomination_id=nomination_id,
                kind="video",
                status="ready",
                storage_key="page-test-video",
                declared_size=1000,
                received=1000,
                duration=12.0,
                is_current=True,
                renditions=[
                    {"label": "720p", "width": 1280, "height": 720, "file": "720p.mp4"},
                    {"label": "360p", "width": 640, "height": 360, "file": "360p.mp4"},
                ],
            )
        )
        db.session.commit()
        db.session.remove()
    html = client.get(f"/c/v1/n/{number}").get_data(as_text=True)
    video = html[html.index("<video") : html.index("</video>")]
    for attribute in ("playsinline", "webkit-playsinline", 'x5-playsinline="true"', "poster="):
        assert attribute in video, attribute
    assert "autoplay" not in video
    # The small rendition comes first: a 3G phone starts with it.
    assert video.index("360p.mp4") < video.index("720p.mp4")


def test_first_load_of_the_home_page_stays_under_150_kb(client: FlaskClient, org: Org) -> None:
    org.voting_campaign(nominees=12)
    response = client.get("/c/v1")
    html = response.get_data()
    total = len(html)
    for url in re.findall(r'(?:src|href)="(/assets/[^"]+)"', html.decode()):
        asset = client.get(url.replace("&amp;", "&"))
        assert asset.status_code == 200, url
        total += len(asset.get_data())
        asset.close()
    assert total < 150 * 1024, total


def test_bad_device_ids_get_a_json_error_not_a_page(client: FlaskClient, org: Org) -> None:
    org.voting_campaign(nominees=1)
    token = client.get("/c/v1/me").json["csrf_token"]
    for body in ({"device_id": "short"}, {}, {"device_id": 7}):
        response = client.post("/c/v1/voter", json=body, headers={"X-CSRF-Token": token})
        assert response.status_code == 422, body
        assert response.json["error"]["code"] == "validation_error"
    assert client.get_cookie("zm_voter") is None
