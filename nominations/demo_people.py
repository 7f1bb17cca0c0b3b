"""Demo content beyond the voting campaign: the judges, the nurses' campaign in 公示 and the
village doctors' campaign open for nominations. Everything here is invented."""

from __future__ import annotations

from typing import Any

from nominations.demo_data import TIMEZONE

# Login names and roles only; no passwords live in this file.
JUDGES: list[dict[str, str | None]] = [
    {"username": "judge-wang", "role": "judge", "unit_code": None, "display_name": "王评委"},
    {"username": "judge-li", "role": "judge", "unit_code": None, "display_name": "李评委"},
    {"username": "judge-zhao", "role": "judge", "unit_code": None, "display_name": "赵评委"},
]

CRITERIA: list[dict[str, Any]] = [
    {"code": "deeds", "name": "先进事迹", "max_points": 40},
    {"code": "skill", "name": "业务水平", "max_points": 30},
    {"code": "ethics", "name": "医德医风", "max_points": 30},
]


def nurses_campaign(year: int) -> dict[str, str]:
    """The finished campaign, now in 公示."""
    return {
        "slug": f"qingshan-nurses-{year}",
        "title": f"{year}年青山县“最美护士”专项评选",
        "organizer": "青山县卫生健康局",
        "description": (
            "为纪念“5·12”国际护士节，青山县卫生健康局开展“最美护士”专项评选，"
            "候选人经单位推荐、县卫生健康局审核、公众投票和评委评审产生，评选结果现向社会公示。"
            "对公示结果有异议的，可在公示期内实名提出。"
        ),
        "timezone": TIMEZONE,
    }


NURSE_CATEGORY: dict[str, Any] = {
    "code": "nurse",
    "name": "最美护士",
    "prefix": "H",
    "award_count": 3,
    "max_per_unit": 3,
}


def _nurse(
    unit: str, name: str, gender: str, title: str, dept: str, summary: str
) -> dict[str, Any]:
    return {
        "category": "nurse",
        "unit_code": unit,
        "name": name,
        "gender": gender,
        "title": title,
        "department": dept,
        "summary": summary,
        "deeds": (
            f"{name}同志长期工作在{dept}护理一线，{summary}。她（他）把每一位患者当作亲人，"
            "耐心细致地做好护理和健康宣教，多次收到患者和家属送来的锦旗和感谢信，"
            "在单位年度考核中连续被评为优秀。"
        ),
        "unit_opinion": "同意推荐。该同志工作认真负责，群众评价好。",
    }


NURSES: list[dict[str, Any]] = [
    _nurse(
        "QS-RMYY",
        "何晓燕",
        "female",
        "主管护师",
        "重症医学科",
        "守护重症病人14年，带教新护士60余名",
    ),
    _nurse(
        "QS-RMYY", "沈家豪", "male", "护师", "急诊科", "急诊一线男护士，参与抢救危重患者3000余人次"
    ),
    _nurse(
        "QS-ZYY",
        "顾雅琴",
        "female",
        "副主任护师",
        "针灸推拿科",
        "推广中医护理技术12项，惠及患者上万人",
    ),
    _nurse(
        "QS-FY", "林小梅", "female", "主管护师", "产科", "接生护理新生儿5000余名，被称为“妈妈护士”"
    ),
    _nurse(
        "QS-BS", "蒋春兰", "female", "护师", "白沙镇卫生院", "独自承担全镇慢病随访，建档2600余份"
    ),
    _nurse(
        "QS-SM", "吴冬青", "female", "护士", "石门乡卫生院", "山区巡诊护理十年，走坏了十几双胶鞋"
    ),
    _nurse(
        "QS-LX", "许静", "female", "主管护师", "柳溪镇卫生院", "牵头建设镇卫生院伤口造口护理门诊"
    ),
    _nurse(
        "QS-CDC", "郑丽", "female", "主管护师", "免疫规划科", "完成儿童预防接种20余万针次零差错"
    ),
]


def village_campaign(year: int) -> dict[str, str]:
    """The campaign now open for nominations."""
    return {
        "slug": f"qingshan-village-{year}",
        "title": f"{year}年青山县“最美乡村医生”推荐评选",
        "organizer": "青山县卫生健康局",
        "description": (
            "现面向全县各乡镇卫生院、村卫生室征集“最美乡村医生”候选人。"
            "各单位可在推荐期内登录推荐系统填报候选人材料，经县卫生健康局审核后向社会公示并开放投票。"
        ),
        "timezone": TIMEZONE,
    }


VILLAGE_CATEGORY: dict[str, Any] = {
    "code": "village",
    "name": "最美乡村医生",
    "prefix": "V",
    "award_count": 5,
    "max_per_unit": 2,
}

# Already submitted when the demo starts: the reviewer has them waiting.
VILLAGE_NOMINEES: list[dict[str, Any]] = [
    {
        "category": "village",
        "unit_code": "QS-YT",
        "name": "罗长根",
        "gender": "male",
        "title": "乡村医生",
        "department": "云台乡上坪村卫生室",
        "summary": "守在海拔900米的上坪村31年，为全村老人建起健康档案",
        "deeds": (
            "罗长根是云台乡上坪村的乡村医生，31年来一直守在村卫生室。村里青壮年大多外出务工，"
            "留守老人多，他为全村186位老人逐一建立健康档案，每月上门测血压、送药。"
            "遇到大雪封山，他背着药箱走山路给行动不便的老人送药，从没有耽误过一次。"
        ),
        "unit_opinion": "同意推荐。该同志扎根山村、服务热情，深受村民信赖。",
    },
    {
        "category": "village",
        "unit_code": "QS-HK",
        "name": "钟秀英",
        "gender": "female",
        "title": "乡村医生",
        "department": "横坑镇石桥村卫生室",
        "summary": "村里唯一的女村医，20年坚持为妇女儿童做健康服务",
        "deeds": (
            "钟秀英是横坑镇石桥村卫生室的乡村医生，也是全镇为数不多的女村医。20年来，"
            "她坚持为村里的孕产妇和儿童做健康随访，组织妇女参加“两癌”筛查，"
            "帮助外出务工家庭照看留守儿童的预防接种，村民都亲切地叫她“钟姐”。"
        ),
        "unit_opinion": "同意推荐。",
    },
]

# What the demo clerk can nominate at once (the portal's form, pre-filled nowhere: an example).
VILLAGE_EXAMPLE: dict[str, Any] = {
    "category": "village",
    "name": "黄德明",
    "gender": "male",
    "title": "乡村医生",
    "department": "白沙镇岭下村卫生室",
    "summary": "岭下村的“赤脚医生”，行医42年",
    "deeds": "黄德明从1984年起在岭下村行医，42年来风雨无阻为村民看病送药。",
    "unit_opinion": "同意推荐。",
}

# Objection filed and answered during the nurses' 公示.
OBJECTION: dict[str, str] = {
    "contact_name": "陈建华",
    "contact_phone": "13800000000",
    "text": "候选人的事迹材料中“建档2600余份”的数字是否属实？希望评选办核实。",
}
OBJECTION_ANSWER = (
    "经评选办公室会同白沙镇卫生院核实，该候选人负责的慢病随访档案截至去年底共2617份，"
    "材料属实，评选结果维持不变。感谢您对评选工作的监督。"
)
