"""The overview at the top of the OpenAPI document (``info.description``, shown by /api/docs).

Written for a developer meeting the API for the first time: who calls it with which credential,
CSRF for cookie callers, the error envelope, idempotent votes, rate limits, pagination and time
zones. docs/api.md, docs/voting.md and docs/pages.md say the same at length; keep them in step.
The config hands it to flask-smorest: ``API_SPEC_OPTIONS = {"info": {"description": OVERVIEW}}``.
"""

from __future__ import annotations

from typing import Any

OVERVIEW = """\
The API behind the Zuimei (最美评选) campaigns: staff run a campaign (nominations, review,
judging, results, publicity), the public reads it and votes. Every path is under `/api/v1`;
bodies are JSON (`Content-Type: application/json`, at most 2 MB) unless an operation says
otherwise (uploads). Each operation below says who may call it and what it refuses; the
workflow, roles and every error code are explained in `docs/api.md` of the repository.

## Authentication

One scheme, `Authorization: Bearer <token>`, carries two kinds of signed, expiring tokens:

- **Staff** (valid 8 hours): `POST /api/v1/auth/login {username, password}` → `access_token`.
- **Voters** (valid 7 days): WeChat web authorisation (`GET /api/v1/wechat/oauth/start`), a
  phone code (`POST /api/v1/voters/sms/codes`, then `POST /api/v1/voters/sms`), or, in demos, a
  device id (`POST /api/v1/voters/device`).

Staff roles decide what an account may do: `admin` (评选活动办公室, the committee office:
everything), `reviewer` (主管部门, a bureau: reviews the nominations of the units below it), `unit`
(推荐单位, an institution's clerk: nominates for its own unit) and `judge` (scores the nominees
of its categories). A wrong role is `403 forbidden`; an object outside the caller's reach
(another unit's nomination) is `404`, exactly like one that does not exist. A staff token is
revoked by logging out, a password change or reset, and deactivation (`401 token_revoked` /
`invalid_token`). Voters are identified only by their token: a voter or device id in a body is
never trusted. Public reads (campaigns, nominees, ranking, winners) need no token.

## CSRF (cookie callers)

The web pages keep the same tokens in HttpOnly cookies (`zm_staff`, `zm_voter`) instead of the
header. A cookie is an ambient credential, so every state-changing request authenticated by a
cookie must carry the page's CSRF token in the `X-CSRF-Token` header (or the form field
`csrf_token`); missing or wrong: `403 csrf_failed`. Requests with a bearer token need no CSRF
token, and reads (`GET`) never do.

## Errors

Every error has one shape, with a stable English `code` to branch on and a Chinese `message`
to show:

```json
{"error": {"code": "unit_quota_exceeded",
           "message": "本单位在「十大最美医生」奖项的推荐名额（2 名）已用完",
           "details": {"category": "doctor", "max_per_unit": 2},
           "request_id": "9f1c…"}}
```

`details` carries context (for `422 validation_error`, `details.fields` maps each field to its
messages). `request_id` is also in the `X-Request-ID` response header (send your own to trace a
call). Each operation lists its own codes; the table of every code by status is in
`docs/api.md` ("Errors"). Bad input is never a 500: malformed JSON is `400 malformed_json`, a
body that is not JSON `415 unsupported_media_type`, a body over 2 MB `413 payload_too_large`.
`503 service_unavailable` means Redis or the database did not answer: retry later.

## Idempotency (votes)

`POST /api/v1/campaigns/{slug}/votes` takes an `Idempotency-Key` header (up to 64 characters,
scoped to the campaign and the voter, kept 24 hours). Send a fresh key with every vote and the
same key when retrying after a timeout, a dropped connection or a 503: a repeat answers the
first answer again, with `Idempotent-Replayed: true`, and counts nothing. A vote is either
counted once or not at all.

## Rate limits, quotas and challenges

- `429` with `Retry-After` (seconds): `rate_limited` (per address or per voter per minute:
  votes, voter creation, captchas, SMS codes, objections) and `login_throttled` /
  `login_locked` (failed logins per name and address, and per address).
- `429` for a daily quota, fresh at midnight in the campaign's time zone:
  `daily_quota_exhausted` and `nominee_daily_limit` (a voter's votes per day, in all and per
  nominee), `upload_quota_exhausted` and `objection_quota_exhausted` (these two with
  `Retry-After` until that midnight).
- `428 challenge_required` on a vote: too many votes from one network in a minute. Get a
  captcha (`POST /api/v1/challenges`), answer it (`POST /api/v1/challenges/{challenge_id}`) and
  send the returned pass as the `X-Challenge-Pass` header when voting again.
- Retry a 429 only after `Retry-After`; other 4xx refusals do not change by retrying.

## Pagination

Lists that can grow take `page` (from 1) and `per_page` (default 20, at most 100; the vote
browser and the block list: default 50, at most 500) and answer `{items, page, per_page,
total}`, `total` counting every match over all pages. Short lists (units, accounts, flags,
objections, exports) come whole as `{items}`.

## Time and time zones

Every time is ISO 8601 with an offset; the API answers in UTC (`…+00:00`) and accepts any
offset (a time without one is refused, 422). Each campaign has an IANA time zone (`timezone`,
default `Asia/Shanghai`): voting days, and so the daily vote quotas, the daily upload and
objection quotas, run from midnight to midnight in that zone (a quota spent at 23:59
Asia/Shanghai is fresh at 00:00 Asia/Shanghai, 16:00 UTC).
"""


def spec_options() -> dict[str, Any]:
    """What ``API_SPEC_OPTIONS`` should hold: the overview as ``info.description``."""
    return {"info": {"description": OVERVIEW}}
