"""The share poster (pages/poster.py): the PNG, its QR code (decoded with zxing-cpp), the cache
and its ETag, the 404s, the wording, the Chinese font and the button partial."""

from __future__ import annotations

import io
import logging
import shutil
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import zxingcpp
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image, ImageFont

from campaigns.models import Campaign
from core.extensions import db
from core.types import utcnow
from nominations import public_view
from nominations import services as nomination_services
from nominations.models import Nomination
from pages import poster
from tests.factories import Org

GREEN = (30, 150, 60)
BLUE = (20, 60, 200)


@pytest.fixture(autouse=True)
def _no_kept_posters(app: Flask) -> Iterator[None]:
    """Each test starts without posters on disk (ids repeat once the tables are emptied)."""
    folder = Path(app.instance_path) / "posters"
    shutil.rmtree(folder, ignore_errors=True)
    yield
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def renders(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The seam: every poster drawn, by nominee number."""
    drawn: list[str] = []
    real = poster.draw_poster

    def counting(content: poster.PosterContent) -> poster.Drawn:
        drawn.append(content.number)
        return real(content)

    monkeypatch.setattr(poster, "draw_poster", counting)
    return drawn


def _jpeg(colour: tuple[int, int, int], size: tuple[int, int] = (900, 1200)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, format="JPEG", quality=95)
    return out.getvalue()


def _upload(client: FlaskClient, org: Org, nid: int, body: bytes) -> int:
    response = client.post(
        f"/api/v1/nominations/{nid}/photo",
        data=body,
        headers={**org.headers("unit-h1"), "Content-Type": "image/jpeg"},
    )
    assert response.status_code == 201, response.get_json()
    return int(response.get_json()["id"])


def _approve(app: Flask, org: Org, nid: int) -> str:
    with app.app_context():
        nomination = db.session.get(Nomination, nid)
        assert nomination is not None
        nomination_services.submit(org.account("unit-h1"), nomination)
        nomination_services.review(org.account("admin"), nomination, "approve", None)
        db.session.commit()
        number = nomination.number
        db.session.remove()
    assert number
    return number


def _voting(app: Flask, slug: str) -> None:
    with app.app_context():
        from campaigns import services as campaign_services

        campaign = db.session.query(Campaign).filter_by(slug=slug).one()
        campaign_services.change_phase(campaign, "voting", None)
        db.session.commit()
        db.session.remove()


def _nominee_with_photo(
    app: Flask, client: FlaskClient, org: Org, slug: str, name: str = "李晓梅"
) -> tuple[int, str]:
    """An approved doctor with a green photo, in a campaign still taking nominations (its
    approved nominees are public, as on the nominee page)."""
    now = utcnow()
    org.campaign(
        slug,
        max_per_unit=50,
        nomination_start=(now - timedelta(days=2)).isoformat(),
        nomination_end=(now + timedelta(days=1)).isoformat(),
        voting_start=(now + timedelta(days=2)).isoformat(),
        voting_end=(now + timedelta(days=5)).isoformat(),
    )
    nid = org.nomination(slug, name=name)
    _upload(client, org, nid, _jpeg(GREEN))
    return nid, _approve(app, org, nid)


def _edit(app: Flask, nid: int, slug: str, **values: Any) -> None:
    """Change a nomination's columns and invalidate the public view, as an edit's commit does."""
    with app.app_context():
        nomination = db.session.get(Nomination, nid)
        assert nomination is not None
        for key, value in values.items():
            setattr(nomination, key, value)
        db.session.commit()
        public_view.invalidate(slug)
        db.session.remove()


def _image(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def _qr_text(image: Image.Image) -> list[str]:
    return [result.text for result in zxingcpp.read_barcodes(image.convert("RGB"))]


def _close(a: tuple[int, ...], b: tuple[int, ...], tolerance: int = 12) -> bool:
    return all(abs(x - y) <= tolerance for x, y in zip(a, b, strict=False))


def _photo_centre(image: Image.Image) -> tuple[int, ...]:
    """A pixel inside the photo frame (centred horizontally, under the title and card top)."""
    return image.convert("RGB").getpixel((poster.WIDTH // 2, 560))  # type: ignore[return-value]


def test_poster_is_a_phone_sized_png_whose_qr_opens_the_nominee_page(
    app: Flask, client: FlaskClient, org: Org
) -> None:
    _, number = _nominee_with_photo(app, client, org, "p1")
    response = client.get(f"/c/p1/n/{number}/poster.png")
    assert response.status_code == 200
    assert response.mimetype == "image/png"
    assert response.headers["Cache-Control"] == "public, max-age=300"
    image = _image(response.data)
    assert image.format == "PNG" and image.size == (750, 1334)
    assert _qr_text(image) == [f"http://localhost/c/p1/n/{number}"]
    # The photo is there, cover-cropped into its frame.
    assert _close(_photo_centre(image), GREEN)
    # The QR code's page is the nominee page.
    assert client.get(f"/c/p1/n/{number}").status_code == 200


def test_the_qr_code_uses_the_configured_server_name_and_scheme(
    make_app: Callable[..., Flask], client: FlaskClient, app: Flask, org: Org
) -> None:
    _, number = _nominee_with_photo(app, client, org, "p2")
    public = make_app(SERVER_NAME="vote.example.gov.cn", PREFERRED_URL_SCHEME="https")
    response = public.test_client().get(f"/c/p2/n/{number}/poster.png")
    assert response.status_code == 200
    assert _qr_text(_image(response.data)) == [f"https://vote.example.gov.cn/c/p2/n/{number}"]


def test_kept_poster_answers_304_and_is_never_drawn_twice(
    app: Flask, client: FlaskClient, org: Org, renders: list[str]
) -> None:
    _, number = _nominee_with_photo(app, client, org, "p3")
    url = f"/c/p3/n/{number}/poster.png"
    first = client.get(url)
    assert first.status_code == 200 and renders == [number]
    etag = first.headers["ETag"]
    assert etag.startswith('"') and len(etag) == 34
    again = client.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""
    assert again.headers["ETag"] == etag
    # Without the ETag: the kept file, byte for byte, still not drawn again.
    plain = client.get(url)
    assert plain.status_code == 200 and plain.data == first.data
    assert plain.headers["ETag"] == etag
    assert renders == [number]
    kept = list((Path(app.instance_path) / "posters").rglob("*.png"))
    assert len(kept) == 1 and kept[0].read_bytes() == first.data
    # A stale ETag gets the poster.
    assert client.get(url, headers={"If-None-Match": '"stale"'}).status_code == 200


def test_a_new_photo_or_name_draws_a_new_poster(
    app: Flask, client: FlaskClient, org: Org, renders: list[str]
) -> None:
    nid, number = _nominee_with_photo(app, client, org, "p4")
    url = f"/c/p4/n/{number}/poster.png"
    first = client.get(url)
    assert _close(_photo_centre(_image(first.data)), GREEN)

    # The unit adds a photo and makes it the cover (the nomination back with the unit, then
    # approved again): the poster shows the cover.
    _edit(app, nid, "p4", status="returned")
    blue = _upload(client, org, nid, _jpeg(BLUE, (1600, 900)))  # landscape: cropped to portrait
    cover = client.put(
        f"/api/v1/nominations/{nid}/photos/{blue}/cover", headers=org.headers("unit-h1")
    )
    assert cover.status_code == 200, cover.get_json()
    _edit(app, nid, "p4", status="approved")
    second = client.get(url, headers={"If-None-Match": first.headers["ETag"]})
    assert second.status_code == 200
    assert second.headers["ETag"] != first.headers["ETag"]
    assert _close(_photo_centre(_image(second.data)), BLUE)

    _edit(app, nid, "p4", name="王建国")
    third = client.get(url, headers={"If-None-Match": second.headers["ETag"]})
    assert third.status_code == 200
    assert len({first.headers["ETag"], second.headers["ETag"], third.headers["ETag"]}) == 3
    assert renders == [number] * 3
    # Only the current version is kept.
    kept = list((Path(app.instance_path) / "posters").rglob("*.png"))
    assert [p.read_bytes() for p in kept] == [third.data]


def test_unknown_draft_or_unapproved_is_the_chinese_404_page(
    app: Flask, client: FlaskClient, org: Org
) -> None:
    _, number = _nominee_with_photo(app, client, org, "p5")
    # A second nominee had a poster, then went back to the unit: no longer public.
    other = org.nomination("p5", name="退回者")
    other_number = _approve(app, org, other)
    assert client.get(f"/c/p5/n/{other_number}/poster.png").status_code == 200
    _edit(app, other, "p5", status="returned")
    org.campaign("p5draft", phase="draft")
    for path in (
        "/c/nope/n/D001/poster.png",
        "/c/p5/n/Z999/poster.png",
        "/c/p5draft/n/D001/poster.png",
        f"/c/p5/n/{other_number}/poster.png",
    ):
        response = client.get(path)
        assert response.status_code == 404, path
        html = response.get_data(as_text=True)
        assert "<html" in html and "不存在" in html, path
    # The number is read as the nominee page reads it (case and blanks).
    assert client.get(f"/c/p5/n/{number.lower()}/poster.png").status_code == 200


def test_poster_during_voting_without_photo_has_the_placeholder(
    app: Flask, client: FlaskClient, org: Org
) -> None:
    numbers = org.voting_campaign("p6", nominees=1)
    response = client.get(f"/c/p6/n/{numbers[0]}/poster.png")
    assert response.status_code == 200
    image = _image(response.data)
    assert _qr_text(image) == [f"http://localhost/c/p6/n/{numbers[0]}"]
    assert not _close(_photo_centre(image), GREEN)


def test_poster_text_has_the_nominee_and_no_reward_wording(app: Flask) -> None:
    title = "2026年度测试县“最美医务工作者”评选活动暨十大最美医生、十大最美护士评选"
    content = poster.PosterContent(
        campaign_title=title,
        organizer="测试县卫生健康局",
        name="李晓梅",
        number="D001",
        category_name="十大最美医生",
        unit="测试县人民医院（县中医院）感染性疾病科住院部",
        page_url="https://vote.example.gov.cn/c/x/n/D001",
    )
    drawn = poster.draw_poster(content)
    texts = drawn.texts
    assert "李晓梅" in texts and "编号 D001 · 十大最美医生" in texts
    assert poster.CALL_TO_VOTE in texts and poster.CALL_TO_VOTE == "请为我投上宝贵的一票"
    assert texts[0] + texts[1] + texts[2] == title  # wrapped, nothing lost
    assert not texts[1].startswith(("”", "、")) and not texts[2].startswith(("”", "、"))
    all_text = "".join(texts)
    for word in (*poster.FORBIDDEN_WORDS, "奖品", "红包", "抽奖", "领取", "奖励", "转发"):
        assert word not in all_text, word
    for fixed in (poster.CALL_TO_VOTE, poster.SCAN_HINT, poster.SCAN_SUB):
        assert fixed in texts
    assert _image(drawn.png).size == (750, 1334)


def test_wrap_breaks_between_characters_never_inside_a_latin_word() -> None:
    face = poster.font(40)
    text = "Zuimei award 2026 for the “most beautiful” doctors，护士和乡村医生（试点）评选"
    lines = poster.wrap(text, face, 300)
    assert len(lines) > 2
    assert "".join(lines).replace(" ", "") == text.replace(" ", "")
    for line in lines:
        assert face.getlength(line) <= 300
        assert line[0] not in "，。、）”」" and line[-1] not in "（“「"
    words = {w for line in lines for w in line.split()}
    for word in ("Zuimei", "award", "2026", "beautiful”"):
        assert any(word in w for w in words), word
    # A word wider than the line is still cut rather than overflowing.
    assert all(face.getlength(x) <= 120 for x in poster.wrap("A" * 40, face, 120))


def test_chinese_text_uses_the_wqy_font(app: Flask) -> None:
    poster.reset_fonts()
    face = poster.font(40)
    assert isinstance(face, ImageFont.FreeTypeFont)
    assert face.getname()[0] == "WenQuanYi Micro Hei"
    glyph = face.getmask("最").getbbox()
    missing = face.getmask("\ue000").getbbox()  # a private-use code point: no glyph
    assert glyph is not None and glyph != missing


def test_without_the_font_the_poster_is_drawn_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(poster, "FONT_PATH", "/nonexistent/font.ttc")
    poster.reset_fonts()
    try:
        with caplog.at_level(logging.WARNING, logger="zuimei.poster"):
            drawn = poster.draw_poster(
                poster.PosterContent("Title", "", "Li", "D001", "", "Unit", "http://x/c/a/n/D001")
            )
        assert "poster font" in caplog.text
        assert _qr_text(_image(drawn.png)) == ["http://x/c/a/n/D001"]
    finally:
        monkeypatch.undo()
        poster.reset_fonts()


def test_the_button_partial_links_to_the_poster(app: Flask, client: FlaskClient, org: Org) -> None:
    numbers = org.voting_campaign("p7", nominees=1)
    with app.test_request_context():
        html = app.jinja_env.get_template("pages/h5/_poster_button.html").render(
            campaign={"slug": "p7"}, person={"number": numbers[0]}
        )
    assert "生成拉票海报" in html and "长按图片" in html
    href = f"/c/p7/n/{numbers[0]}/poster.png"
    assert f'href="{href}"' in html
    assert client.get(href).mimetype == "image/png"


def test_drawing_is_limited_per_address_but_kept_posters_are_not(
    make_app: Callable[..., Flask], app: Flask, client: FlaskClient, org: Org
) -> None:
    _, number = _nominee_with_photo(app, client, org, "p8")
    limited = make_app(POSTER_DRAW_IP_LIMIT="2/minute").test_client()
    url = f"/c/p8/n/{number}/poster.png"
    # Each made-up host is a new QR URL, so a new drawing.
    first = limited.get(url, base_url="http://a.example")
    assert first.status_code == 200
    assert limited.get(url, base_url="http://b.example").status_code == 200
    refused = limited.get(url, base_url="http://c.example")
    assert refused.status_code == 429 and "<html" in refused.get_data(as_text=True)
    # The kept poster (the last one drawn) and a 304 cost no drawing.
    assert limited.get(url, base_url="http://b.example").status_code == 200
    again = limited.get(
        url, base_url="http://a.example", headers={"If-None-Match": first.headers["ETag"]}
    )
    assert again.status_code == 304
