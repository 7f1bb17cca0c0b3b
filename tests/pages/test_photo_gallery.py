"""The photo gallery where people see it: the cover on the cards, the ranking, the poster and the
dossier; every photo on the H5 nominee page and in the public API; the portal's thumbnails. The
public reads stay at their statement counts however many photos the nominees have."""

from __future__ import annotations

import io
import re
from datetime import timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from PIL import Image

from core.extensions import db
from core.types import utcnow
from media.models import MediaAsset
from nominations import services as nomination_services
from nominations.models import Nomination
from pages import poster
from tests.factories import Org
from tests.pages.browser import staff_login
from tests.pages.test_portal import _page_data
from tests.pages.test_public_reads import _counts

RED, GREEN, BLUE = (200, 30, 30), (30, 170, 60), (30, 60, 200)


def _jpeg(colour: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (300, 400), colour).save(out, format="JPEG", quality=95)
    return out.getvalue()


def _upload(client: FlaskClient, org: Org, nid: int, colour: tuple[int, int, int]) -> int:
    answer = client.post(
        f"/api/v1/nominations/{nid}/photo",
        data=_jpeg(colour),
        headers={**org.headers("unit-h1"), "Content-Type": "image/jpeg"},
    )
    assert answer.status_code == 201, answer.json
    return int(answer.json["id"])


def _public_campaign(org: Org, slug: str) -> None:
    """A campaign still taking nominations whose approved nominees are public."""
    now = utcnow()
    org.campaign(
        slug,
        max_per_unit=50,
        nomination_start=(now - timedelta(days=2)).isoformat(),
        nomination_end=(now + timedelta(days=1)).isoformat(),
        voting_start=(now + timedelta(days=2)).isoformat(),
        voting_end=(now + timedelta(days=5)).isoformat(),
    )


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
    return str(number)


def _three_photos_blue_cover(
    app: Flask, client: FlaskClient, org: Org, slug: str
) -> tuple[str, list[int]]:
    """An approved nominee with red, green and blue photos, the blue one chosen as the cover;
    its number and the photo ids in gallery order (blue, red, green)."""
    _public_campaign(org, slug)
    nid = org.nomination(slug, name="李晓梅")
    red, green, blue = (_upload(client, org, nid, c) for c in (RED, GREEN, BLUE))
    chosen = client.put(
        f"/api/v1/nominations/{nid}/photos/{blue}/cover", headers=org.headers("unit-h1")
    )
    assert chosen.status_code == 200, chosen.json
    return _approve(app, org, nid), [blue, red, green]


def _close(a: tuple[int, ...], b: tuple[int, ...], tolerance: int = 14) -> bool:
    return all(abs(x - y) <= tolerance for x, y in zip(a, b, strict=False))


def _colour(client: FlaskClient, url: str) -> tuple[int, ...]:
    answer = client.get(url)
    assert answer.status_code == 200, url
    image = Image.open(io.BytesIO(answer.data)).convert("RGB")
    return image.getpixel((image.width // 2, image.height // 2))  # type: ignore[return-value]


def test_public_reads_show_the_cover_and_the_nominee_page_every_photo(
    app: Flask, client: FlaskClient, org: Org
) -> None:
    number, order = _three_photos_blue_cover(app, client, org, "g1")
    blue = order[0]

    detail = client.get(f"/api/v1/campaigns/g1/nominees/{number}").json
    assert [(p["id"], p["cover"]) for p in detail["photos"]] == [
        (order[0], True),
        (order[1], False),
        (order[2], False),
    ]
    assert detail["photo_url"] == f"/media/{blue}/photo.jpg"
    assert detail["thumb_url"] == f"/media/{blue}/thumb.jpg"
    # Every photo of an approved nominee's gallery is public.
    for photo, colour in zip(detail["photos"], (BLUE, RED, GREEN), strict=True):
        assert _close(_colour(client, photo["photo_url"]), colour)
    # The listing's card carries the cover only.
    [card] = client.get("/api/v1/campaigns/g1/nominees").json["items"]
    assert card["thumb_url"] == f"/media/{blue}/thumb.jpg" and "photos" not in card

    html = client.get(f"/c/g1/n/{number}").get_data(as_text=True)
    head = re.search(r'<img class="photo large" src="([^"]+)"', html)
    assert head and head.group(1) == f"/media/{blue}/photo.jpg"
    strip = html[
        html.index('data-testid="gallery"') : html.index(
            "</section>", html.index('data-testid="gallery"')
        )
    ]
    shown = re.findall(r'<img src="/media/(\d+)/photo.jpg"[^>]*loading="lazy"', strip)
    assert [int(i) for i in shown] == order
    assert "共 3 张" in strip and strip.count('data-cover="1"') == 1
    assert "<script" not in strip

    home = client.get("/c/g1").get_data(as_text=True)
    assert f"/media/{blue}/thumb.jpg" in home
    assert all(f"/media/{other}/" not in home for other in order[1:])


def test_one_photo_shows_no_gallery_strip(app: Flask, client: FlaskClient, org: Org) -> None:
    _public_campaign(org, "g2")
    nid = org.nomination("g2")
    only = _upload(client, org, nid, GREEN)
    number = _approve(app, org, nid)
    html = client.get(f"/c/g2/n/{number}").get_data(as_text=True)
    assert f'src="/media/{only}/photo.jpg"' in html
    assert 'data-testid="gallery"' not in html


def test_the_poster_and_the_dossier_show_the_cover(
    app: Flask, client: FlaskClient, org: Org
) -> None:
    number, order = _three_photos_blue_cover(app, client, org, "g3")
    image = Image.open(io.BytesIO(client.get(f"/c/g3/n/{number}/poster.png").data))
    centre = image.convert("RGB").getpixel((poster.WIDTH // 2, 560))
    assert _close(centre, BLUE), centre  # type: ignore[arg-type]

    with app.app_context():
        nid = db.session.query(Nomination.id).filter(Nomination.number == number).scalar()
    staff_login(client, "unit-h1")
    sheet = client.get(f"/console/campaigns/g3/nominations/{nid}/dossier").get_data(as_text=True)
    found = re.search(rf'<img src="([^"]+)" alt="[^"]+的照片" id="photo-{nid}">', sheet)
    assert found and found.group(1).startswith(f"/media/{order[0]}/photo.jpg?t=")


def test_the_portal_lists_the_gallery_with_its_cover(client: FlaskClient, org: Org) -> None:
    org.campaign()
    nid = org.nomination()
    first, second = (_upload(client, org, nid, c) for c in (RED, GREEN))
    client.put(f"/api/v1/nominations/{nid}/photos/{second}/cover", headers=org.headers("unit-h1"))
    staff_login(client, "unit-h1")
    html = client.get(f"/portal/nominations/{nid}").get_data(as_text=True)
    data = _page_data(html)
    assert [(p["id"], p["cover"]) for p in data["photos"]] == [(second, True), (first, False)]
    assert data["photo"]["id"] == second and data["photos_max"] == 6
    current = re.search(r'<img id="photo-current"[^>]*>', html)
    assert current and f"/media/{second}/thumb.jpg?t=" in current.group(0)
    items = re.findall(r'data-testid="photo-item-(\d+)"', html)
    assert [int(i) for i in items] == [second, first]
    assert 'id="photo-count" data-testid="photo-count">2 / 6 张' in html
    # The cover has no 设为封面 of its own; each photo can be deleted.
    assert html.count('data-action="cover"') == 1 and html.count('data-action="delete"') == 2
    assert re.search(r'<input type="file" id="photo-input"[^>]*multiple>', html)

    # Full: the picker is off.
    for colour in (BLUE, RED, GREEN, BLUE):
        _upload(client, org, nid, colour)
    html = client.get(f"/portal/nominations/{nid}").get_data(as_text=True)
    assert re.search(r'<input type="file" id="photo-input"[^>]*multiple disabled>', html)
    # Submitted: thumbnails without the buttons, no picker.
    with client.application.app_context():
        nomination = db.session.get(Nomination, nid)
        assert nomination is not None
        nomination.status = "submitted"
        db.session.commit()
    html = client.get(f"/portal/nominations/{nid}").get_data(as_text=True)
    assert len(re.findall(r'data-testid="photo-item-', html)) == 6
    assert "data-action=" not in html and 'id="photo-input"' not in html


def test_public_reads_keep_their_statement_counts_with_galleries(
    app: Flask, client: FlaskClient, org: Org
) -> None:
    few = org.voting_campaign("s5", nominees=5)
    many = org.voting_campaign("s50", nominees=50)
    with app.app_context():
        ids = db.session.scalars(db.select(Nomination.id)).all()
        for nid in ids:
            for index in range(3):
                db.session.add(
                    MediaAsset(
                        nomination_id=nid,
                        kind="photo",
                        status="ready",
                        storage_key=f"gallery-{nid}-{index}",
                        declared_size=100,
                        received=100,
                        is_current=True,
                        is_cover=index == 1,
                        renditions=[
                            {"label": "photo", "file": "photo.jpg"},
                            {"label": "thumb", "file": "thumb.jpg"},
                        ],
                    )
                )
        db.session.commit()
        db.session.remove()
    small, large = _counts(app, client, "s5", few), _counts(app, client, "s50", many)
    assert small == large, (small, large)
    for name, (cold, warm) in large.items():
        assert cold == {"h5 nominee": 5, "api nominee": 5}.get(name, 4), (name, cold)
        assert warm == 0, (name, warm)
    detail: dict[str, Any] = client.get(f"/api/v1/campaigns/s5/nominees/{few[0]}").json
    assert [p["cover"] for p in detail["photos"]] == [True, False, False]
    assert detail["photo_url"] == detail["photos"][0]["photo_url"]
