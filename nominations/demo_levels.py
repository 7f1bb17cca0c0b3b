"""The demo's fourth campaign: recommendation level by level (逐级推荐, nominations.levels).

``jiangnan-<year>`` runs the chain institution → county (青山县卫生健康局) → city (江南市卫生健康
委员会) → committee over the demo's unit tree. It is in the reviewing phase (nominations closed at
today's local midnight) with each level's list still open, and its nominations stand at every
stage: waiting at the county desk, passed up by the county and waiting at the city, one the city
returned to the county (退回修改), one the county rejected (不予推荐), and a few that reached the
committee. Every step goes through the real services as the real accounts: the clerks create and
submit, ``qs-bureau`` and ``jn-city`` decide through ``nominations.levels.decide``.
Everything here is invented."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from campaigns import categories as campaign_categories
from campaigns import services as campaign_services
from campaigns.models import Account, Campaign
from core.extensions import db
from nominations import level_config, levels, services
from nominations.demo_campaigns import Report, local_midnight
from nominations.demo_data import TIMEZONE

COUNTY_REVIEWER = "qs-bureau"  # demo_data.ACCOUNTS: the county bureau's reviewer
CITY_REVIEWER = "jn-city"

# Login names and roles only; no passwords live in this file.
ACCOUNTS: list[dict[str, str | None]] = [
    {
        "username": CITY_REVIEWER,
        "role": "reviewer",
        "unit_code": "JN-CITY",
        "display_name": "江南市卫生健康委员会审核员",
    },
]


def campaign(year: int) -> dict[str, str]:
    """The provincial campaign recommended level by level."""
    return {
        "slug": f"jiangnan-{year}",
        "title": f"{year}年江南省“最美基层医务工作者”逐级推荐评选",
        "organizer": "江南省卫生健康委员会",
        "description": (
            "本次评选自下而上、逐级进行：各医疗卫生机构向所在县（市、区）卫生健康局推荐，"
            "县级择优向设区市卫生健康委员会推荐，市级择优向省评选活动领导小组办公室推荐，"
            "由领导小组审定候选人。各级对推荐对象的材料真实性负责。"
        ),
        "timezone": TIMEZONE,
    }


CATEGORIES: list[dict[str, Any]] = [
    {"code": "doctor", "name": "最美基层医生", "prefix": "D", "award_count": 10, "max_per_unit": 2},
    {"code": "nurse", "name": "最美基层护士", "prefix": "N", "award_count": 10, "max_per_unit": 2},
]

# Places each bureau of the level may pass up, per category (lowest level first).
QUOTAS: dict[str, dict[str, int]] = {
    "county": {"doctor": 4, "nurse": 4},
    "city": {"doctor": 3, "nurse": 3},
}

COUNTY_OPINION = "经县卫生健康局审核，材料真实完整，同意推荐上报。"
CITY_OPINION = "经市卫生健康委员会审核，同意推荐至省评选办。"
RETURN_REASON = (
    "事迹材料中“年门诊量1.2万人次”“随访高血压患者900余人”两项数据未注明统计口径和来源，"
    "请县卫生健康局核实并补充说明后再报。"
)
REJECT_REASON = (
    "经核查，该同志在基层医疗卫生机构连续工作不满5年，不符合本次评选通知第二条规定的推荐条件，"
    "不予推荐。"
)

# Where each nomination stands when the demo starts (see _walk):
#   county    waits at the county desk (submitted, no decision yet)
#   city      passed up by the county, waits at the city
#   committee passed up by county and city, waits at the committee
#   returned  passed up by the county, returned by the city: waits at the county again
#   rejected  rejected at the county (不予推荐)
STAGES = ("county", "city", "committee", "returned", "rejected")


def _nominee(
    stage: str,
    category: str,
    unit: str,
    name: str,
    gender: str,
    title: str,
    dept: str,
    summary: str,
    deeds: str,
) -> dict[str, Any]:
    return {
        "stage": stage,
        "category": category,
        "unit_code": unit,
        "name": name,
        "gender": gender,
        "title": title,
        "department": dept,
        "summary": summary,
        "deeds": deeds,
        "unit_opinion": "同意推荐。经本单位党政联席会议研究，该同志事迹真实，群众认可度高。",
    }


NOMINEES: list[dict[str, Any]] = [
    _nominee(
        "committee",
        "doctor",
        "QS-RMYY",
        "邱建国",
        "male",
        "主任医师",
        "普外科",
        "县域微创外科的带头人，开展腹腔镜手术4000余台",
        "邱建国从医26年，带领县医院普外科在全市县级医院中率先开展腹腔镜胆囊、阑尾、疝修补等微创"
        "手术，累计4000余台，让县里的病人在家门口就能做上微创手术。他每周下乡带教一次，"
        "帮助三家乡镇卫生院建起了清创缝合室。",
    ),
    _nominee(
        "committee",
        "doctor",
        "QS-ZYY",
        "曾淑华",
        "female",
        "副主任中医师",
        "脾胃病科",
        "坚持中医药进村入户，为留守老人义诊十年",
        "曾淑华每月两次带着中药和针灸包到偏远村落义诊，十年来服务留守老人8000余人次。"
        "她整理的《山区常见脾胃病验方》在全县乡镇卫生院推广使用。",
    ),
    _nominee(
        "city",
        "doctor",
        "QS-FY",
        "苏敏",
        "female",
        "主治医师",
        "妇产科",
        "牵头建立全县高危孕产妇转诊绿色通道",
        "苏敏牵头建立全县高危孕产妇筛查、转诊和随访的绿色通道，近三年全县孕产妇死亡零发生。"
        "她常年深夜出诊，手机24小时开机，被乡亲们称为“夜里也能找到的医生”。",
    ),
    _nominee(
        "returned",
        "doctor",
        "QS-BS",
        "魏国庆",
        "male",
        "全科主治医师",
        "白沙镇卫生院全科门诊",
        "一个人撑起镇卫生院的全科门诊和家庭医生签约服务",
        "魏国庆是白沙镇卫生院的全科医生，年门诊量1.2万人次，随访高血压患者900余人。"
        "他组建的家庭医生团队为全镇65岁以上老人全部签约，每季度上门随访一次。",
    ),
    _nominee(
        "county",
        "doctor",
        "QS-SM",
        "孔德胜",
        "male",
        "执业医师",
        "石门乡卫生院",
        "山区乡镇卫生院的“多面手”，内外妇儿样样都能看",
        "孔德胜在石门乡卫生院工作17年，是院里唯一能做清创缝合和小儿推拿的医生。"
        "大雪封山的冬天，他曾背着药箱步行4小时为一名高烧的孩子出诊。",
    ),
    _nominee(
        "rejected",
        "doctor",
        "QS-DP",
        "汪志远",
        "male",
        "执业医师",
        "大坪乡卫生院",
        "来到大坪乡卫生院后开设了全乡第一个慢病管理门诊",
        "汪志远三年前从市里的医院调到大坪乡卫生院，开设了全乡第一个慢病管理门诊，"
        "建立慢病档案1300余份，并带动卫生院开展了远程心电诊断。",
    ),
    _nominee(
        "committee",
        "nurse",
        "QS-LX",
        "谢春燕",
        "female",
        "主管护师",
        "柳溪镇卫生院",
        "把伤口造口护理门诊开到了乡镇",
        "谢春燕取得伤口造口专科护士资格后回到柳溪镇，开设全县第一个乡镇伤口造口护理门诊，"
        "五年来为糖尿病足、压疮患者换药1.5万余次，让病人不用再往返县城。",
    ),
    _nominee(
        "city",
        "nurse",
        "QS-CDC",
        "龚丽萍",
        "female",
        "主管护师",
        "免疫规划科",
        "二十年零差错完成儿童预防接种",
        "龚丽萍在县疾控中心从事免疫规划工作20年，完成儿童预防接种30余万针次零差错，"
        "并为全县乡镇接种门诊培训接种人员200余人次。",
    ),
    _nominee(
        "city",
        "nurse",
        "QS-YT",
        "范小琴",
        "female",
        "护师",
        "云台乡卫生院",
        "高山乡镇的“背篓护士”，十年入户随访行程上万公里",
        "范小琴是云台乡卫生院的护士，十年来背着装满药品和血压计的背篓入户随访，"
        "累计行程上万公里，为全乡300多位失能老人提供上门护理。",
    ),
    _nominee(
        "county",
        "nurse",
        "QS-HK",
        "陶玉兰",
        "female",
        "主管护师",
        "横坑镇卫生院",
        "组建镇里第一支护理志愿服务队",
        "陶玉兰组建了横坑镇第一支护理志愿服务队，每月到敬老院和留守儿童之家开展健康服务，"
        "三年来服务群众5000余人次。",
    ),
    _nominee(
        "county",
        "nurse",
        "QS-QY",
        "钱慧",
        "female",
        "护师",
        "清源镇卫生院",
        "在镇卫生院推广中医护理适宜技术",
        "钱慧把艾灸、耳穴压豆等中医护理适宜技术带到清源镇卫生院，"
        "开展中医护理服务6000余人次，患者满意度始终排在全院前列。",
    ),
]


def seed_campaign(accounts: dict[str, Account], now: datetime, report: Report) -> Campaign:
    """Create the campaign, its chain and its nominations, and walk each to its stage."""
    year = now.astimezone(ZoneInfo(TIMEZONE)).year
    made = campaign_services.create_campaign(
        {
            **campaign(year),
            "nomination_start": local_midnight(now, 20),
            "nomination_end": now + timedelta(days=1),
            "voting_start": local_midnight(now, -20),
            "voting_end": local_midnight(now, -34),
            "rules": {"votes_per_day": 5, "votes_per_nominee_per_day": 1, "hide_counts": False},
            "weights": {"public": 30, "jury": 70, "organizer": 0},
            "require_recommendation": True,
        }
    )
    for category in CATEGORIES:
        campaign_categories.add_category(made, dict(category))
    deadlines = {"county": local_midnight(now, -5), "city": local_midnight(now, -12)}
    level_config.configure(
        made,
        [
            {"unit_level": name, "deadline": deadlines[name], "quotas": dict(quotas)}
            for name, quotas in QUOTAS.items()
        ],
    )
    campaign_services.change_phase(made, "nominating", None)
    clerks = {a.unit.code: a for a in accounts.values() if a.role == "unit" and a.unit}
    submitted = []
    for spec in NOMINEES:
        clerk = clerks[spec["unit_code"]]
        fields = {k: v for k, v in spec.items() if k not in ("stage", "unit_code")}
        nomination = services.create(clerk, made, fields)
        services.submit(clerk, nomination)  # to the county desk, the first level on its way
        submitted.append((spec["stage"], nomination))
    # Nominations closed at today's local midnight; the bureaus work through their lists.
    campaign_services.update_campaign(made, {"nomination_end": local_midnight(now, 0)})
    campaign_services.change_phase(made, "reviewing", None)
    _walk(accounts[COUNTY_REVIEWER], accounts[CITY_REVIEWER], submitted)
    db.session.commit()
    report.campaigns[made.slug] = "reviewing"
    return made


def _walk(county: Account, city: Account, submitted: list[tuple[str, Any]]) -> None:
    """The county decides first, then the city, each through levels.decide as its reviewer."""
    for stage, nomination in submitted:
        if stage in ("city", "committee", "returned"):
            levels.decide(county, nomination, "pass", COUNTY_OPINION)
        elif stage == "rejected":
            levels.decide(county, nomination, "reject", REJECT_REASON)
    for stage, nomination in submitted:
        if stage == "committee":
            levels.decide(city, nomination, "pass", CITY_OPINION)
        elif stage == "returned":
            levels.decide(city, nomination, "return", RETURN_REASON)
