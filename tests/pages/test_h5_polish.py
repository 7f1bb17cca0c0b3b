"""The H5 page's polish, through Flask's test client: the banner image (uploaded from the console's
settings, checked by content, served cacheably), the stats bar (from Redis, no SQL), the voter's
state for the vote buttons, the ranking's photos, podium and gaps, and the navigation."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from PIL import Image

from campaigns.models import Campaign
from core.audit import AuditLog
from core.extensions import db
from tests.factories import Org, counted
from tests.pages.browser import page_csrf, staff_login
from voting import services as voting_services


def banner_bytes(width: int = 1500, height: int = 800, fmt: str = "JPEG") -> bytes:
    """A banner picture as a designer saves it, with EXIF (a camera model and GPS) in a JPEG."""
    image = Image.new("RGB", (width, height), (200, 16, 46))
    for x in range(0, width, 50):
        image.paste((244, 180, 0), (x, 0, x + 10, height))
    out = io.BytesIO()
    if fmt == "JPEG":
        exif = Image.Exif()
        exif[0x0110] = "Camera Z"
        exif[0x8825] = {1: "N", 2: (30.0, 15.0, 0.0)}
        image.save(out, "JPEG", exif=exif.tobytes())
    else:
        image.save(out, fmt)
    return out.getvalue()


def _upload(
    client: FlaskClient, slug: str, token: str, body: bytes | None, name: str = "banner.jpg"
) -> Any:
    data: dict[str, Any] = {"csrf_token": token}
    if body is not None:
        data["banner"] = (io.BytesIO(body), name)
    return client.post(f"/console/c/{slug}/banner", data=data, content_type="multipart/form-data")


def _banner_key(app: Flask, slug: str) -> str | None:
    with app.app_context():
        key = db.session.query(Campaign.banner_key).filter_by(slug=slug).scalar()
        db.session.remove()
    return key


def _banner_src(html: str) -> str | None:
    match = re.search(r'<img class="banner-image" src="([^"]+)"', html)
    return match.group(1) if match else None


def _outcome(response: Any) -> str:
    assert response.status_code == 303, response.get_data(as_text=True)[:300]
    match = re.search(r"[?&]banner=([a-z_]+)", response.headers["Location"])
    assert match, response.headers["Location"]
    return match.group(1)


# --- the banner ---------------------------------------------------------------------------------


def test_admin_uploads_a_banner_the_page_shows_it_and_it_is_served_for_good(
    app: Flask, client: FlaskClient, org: Org
) -> None:
    org.voting_campaign(nominees=2)
    assert _banner_src(client.get("/c/v1").get_data(as_text=True)) is None
    token = staff_login(client, "admin", area="console")
    response = _upload(client, "v1", token, banner_bytes())
    assert _outcome(response) == "saved"
    assert response.headers["Location"].startswith("/console/c/v1/settings")
    key = _banner_key(app, "v1")
    assert key and re.fullmatch(r"b-[0-9a-f]{32}", key)

    home = client.get("/c/v1").get_data(as_text=True)
    src = _banner_src(home)
    assert src == f"/c/v1/banner/{key}.jpg"
    assert f'src="{src}"' in client.get("/c/v1/ranking").get_data(as_text=True)
    image = client.get(src)
    assert image.status_code == 200 and image.mimetype == "image/jpeg"
    assert image.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    etag = image.headers["ETag"]
    body = image.get_data()
    image.close()
    with Image.open(io.BytesIO(body)) as picture:
        assert picture.format == "JPEG" and picture.size == (1500, 800)
        assert not picture.getexif(), "EXIF (GPS) must be gone"
    again = client.get(src, headers={"If-None-Match": etag})
    assert again.status_code == 304
    # Stored like photos: re-encoded, no original or thumbnail kept.
    folder = Path(app.config["MEDIA_ROOT"]) / key
    assert sorted(p.name for p in folder.iterdir()) == ["photo.jpg"]

    # The settings page shows it, and the change log says what changed.
    settings = client.get("/console/c/v1/settings?banner=saved").get_data(as_text=True)
    assert 'id="banner-preview"' in settings and src in settings
    assert "横幅图片已更新" in settings and "更换横幅图片" in settings
    with app.app_context():
        entry = db.session.query(AuditLog).filter_by(action="campaign.update").one()
        assert entry.after == {"banner": key} and entry.actor_name == "admin"
        db.session.remove()
    # The landing page shows it on the campaign's card.
    assert src in client.get("/").get_data(as_text=True)


def test_a_new_banner_replaces_the_old_file_and_removing_it_restores_the_plain_header(
    app: Flask, client: FlaskClient, org: Org
) -> None:
    org.voting_campaign(nominees=1)
    token = staff_login(client, "admin", area="console")
    assert _outcome(_upload(client, "v1", token, banner_bytes(fmt="PNG"), "a.png")) == "saved"
    first = _banner_key(app, "v1")
    assert _outcome(_upload(client, "v1", token, banner_bytes(800, 400, "WEBP"), "b.webp")) == (
        "saved"
    )
    second = _banner_key(app, "v1")
    assert second and second != first
    assert not (Path(app.config["MEDIA_ROOT"]) / str(first)).exists()
    assert client.get(f"/c/v1/banner/{first}.jpg").status_code == 404
    response = client.get(f"/c/v1/banner/{second}.jpg")
    assert response.status_code == 200
    response.close()

    removed = client.post("/console/c/v1/banner", data={"csrf_token": token, "remove": "1"})
    assert _outcome(removed) == "removed"
    assert _banner_key(app, "v1") is None
    assert not (Path(app.config["MEDIA_ROOT"]) / str(second)).exists()
    assert _banner_src(client.get("/c/v1").get_data(as_text=True)) is None
    assert client.get(f"/c/v1/banner/{second}.jpg").status_code == 404
    assert "移除横幅图片" in client.get("/console/c/v1/settings").get_data(as_text=True)


def test_a_banner_upload_refuses_what_is_not_a_usable_image(
    app: Flask, client: FlaskClient, org: Org
) -> None:
    org.voting_campaign(nominees=1)
    token = staff_login(client, "admin", area="console")
    media_root = Path(app.config["MEDIA_ROOT"])
    before = set(media_root.glob("b-*"))
    # Decided by the content, not the name or the declared type.
    script = b"<script>alert(1)</script>" * 40
    assert _outcome(_upload(client, "v1", token, script, "banner.jpg")) == "not_an_image"
    truncated = banner_bytes()[:2000]
    assert _outcome(_upload(client, "v1", token, truncated)) == "not_an_image"
    assert _outcome(_upload(client, "v1", token, None)) == "empty_upload"
    assert _outcome(_upload(client, "v1", token, b"", "empty.jpg")) == "empty_upload"
    assert _banner_key(app, "v1") is None
    assert set(media_root.glob("b-*")) == before, "refused files are gone"
    page = client.get("/console/c/v1/settings?banner=not_an_image").get_data(as_text=True)
    assert "文件不是可识别的图片" in page


def test_a_banner_too_large_in_bytes_or_pixels_is_refused(make_app: Any, org: Org) -> None:
    app = make_app(MEDIA_PHOTO_MAX_BYTES=200_000, MEDIA_PHOTO_MAX_PIXELS=1_000_000)
    client = app.test_client()
    org.voting_campaign(nominees=1)
    token = staff_login(client, "admin", area="console")
    # Past the limit (the file is read up to it), and past the limit and the form's room (the
    # body is not read at all); both stay under the test client's in-memory spool.
    for side, size in ((340, (200_000, 265_000)), (420, (266_000, 500_000))):
        out = io.BytesIO()
        Image.effect_noise((side, side), 100).convert("RGB").save(out, "PNG")
        assert size[0] < len(out.getvalue()) < size[1]
        refused = _upload(client, "v1", token, out.getvalue(), "big.png")
        assert _outcome(refused) == "upload_too_large"
    wide = banner_bytes(2000, 600, "PNG")  # 1.2 M pixels, few bytes
    assert _outcome(_upload(client, "v1", token, wide, "wide.png")) == "photo_too_large"
    assert _banner_key(app, "v1") is None


def test_only_an_admin_with_the_page_token_may_change_the_banner(
    app: Flask, client: FlaskClient, org: Org
) -> None:
    org.voting_campaign(nominees=1)
    # Nobody logged in (a page's token, no session): the login page.
    stranger = app.test_client()
    token = page_csrf(stranger, "/console/login")
    anonymous = _upload(stranger, "v1", token, banner_bytes())
    assert anonymous.status_code == 302 and "/console/login" in anonymous.headers["Location"]
    # A reviewer or a unit's clerk: the 403 page.
    for username in ("rev-k1", "unit-h1"):
        token = staff_login(client, username, area="console")
        refused = _upload(client, "v1", token, banner_bytes())
        assert refused.status_code == 403, username
    # An admin without the page's token (a cross-site form): 403 csrf_failed, nothing stored.
    staff_login(client, "admin", area="console")
    forged = client.post(
        "/console/c/v1/banner",
        data={"banner": (io.BytesIO(banner_bytes()), "x.jpg")},
        content_type="multipart/form-data",
    )
    assert forged.status_code == 403 and "页面已过期" in forged.get_data(as_text=True)
    assert _banner_key(app, "v1") is None
    # An unknown campaign: the Chinese 404.
    token = staff_login(client, "admin", area="console")
    assert _upload(client, "nope", token, banner_bytes()).status_code == 404


def test_a_banner_is_served_only_under_its_own_campaign(
    app: Flask, client: FlaskClient, org: Org
) -> None:
    org.voting_campaign("v1", nominees=1)
    org.voting_campaign("v2", nominees=1)
    token = staff_login(client, "admin", area="console")
    assert _outcome(_upload(client, "v1", token, banner_bytes())) == "saved"
    key = _banner_key(app, "v1")
    assert client.get(f"/c/v2/banner/{key}.jpg").status_code == 404
    assert client.get("/c/v1/banner/b-" + "0" * 32 + ".jpg").status_code == 404
    assert client.get("/c/v1/banner/..%2Fsecret_key.jpg").status_code == 404
    org.campaign("draft1", phase="draft")
    assert client.get(f"/c/draft1/banner/{key}.jpg").status_code == 404
    # Read from the cached public view: no SQL once it is built.
    first = client.get(f"/c/v1/banner/{key}.jpg")
    first.close()
    with app.app_context(), counted() as seen:
        response = client.get(f"/c/v1/banner/{key}.jpg")
        response.close()
    assert response.status_code == 200
    assert [s for s in seen if s.strip().upper() != "BEGIN"] == []


# --- the stats bar ------------------------------------------------------------------------------


def _stats(html: str) -> dict[str, int] | None:
    if 'data-testid="stats"' not in html:
        return None
    return {
        name: int(re.search(rf'id="stat-{name}">(\d+)<', html).group(1))  # type: ignore[union-attr]
        for name in ("voters", "votes", "views")
    }


def test_the_stats_bar_counts_voters_votes_and_page_views_without_sql(
    app: Flask, client: FlaskClient, org: Org
) -> None:
    numbers = org.voting_campaign(nominees=3)
    assert _stats(client.get("/c/v1").get_data(as_text=True)) == {
        "voters": 0,
        "votes": 0,
        "views": 0,
    }
    for voter, number in ((1, numbers[0]), (2, numbers[0]), (2, numbers[1])):
        cast = client.post(
            "/api/v1/campaigns/v1/votes", json={"nominee": number}, headers=org.voter(voter)
        )
        assert cast.status_code == 201
    # The page script's beacon counts every page it runs on, with or without a nominee.
    for body in ({}, {"number": numbers[0]}, {}):
        assert client.post("/c/v1/beacon", json=body).status_code == 204
    html = client.get("/c/v1").get_data(as_text=True)
    # 参与人数 counts distinct voters as the drain stores their votes: none drained yet.
    assert _stats(html) == {"voters": 0, "votes": 3, "views": 3}
    with app.app_context():
        assert voting_services.drain_campaign("v1") == 3
    html = client.get("/c/v1").get_data(as_text=True)
    assert _stats(html) == {"voters": 2, "votes": 3, "views": 3}
    assert "参与人数" in html and "累计票数" in html and "访问量" in html
    # A refused beacon (bad number) counts nothing.
    assert client.post("/c/v1/beacon", json={"number": 7}).status_code == 422
    assert client.post("/c/v1/beacon", json={"number": "Z999"}).status_code == 404
    # With the view cached, the home page reads the stats without SQL.
    client.post("/c/v1/beacon", json={})
    with app.app_context(), counted() as seen:
        html = client.get("/c/v1").get_data(as_text=True)
    assert [s for s in seen if s.strip().upper() != "BEGIN"] == []
    assert _stats(html) == {"voters": 2, "votes": 3, "views": 4}


def test_no_stats_bar_while_counts_are_hidden_or_before_the_ballot(
    client: FlaskClient, org: Org
) -> None:
    org.voting_campaign("v1", nominees=2, rules={"hide_counts": True})
    client.post("/c/v1/beacon", json={})
    html = client.get("/c/v1").get_data(as_text=True)
    assert _stats(html) is None and "累计票数" not in html
    org.campaign("c1", phase="nominating")
    assert _stats(client.get("/c/c1").get_data(as_text=True)) is None


# --- the voter's state for the vote buttons -----------------------------------------------------


def test_me_says_whom_the_voter_chose_today_for_the_buttons(client: FlaskClient, org: Org) -> None:
    numbers = org.voting_campaign(nominees=3, rules={"votes_per_day": 2})
    html = client.get("/c/v1").get_data(as_text=True)
    assert 'data-votes-per-nominee="1"' in html
    # The body says 投票 for everyone: the buttons' states are the script's, from /me.
    assert "已投" not in html and "明日再来" not in html
    token = client.get("/c/v1/me").json["csrf_token"]
    client.post("/c/v1/voter", json={"device_id": "phone-0001"}, headers={"X-CSRF-Token": token})
    state = client.get("/c/v1/me").json
    assert state["voted_today"] == {} and state["remaining_today"] == 2
    assert state["votes_per_nominee_per_day"] == 1
    headers = {"X-CSRF-Token": token}
    for number in numbers[:2]:
        vote = client.post("/api/v1/campaigns/v1/votes", json={"nominee": number}, headers=headers)
        assert vote.status_code == 201
    state = client.get("/c/v1/me").json
    assert state["voted_today"] == {numbers[0]: 1, numbers[1]: 1}
    assert state["remaining_today"] == 0
    # Another browser has its own state.
    other = client.application.test_client()
    assert "voted_today" not in other.get("/c/v1/me").json


# --- the ranking --------------------------------------------------------------------------------


def _give_photo(app: Flask, number: str) -> None:
    from media.models import MediaAsset
    from nominations import public_view
    from nominations.models import Nomination

    with app.app_context():
        nomination = db.session.query(Nomination).filter_by(number=number).one()
        db.session.add(
            MediaAsset(
                nomination_id=nomination.id,
                kind="photo",
                status="ready",
                storage_key="p-" + "a" * 32,
                declared_size=100,
                received=100,
                is_current=True,
                renditions=[
                    {"label": "photo", "file": "photo.jpg"},
                    {"label": "thumb", "file": "thumb.jpg"},
                ],
            )
        )
        db.session.commit()
        public_view.invalidate(nomination.campaign.slug)
        db.session.remove()


def _vote(client: FlaskClient, org: Org, number: str, voters: range) -> None:
    for voter in voters:
        cast = client.post(
            "/api/v1/campaigns/v1/votes", json={"nominee": number}, headers=org.voter(voter)
        )
        assert cast.status_code == 201


def test_ranking_has_photos_a_podium_and_the_gap_to_the_place_above(
    app: Flask, client: FlaskClient, org: Org
) -> None:
    numbers = org.voting_campaign(nominees=5)
    _give_photo(app, numbers[1])
    html = client.get("/c/v1/ranking").get_data(as_text=True)
    assert 'data-testid="podium"' not in html, "no podium before anyone has a vote"
    # Votes: 1 → 4, 2 → 2, 3 → 2, 0 → 1, 4 → 0.
    _vote(client, org, numbers[1], range(1, 5))
    _vote(client, org, numbers[2], range(11, 13))
    _vote(client, org, numbers[3], range(21, 23))
    _vote(client, org, numbers[0], range(31, 32))
    html = client.get("/c/v1/ranking").get_data(as_text=True)
    podium = html[html.index('data-testid="podium"') : html.index("</ol>")]
    assert podium.index(numbers[1]) < podium.index(numbers[2]) < podium.index(numbers[3])
    assert 'data-testid="podium-1"' in podium and "podium-photo" in podium
    assert "/media/" in podium.split('data-testid="podium-2"')[0], "the leader's photo"
    gaps = dict(re.findall(r'data-testid="gap-(\w+)">距上一名差 (\d+) 票', html))
    # The two tied in second place are both 2 behind the first; nothing for the first.
    assert gaps == {numbers[2]: "2", numbers[3]: "2"}
    rows = html[html.index('class="rank-list"') :]
    assert rows.count('class="rank-photo') == 5 and rows.count('class="rank-photo placeholder') == 4
    assert rows.count('<img class="rank-photo"') == 1
    assert "距上一名差 1 票" in rows  # the fourth place: one behind the tied second
    last = rows[rows.index(f'data-testid="rank-{numbers[4]}"') :]
    assert "距上一名差 1 票" in last.split("</li>")[0]


def test_hidden_counts_show_no_podium_and_no_gap(client: FlaskClient, org: Org) -> None:
    numbers = org.voting_campaign(nominees=3, rules={"hide_counts": True})
    _vote(client, org, numbers[0], range(1, 3))
    html = client.get("/c/v1/ranking").get_data(as_text=True)
    assert "podium" not in html.split("<section", 1)[1] and "距上一名" not in html


# --- navigation and titles ----------------------------------------------------------------------


def test_navigation_links_my_votes_always_and_publicity_once_published(
    app: Flask, client: FlaskClient, org: Org
) -> None:
    org.voting_campaign(nominees=1)
    html = client.get("/c/v1").get_data(as_text=True)
    assert 'href="/c/v1/my-votes"' in html and "我的投票" in html
    assert "/c/v1/publicity" not in html
    for phase in ("publicity", "closed"):
        with app.app_context():
            db.session.query(Campaign).filter_by(slug="v1").update({"phase": phase})
            db.session.commit()
            db.session.remove()
        from nominations import public_view

        with app.app_context():
            public_view.invalidate("v1")
        for path in ("/c/v1", "/c/v1/ranking"):
            page = client.get(path).get_data(as_text=True)
            assert 'href="/c/v1/publicity"' in page and ">公示<" in page, (phase, path)


def test_titles_are_marked_for_word_wrapping_and_drafts_stay_off_the_landing_page(
    client: FlaskClient, org: Org
) -> None:
    org.voting_campaign(nominees=1)
    org.campaign("draft1", phase="draft", title="未发布的活动")
    assert '<h1 class="title" id="campaign-title">' in client.get("/c/v1").get_data(as_text=True)
    landing = client.get("/").get_data(as_text=True)
    assert 'data-testid="campaign-v1"' in landing and "未发布的活动" not in landing
    css = client.get("/assets/h5.css")
    text = css.get_data(as_text=True)
    css.close()
    assert "word-break: keep-all" in text and "text-wrap: balance" in text


def test_titles_break_before_quotes_and_after_the_year_and_stay_escaped(
    client: FlaskClient, org: Org
) -> None:
    from core.types import utcnow

    year = utcnow().year
    title = f"{year}年度青山县“最美医务工作者”评选<b>"
    org.voting_campaign(nominees=1, title=title)
    html = client.get("/c/v1").get_data(as_text=True)
    h1 = re.search(r'<h1 class="title" id="campaign-title">(.*?)</h1>', html).group(1)  # type: ignore[union-attr]
    assert h1 == f"{year}年度<wbr>青山县<wbr>“最美医务工作者”评选&lt;b&gt;"
    # The page's <title> and share text keep the title as it is.
    assert f"<title>{year}年度青山县“最美医务工作者”评选&lt;b&gt;</title>" in html
