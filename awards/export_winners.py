"""The printable, self-contained winners' list (公示名单) as one HTML page."""

from __future__ import annotations

import html
from pathlib import Path

from sqlalchemy import select

from awards import components, scoring
from awards.export_format import campaign_of, chinese_day, zone_of
from awards.labels import COMPONENT_LABELS
from awards.models import ResultEntry, ResultVersion
from campaigns.models import Campaign, Category
from core.errors import Conflict
from core.extensions import db
from nominations.models import Nomination

_CSS = """
@page { size: A4; margin: 18mm 16mm; }
* { box-sizing: border-box; }
body { margin: 0; background: #f3f3f3; color: #111;
  font-family: "Songti SC", "SimSun", "Noto Serif CJK SC", serif; font-size: 11pt; }
.sheet { width: 210mm; min-height: 297mm; margin: 12px auto; padding: 18mm 16mm;
  background: #fff; }
h1 { text-align: center; font-size: 20pt; margin: 0 0 6mm; letter-spacing: 1px; }
h2 { font-size: 13pt; margin: 7mm 0 3mm; border-left: 4px solid #b22; padding-left: 6px; }
h3.tier { font-size: 12pt; margin: 4mm 0 2mm; }
.meta { text-align: center; color: #333; margin: 0 0 2mm; }
.status { text-align: center; color: #b22; font-weight: bold; }
.lead { text-indent: 2em; line-height: 1.8; }
table { width: 100%; border-collapse: collapse; page-break-inside: auto; }
tr { page-break-inside: avoid; }
thead { display: table-header-group; }
th, td { border: 1px solid #444; padding: 2mm 2.5mm; text-align: left; vertical-align: top; }
th { background: #eee; }
td.num { text-align: center; white-space: nowrap; }
.notice p { line-height: 1.8; text-indent: 2em; margin: 1.5mm 0; }
.fine { margin-top: 10mm; font-size: 8pt; color: #555; line-height: 1.6; word-break: break-all; }
.fine code { font-family: "Courier New", monospace; }
@media print {
  body { background: #fff; }
  .sheet { width: auto; min-height: 0; margin: 0; padding: 0; }
  h2, h3 { page-break-after: avoid; }
}
"""


def winners_version(campaign: Campaign) -> ResultVersion:
    """The published, else the final result version; 409 no_final_result when there is none."""
    for status in ("published", "final"):
        version = db.session.scalar(
            select(ResultVersion)
            .where(ResultVersion.campaign_id == campaign.id, ResultVersion.status == status)
            .order_by(ResultVersion.version.desc())
            .limit(1)
        )
        if version is not None:
            return version
    raise Conflict("尚无定稿或已公示的评选结果，不能生成公示名单", code="no_final_result")


def _by_tier(
    category: Category, rows: list[ResultEntry]
) -> list[tuple[str | None, list[ResultEntry]]]:
    """A category's winners grouped by award tier, in the category's tier order, each group by
    rank; one group without a name when the entries carry no tier (a category without tiers)."""
    ranked = sorted(rows, key=lambda r: r.rank)
    if not any(r.tier for r in ranked):
        return [(None, ranked)]
    order = [t["code"] for t in category.tier_list]
    codes = order + [c for c in dict.fromkeys(r.tier or "" for r in ranked) if c not in order]
    groups = []
    for code in codes:
        members = [r for r in ranked if (r.tier or "") == code]
        if members:
            groups.append((members[0].tier_name or "其他", members))
    return groups


def _components_line(version: ResultVersion) -> str:
    """The score's parts and weights, when the version weights satisfaction, 同行互评 or 领导点评
    (a campaign without them keeps its page as it was); "" otherwise."""
    weights = version.weights or {}
    if not components.extra_weighted(weights):
        return ""
    parts = "，".join(
        f"{COMPONENT_LABELS[key]} {int(weights.get(key) or 0)}%"
        for key in components.weighted(weights)
    )
    note = ""
    if "satisfaction" in weights and int(weights.get("satisfaction") or 0):
        note = (
            f"群众满意度按受邀群众评议计算，评议不足 {scoring.min_answers(weights)} 份的候选人"
            "记为“样本不足”，其综合得分按其余各项权重折算为百分制。"
        )
    return f'<p class="lead">计分构成：{html.escape(parts)}。{html.escape(note)}</p>'


def build_winners_html(campaign_id: int, path: Path) -> Path:
    """A printable, self-contained page (inline CSS, no script, no outside asset) announcing the
    winners of the published version, or of the final one before it is published."""
    campaign = campaign_of(campaign_id)
    zone = zone_of(campaign)
    version = winners_version(campaign)
    e = html.escape
    winners = [entry for entry in version.entries if entry.winner]
    titles = dict(
        db.session.execute(
            select(Nomination.id, Nomination.title).where(
                Nomination.id.in_([w.nomination_id for w in winners])
            )
        ).all()
    )
    # "{title}评选结果公示", without doubling a title that already ends in 评选.
    stem = campaign.title.removesuffix("评选")
    title = f"{stem}评选结果公示"
    published = version.status == "published"
    if published:
        date = chinese_day(version.published_at, zone)
        window = f"公示期自{date}起至{chinese_day(version.publicity_ends_at, zone)}止。"
        status_line = ""
    else:
        date = "待正式发布"
        window = f"公示期为{campaign.publicity_days}天，自正式发布之日起计算。"
        status_line = '<p class="status">本名单为定稿结果，尚未正式公示</p>'
    parts = [
        "<!DOCTYPE html>",
        '<html lang="zh-CN">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta http-equiv="Content-Security-Policy" '
        "content=\"default-src 'none'; style-src 'unsafe-inline'\">",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{e(title)}</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
        '<main class="sheet">',
        f"<h1>{e(title)}</h1>",
        f'<p class="meta">主办单位：{e(campaign.organizer)}　发布日期：{e(date)}</p>',
        status_line,
        f'<p class="lead">经单位推荐、资格审核、公众投票和专家评审，并按公布的计分办法综合评定，'
        f"{e(stem)}评选结果已经产生，现将获奖人员名单予以公示。</p>",
        _components_line(version),
    ]
    for category in campaign.categories:
        rows = [w for w in winners if w.category_code == category.code]
        if not rows:
            continue
        parts.append("<section>")
        parts.append(f"<h2>{e(category.name)}（{len(rows)}名）</h2>")
        for tier_name, tier_rows in _by_tier(category, rows):
            if tier_name is not None:
                parts.append(f'<h3 class="tier">{e(tier_name)}（{len(tier_rows)}名）</h3>')
            parts.append(
                "<table><thead><tr><th>排名</th><th>编号</th><th>姓名</th><th>单位</th>"
                "<th>职称</th></tr></thead><tbody>"
            )
            for w in tier_rows:
                parts.append(
                    f'<tr><td class="num">{w.rank}</td><td class="num">{e(w.number)}</td>'
                    f"<td>{e(w.name)}</td><td>{e(w.unit)}</td>"
                    f"<td>{e(titles.get(w.nomination_id) or '')}</td></tr>"
                )
            parts.append("</tbody></table>")
        parts.append("</section>")
    parts += [
        '<section class="notice">',
        "<h2>公示期与异议受理</h2>",
        f"<p>{e(window)}</p>",
        "<p>公示期内，任何单位或个人对公示名单有异议的，可通过本次评选活动页面的“提出异议”"
        "功能实名提交书面意见，写明异议对象的编号、具体事实和依据，并留下联系人姓名和联系电话。"
        "匿名、无具体事实或超出公示期提出的异议不予受理。</p>",
        f"<p>异议受理单位：{e(campaign.organizer)}。受理后将调查核实并答复，"
        "答复情况在活动页面公开（不公开异议人的联系方式）。</p>",
        "</section>",
        '<footer class="fine">',
        f"结果版本：第 {version.version} 版。投票账本链头（SHA-256）："
        f"<code>{e(version.ledger_head or '—')}</code>；"
        f"账本收录选票 {int(version.ledger_votes or 0)} 张。"
        "链头可与活动页面公布的值核对，用以确认计票所依据的选票记录未被改动。",
        "</footer>",
        "</main>",
        "</body>",
        "</html>",
    ]
    path.write_text("\n".join(part for part in parts if part) + "\n", encoding="utf-8")
    return path
