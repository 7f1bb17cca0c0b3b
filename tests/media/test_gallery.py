"""A nomination's photo gallery: up to six photos (the seventh refused, also when two uploads race
for the last place), one cover chosen by the unit, photos removed while editable; videos keep
their one-current rule."""

from __future__ import annotations

import contextlib
import io
import threading
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from PIL import Image
from sqlalchemy import select

from core.audit import AuditLog
from core.extensions import db
from media import services
from media.models import PHOTOS_MAX, MediaAsset
from nominations.models import Nomination
from tests.factories import Org


def jpeg(shade: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (60, 80), (shade, 120, 200 - shade)).save(out, format="JPEG")
    return out.getvalue()


def upload(client: FlaskClient, org: Org, nid: int, shade: int = 10, user: str = "unit-h1") -> Any:
    return client.post(
        f"/api/v1/nominations/{nid}/photo",
        data=jpeg(shade),
        headers={**org.headers(user), "Content-Type": "image/jpeg"},
    )


def uploaded(client: FlaskClient, org: Org, nid: int, count: int) -> list[int]:
    ids = []
    for shade in range(count):
        answer = upload(client, org, nid, shade * 20)
        assert answer.status_code == 201, answer.json
        ids.append(answer.json["id"])
    return ids


def gallery(
    client: FlaskClient, org: Org, nid: int, user: str = "unit-h1"
) -> list[tuple[int, bool]]:
    answer = client.get(f"/api/v1/nominations/{nid}/photos", headers=org.headers(user))
    assert answer.status_code == 200, answer.json
    assert answer.json["limit"] == PHOTOS_MAX
    return [(item["id"], item["cover"]) for item in answer.json["items"]]


def stored_photo_folders(app: Flask) -> set[Path]:
    root = Path(app.config["MEDIA_ROOT"])
    return {p for p in root.glob("p-*") if any(p.iterdir())}


def test_photos_accumulate_to_six_the_first_is_the_cover_and_the_seventh_is_refused(
    client: FlaskClient, org: Org, app: Flask
) -> None:
    org.campaign()
    nid = org.nomination()
    first = upload(client, org, nid)
    assert first.status_code == 201 and first.json["cover"] is True
    ids = [first.json["id"], *uploaded(client, org, nid, PHOTOS_MAX - 1)]
    assert gallery(client, org, nid) == [(ids[0], True)] + [(i, False) for i in ids[1:]]
    with app.app_context():
        statuses = db.session.scalars(
            select(MediaAsset.status).where(MediaAsset.nomination_id == nid)
        ).all()
        assert statuses == ["ready"] * PHOTOS_MAX  # nothing was replaced

    before = stored_photo_folders(app)
    seventh = upload(client, org, nid, 250)
    assert seventh.status_code == 409, seventh.json
    error = seventh.json["error"]
    assert error["code"] == "photo_limit" and "6 张" in error["message"]
    assert error["details"] == {"limit": PHOTOS_MAX, "photos": PHOTOS_MAX}
    assert stored_photo_folders(app) == before
    with app.app_context():
        assert db.session.query(MediaAsset).filter_by(nomination_id=nid).count() == PHOTOS_MAX

    # Every listing says which one is the cover.
    media = client.get(f"/api/v1/nominations/{nid}/media", headers=org.headers("unit-h1")).json
    assert [(a["id"], a["cover"]) for a in media["items"]] == sorted(
        gallery(client, org, nid), reverse=True
    )
    one = client.get(f"/api/v1/media/{ids[0]}", headers=org.headers("unit-h1")).json
    assert one["cover"] is True


def test_two_uploads_racing_for_the_last_place_do_not_both_pass(
    client: FlaskClient, org: Org, app: Flask, monkeypatch: Any
) -> None:
    org.campaign()
    nid = org.nomination()
    uploaded(client, org, nid, PHOTOS_MAX - 1)
    headers = {**org.headers("unit-h1"), "Content-Type": "image/jpeg"}
    # Both requests pass the check made before the body is read, then meet here, after their
    # bodies are in and before either keeps its photo.
    meeting = threading.Barrier(2, timeout=20)
    original = services.process_photo

    def process_side_by_side(*args: Any, **kwargs: Any) -> Any:
        with contextlib.suppress(threading.BrokenBarrierError):
            meeting.wait()
        return original(*args, **kwargs)

    monkeypatch.setattr(services, "process_photo", process_side_by_side)
    before = stored_photo_folders(app)
    answers: list[Any] = []

    def send(shade: int) -> None:
        answer = app.test_client().post(
            f"/api/v1/nominations/{nid}/photo", data=jpeg(shade), headers=headers
        )
        answers.append((answer.status_code, answer.json))

    threads = [threading.Thread(target=send, args=(shade,)) for shade in (200, 220)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not meeting.broken, "the two uploads did not run side by side"
    statuses = sorted(status for status, _ in answers)
    assert statuses == [201, 409], answers
    [refused] = [body for status, body in answers if status == 409]
    assert refused["error"]["code"] == "photo_limit"
    assert len(gallery(client, org, nid)) == PHOTOS_MAX
    with app.app_context():
        kept = db.session.query(MediaAsset).filter_by(nomination_id=nid).count()
    assert kept == PHOTOS_MAX
    # The loser's files went with it: one new photo folder, the winner's.
    assert len(stored_photo_folders(app) - before) == 1


def test_the_unit_chooses_the_cover_and_removing_it_makes_the_next_one_the_cover(
    client: FlaskClient, org: Org, app: Flask
) -> None:
    org.campaign()
    nid = org.nomination()
    a, b, c, d = uploaded(client, org, nid, 4)
    clerk = org.headers("unit-h1")

    chosen = client.put(f"/api/v1/nominations/{nid}/photos/{c}/cover", headers=clerk)
    assert chosen.status_code == 200, chosen.json
    # Cover first, then the others in upload order.
    order = [(c, True), (a, False), (b, False), (d, False)]
    assert [(i["id"], i["cover"]) for i in chosen.json["items"]] == order
    assert gallery(client, org, nid) == order

    removed = client.delete(f"/api/v1/nominations/{nid}/photos/{c}", headers=clerk)
    assert removed.status_code == 200, removed.json
    assert [(i["id"], i["cover"]) for i in removed.json["items"]] == [
        (a, True),
        (b, False),
        (d, False),
    ]
    gone = client.get(f"/api/v1/media/{c}", headers=clerk).json
    assert gone["status"] == "removed" and gone["cover"] is False
    # A removed photo is never public, and it cannot come back as the cover.
    again = client.put(f"/api/v1/nominations/{nid}/photos/{c}/cover", headers=clerk)
    assert again.status_code == 404 and again.json["error"]["code"] == "media_not_found"

    # Removing another photo leaves the cover; removing them all leaves no cover.
    assert client.delete(f"/api/v1/nominations/{nid}/photos/{d}", headers=clerk).status_code == 200
    assert gallery(client, org, nid) == [(a, True), (b, False)]
    for photo in (a, b):
        assert (
            client.delete(f"/api/v1/nominations/{nid}/photos/{photo}", headers=clerk).status_code
            == 200
        )
    assert gallery(client, org, nid) == []
    # The room is free again, and the next photo is the cover.
    fresh = upload(client, org, nid, 90)
    assert fresh.status_code == 201 and fresh.json["cover"] is True

    with app.app_context():
        actions = db.session.scalars(
            select(AuditLog.action).where(
                AuditLog.action.in_(("media.cover", "media.photo_removed"))
            )
        ).all()
        assert sorted(actions) == ["media.cover"] + ["media.photo_removed"] * 4
        covers = db.session.scalars(
            select(MediaAsset.id).where(MediaAsset.nomination_id == nid, MediaAsset.is_cover)
        ).all()
        assert covers == [fresh.json["id"]]


def test_gallery_changes_follow_the_upload_rules(client: FlaskClient, org: Org, app: Flask) -> None:
    org.campaign()
    nid = org.nomination()
    first, second = uploaded(client, org, nid, 2)
    path = f"/api/v1/nominations/{nid}/photos/{second}"

    # Another unit: the nomination does not exist for it.
    for call in (client.put, client.delete):
        target = f"{path}/cover" if call == client.put else path
        other = call(target, headers=org.headers("unit-h2"))
        assert other.status_code == 404 and other.json["error"]["code"] == "nomination_not_found"
    listing = client.get(f"/api/v1/nominations/{nid}/photos", headers=org.headers("unit-h2"))
    assert listing.status_code == 404
    # A reviewer may look, never change.
    assert client.put(f"{path}/cover", headers=org.headers("rev-k1")).status_code == 403
    assert client.delete(path, headers=org.headers("rev-k1")).status_code == 403
    # Without a login.
    assert client.delete(path).status_code == 401

    # Not a photo of this gallery: a video, another nomination's photo, an unknown id.
    video = client.post(
        f"/api/v1/nominations/{nid}/video",
        headers={**org.headers("unit-h1"), "Tus-Resumable": "1.0.0", "Upload-Length": "100"},
    ).json["id"]
    other_nid = org.nomination(name="另一位")
    [foreign] = uploaded(client, org, other_nid, 1)
    for asset in (video, foreign, 999_999):
        answer = client.put(
            f"/api/v1/nominations/{nid}/photos/{asset}/cover", headers=org.headers("unit-h1")
        )
        assert answer.status_code == 404 and answer.json["error"]["code"] == "media_not_found"
        answer = client.delete(
            f"/api/v1/nominations/{nid}/photos/{asset}", headers=org.headers("unit-h1")
        )
        assert answer.status_code == 404 and answer.json["error"]["code"] == "media_not_found"
    assert (
        client.delete(
            f"/api/v1/nominations/{nid}/photos/abc", headers=org.headers("unit-h1")
        ).status_code
        == 404
    )

    # Once submitted, the gallery is locked like an upload (the reviewer sees it).
    with app.app_context():
        nomination = db.session.get(Nomination, nid)
        assert nomination is not None
        nomination.status = "submitted"
        db.session.commit()
    for answer in (
        client.put(f"{path}/cover", headers=org.headers("unit-h1")),
        client.delete(path, headers=org.headers("unit-h1")),
        upload(client, org, nid),
    ):
        assert answer.status_code == 409 and answer.json["error"]["code"] == "not_editable"
    assert gallery(client, org, nid, user="rev-k1") == [(first, True), (second, False)]


def test_videos_keep_one_current_while_photos_accumulate(
    client: FlaskClient, org: Org, app: Flask
) -> None:
    org.campaign()
    nid = org.nomination()
    uploaded(client, org, nid, 2)
    with app.app_context():
        for key in ("v-old", "v-new"):
            asset = MediaAsset(
                nomination_id=nid,
                kind="video",
                status="processing",
                storage_key=f"{key}-{nid}",
                declared_size=10,
                received=10,
                renditions=[],
            )
            db.session.add(asset)
            db.session.flush()
            services._make_current(asset)
        db.session.commit()
        rows = db.session.execute(
            select(MediaAsset.kind, MediaAsset.status, MediaAsset.is_current)
            .where(MediaAsset.nomination_id == nid)
            .order_by(MediaAsset.id)
        ).all()
    assert [tuple(r) for r in rows] == [
        ("photo", "ready", True),
        ("photo", "ready", True),
        ("video", "replaced", False),
        ("video", "ready", True),
    ]
