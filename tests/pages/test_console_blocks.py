"""The console's voter blocks: the vote browser's 屏蔽 forms and blocked list with 解除屏蔽, and
the fraud desk's "屏蔽这些投票人" — who may, what the pages render, that the forms work with
their CSRF token and refuse without it. (What console.js does is the API call tested here with
the page's cookie and CSRF header.)"""

from __future__ import annotations

import re
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from campaigns.models import Campaign
from core.audit import AuditLog
from core.auth import read_token
from core.extensions import db, redis_store
from tests.factories import FakeFinding, Org
from tests.pages.browser import staff_login
from voting import fraud, services
from voting.keys import CampaignKeys
from voting.models import VoterBlock

PAGE = "/console/c/v1/votes"


def _voters(
    app: Flask, client: FlaskClient, numbers: list[str], *names: str
) -> list[tuple[int, str]]:
    """Real device voters who each cast one vote for the first nominee, drained: (id, vote id)."""
    made = []
    for name in names:
        answer = client.post("/api/v1/voters/device", json={"device_id": f"device-{name}-0001"})
        token = answer.json["voter_token"]
        vote = client.post(
            "/api/v1/campaigns/v1/votes",
            json={"nominee": numbers[0]},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert vote.status_code == 201, vote.json
        with app.app_context():
            made.append((int(read_token("voter", token)["sub"]), vote.json["vote_id"]))
    with app.app_context():
        services.drain_campaign("v1")
        db.session.remove()
    return made


def _blocks(app: Flask) -> list[tuple[int, str, str | None]]:
    with app.app_context():
        rows = [
            (b.voter_id, b.reason, b.lift_reason)
            for b in db.session.scalars(select(VoterBlock).order_by(VoterBlock.id))
        ]
        db.session.remove()
    return rows


def _in_blocked_set(app: Flask, voter_id: int) -> bool:
    with app.app_context():
        return bool(redis_store.votes.sismember(CampaignKeys.of("v1").blocked, voter_id))


def _text(response: Any) -> str:
    return response.get_data(as_text=True)


def test_vote_browser_blocks_and_lifts_with_a_reason(
    app: Flask, client: FlaskClient, org: Org
) -> None:
    numbers = org.voting_campaign()
    (voter, _), (other, _) = _voters(app, client, numbers, "one", "two")
    csrf = staff_login(client, "admin", area="console")
    page = _text(client.get(PAGE))
    assert f'data-testid="block-voter-{voter}"' in page
    assert f'data-testid="block-voter-{other}"' in page
    assert 'id="blocked-empty"' in page and 'name="csrf_token"' in page
    # Each block form carries the page's CSRF token.
    forms = re.findall(
        r'<form method="post" action="/console/c/v1/votes/block".*?</form>', page, re.S
    )
    assert len(forms) == 3 and all(f'value="{csrf}"' in form for form in forms)

    done = client.post(
        f"{PAGE}/block",
        data={
            "csrf_token": csrf,
            "voter_id": str(voter),
            "reason": "同一设备注册多个身份",
            "back": "status=valid&page=1&next=http://evil.example/&nominee=" + numbers[0],
        },
    )
    assert done.status_code == 303
    location = done.headers["Location"]
    assert location.startswith("/console/c/v1/votes?") and location.endswith("#blocked-voters")
    assert "evil" not in location and f"blocked={voter}" in location and "status=valid" in location
    assert _blocks(app) == [(voter, "同一设备注册多个身份", None)]
    assert _in_blocked_set(app, voter) and not _in_blocked_set(app, other)

    after = _text(client.get(location.split("#")[0]))
    assert f"已屏蔽投票人 {voter}。" in after
    assert f'data-testid="blocked-{voter}"' in after and "同一设备注册多个身份" in after
    assert f'data-testid="voter-blocked-{voter}"' in after
    assert f'data-testid="block-voter-{voter}"' not in after
    assert f'data-testid="block-voter-{other}"' in after

    lifted = client.post(
        f"{PAGE}/blocks/{voter}/lift",
        data={"csrf_token": csrf, "reason": "本人来电说明情况", "back": ""},
    )
    assert lifted.status_code == 303 and f"lifted={voter}" in lifted.headers["Location"]
    assert _blocks(app) == [(voter, "同一设备注册多个身份", "本人来电说明情况")]
    assert not _in_blocked_set(app, voter)
    page = _text(client.get(lifted.headers["Location"].split("#")[0]))
    assert f"已解除对投票人 {voter} 的屏蔽。" in page and 'id="blocked-empty"' in page
    with app.app_context():
        actions = list(db.session.scalars(select(AuditLog.action).order_by(AuditLog.id)))
        db.session.remove()
    assert actions[-2:] == ["voter.block", "voter.unblock"]


def test_vote_browser_forms_refuse_what_is_wrong(app: Flask, client: FlaskClient, org: Org) -> None:
    numbers = org.voting_campaign()
    ((voter, _),) = _voters(app, client, numbers, "three")
    csrf = staff_login(client, "admin", area="console")
    no_reason = client.post(
        f"{PAGE}/block", data={"csrf_token": csrf, "voter_id": str(voter), "reason": " "}
    )
    assert no_reason.status_code == 422
    assert "请填写屏蔽或解除屏蔽的理由" in _text(no_reason)
    assert 'id="block-error"' in _text(no_reason)
    short = client.post(
        f"{PAGE}/block", data={"csrf_token": csrf, "voter_id": str(voter), "reason": "刷"}
    )
    assert short.status_code == 422 and "2–500" in _text(short)
    # What was typed stays in the form.
    assert re.search(rf'id="block-voter-id"[^>]*value="{voter}"', _text(short))
    unknown = client.post(
        f"{PAGE}/block", data={"csrf_token": csrf, "voter_id": "987654", "reason": "没有这个人"}
    )
    assert unknown.status_code == 404 and "投票人不存在" in _text(unknown)
    garbage = client.post(
        f"{PAGE}/block", data={"csrf_token": csrf, "voter_id": "1; drop", "reason": "格式不对"}
    )
    assert garbage.status_code == 422 and "投票人编号应为正整数" in _text(garbage)
    no_csrf = client.post(f"{PAGE}/block", data={"voter_id": str(voter), "reason": "没有令牌"})
    assert no_csrf.status_code == 403 and "页面已过期" in _text(no_csrf)
    wrong_csrf = client.post(
        f"{PAGE}/block", data={"csrf_token": "0" * 64, "voter_id": str(voter), "reason": "令牌不对"}
    )
    assert wrong_csrf.status_code == 403
    assert _blocks(app) == []

    assert (
        client.post(
            f"{PAGE}/block", data={"csrf_token": csrf, "voter_id": str(voter), "reason": "刷票"}
        ).status_code
        == 303
    )
    twice = client.post(
        f"{PAGE}/block", data={"csrf_token": csrf, "voter_id": str(voter), "reason": "再屏蔽"}
    )
    assert twice.status_code == 409 and "该投票人已被屏蔽" in _text(twice)
    no_lift_reason = client.post(
        f"{PAGE}/blocks/{voter}/lift", data={"csrf_token": csrf, "reason": ""}
    )
    assert no_lift_reason.status_code == 422 and 'id="lift-error"' in _text(no_lift_reason)
    not_blocked = client.post(
        f"{PAGE}/blocks/987654/lift", data={"csrf_token": csrf, "reason": "解除"}
    )
    assert not_blocked.status_code == 404 and "该投票人没有被屏蔽" in _text(not_blocked)
    no_csrf_lift = client.post(f"{PAGE}/blocks/{voter}/lift", data={"reason": "解除屏蔽"})
    assert no_csrf_lift.status_code == 403
    assert _blocks(app) == [(voter, "刷票", None)]


def test_only_the_committee_opens_and_posts(app: Flask, client: FlaskClient, org: Org) -> None:
    numbers = org.voting_campaign()
    ((voter, _),) = _voters(app, client, numbers, "four")
    for username in ("rev-k1", "unit-h1", "judge"):
        other = app.test_client()
        csrf = staff_login(other, username, area="console")
        assert other.get(PAGE).status_code == 403
        refused = other.post(
            f"{PAGE}/block", data={"csrf_token": csrf, "voter_id": str(voter), "reason": "越权"}
        )
        assert refused.status_code == 403, username
        api = other.post(
            "/api/v1/admin/campaigns/v1/fraud/flags/1/block-voters",
            json={"reason": "越权"},
            headers={"X-CSRF-Token": csrf},
        )
        assert api.status_code == 403
    assert _blocks(app) == []
    anonymous = app.test_client().post(f"{PAGE}/block", data={"voter_id": str(voter)})
    assert anonymous.status_code == 403  # no CSRF seed at all: refused before anything else


def _flag(app: Flask, vote_ids: list[str], nominee: str) -> int:
    with app.app_context():
        campaign = db.session.scalar(select(Campaign).where(Campaign.slug == "v1"))
        scan = fraud.start_scan(campaign, "test")
        finding = FakeFinding("address_concentration", nominee, tuple(vote_ids))
        fraud._file_flag(campaign, scan, finding)
        db.session.commit()
        flag_id = fraud.list_flags(campaign)[0].id
        db.session.remove()
    return flag_id


def test_fraud_desk_blocks_the_voters_of_a_flag(app: Flask, client: FlaskClient, org: Org) -> None:
    numbers = org.voting_campaign()
    made = _voters(app, client, numbers, "five", "six", "seven")
    flag_id = _flag(app, [vote for _, vote in made[:2]], numbers[0])
    csrf = staff_login(client, "admin", area="console")
    page = _text(client.get(f"/console/c/v1/fraud?flag={flag_id}"))
    assert 'id="flag-block-voters"' in page and "屏蔽这些投票人" in page
    assert 'id="flag-block-reason"' in page and "已屏蔽的投票人（0）" in page
    url = f"/api/v1/admin/campaigns/v1/fraud/flags/{flag_id}/block-voters"
    # As console.js sends it: the staff cookie and the page's CSRF header.
    assert client.post(url, json={"reason": "脚本刷票"}).status_code == 403
    done = client.post(url, json={"reason": "脚本刷票"}, headers={"X-CSRF-Token": csrf})
    assert done.status_code == 200, done.json
    named = sorted(voter for voter, _ in made[:2])
    assert done.json["blocked"] == named and done.json["already_blocked"] == []
    assert all(_in_blocked_set(app, voter) for voter in named)
    assert not _in_blocked_set(app, made[2][0])
    assert "已屏蔽的投票人（2）" in _text(client.get("/console/c/v1/fraud"))
    browser = _text(client.get(PAGE))
    for voter in named:
        assert f'data-testid="blocked-{voter}"' in browser
    assert f'/console/c/v1/fraud?status=&amp;flag={flag_id}">#{flag_id}</a>' in browser
    assert "刷票线索" in browser
