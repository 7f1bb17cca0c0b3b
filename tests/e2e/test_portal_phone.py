"""The unit portal on a phone (390×844, touch): the nominations list is a column of cards, no
page scrolls sideways, every tap target is at least 44 px high, form inputs are 16 px (iOS
zooms into smaller ones), and a clerk withdraws, creates and submits a nomination by touch."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from playwright.sync_api import expect

from tests.e2e.conftest import DESKTOP, PHONE, LiveServer
from tests.e2e.data import staff_login
from tests.factories import Org

DEEDS = (
    "扎根社区卫生服务中心十二年，签约管理慢病居民一千八百余人，坚持每周入户随访行动不便的老人。\n"
    "寒潮期间连续三十天坚守发热诊室，夜里也接听居民的求助电话。"
)

# Everything a thumb presses: buttons, fields, the history toggles, the header's links.
TAP_TARGETS = (
    ".staff-main .btn, .staff-main button, .staff-main select, .staff-main textarea, "
    ".staff-main input:not([type=hidden]), .staff-main summary, .crumbs a, "
    ".topbar a, .topbar button"
)

# Each visible element's box against the viewport, and the tap targets' heights.
MEASURE = """(selector) => {
  const width = document.documentElement.clientWidth;
  const shown = (el) => {
    const style = getComputedStyle(el);
    const box = el.getBoundingClientRect();
    return style.visibility !== 'hidden' && box.width > 0 && box.height > 0;
  };
  const name = (el) => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
    (el.getAttribute('data-testid') ? '[' + el.getAttribute('data-testid') + ']' : '') +
    ' ' + (el.textContent || '').trim().slice(0, 12);
  const wide = [...document.body.querySelectorAll('*')]
    .filter((el) => shown(el) && !el.closest('#zm-toast'))
    .filter((el) => {
      const box = el.getBoundingClientRect();
      return box.left < -1 || box.right > width + 1;
    })
    .map(name);
  const small = [...document.querySelectorAll(selector)]
    .filter((el) => shown(el) && el.getBoundingClientRect().height < 44)
    .map((el) => name(el) + ' ' + Math.round(el.getBoundingClientRect().height) + 'px');
  const fonts = [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
    .filter(shown)
    .filter((el) => parseFloat(getComputedStyle(el).fontSize) < 16)
    .map((el) => name(el) + ' ' + getComputedStyle(el).fontSize);
  return {scrollWidth: document.documentElement.scrollWidth, width, wide, small, fonts};
}"""


@pytest.fixture
def clerk_phone(playwright_browser: Any) -> Iterator[Any]:
    """A touch phone at 390×844 with a Chinese locale (the clerk's own browser, not WeChat)."""
    context = playwright_browser.new_context(
        viewport=PHONE, is_mobile=True, has_touch=True, locale="zh-CN"
    )
    context.route("https://**/*", lambda route: route.abort())
    context.set_default_timeout(20_000)
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    yield page
    context.close()
    assert problems == [], problems


def fits_phone(page: Any, *, portal: bool = True) -> None:
    """Nothing wider than the screen; on the portal's own pages every tap target ≥ 44 px high
    and every field at 16 px."""
    page.wait_for_load_state("networkidle")
    got = page.evaluate(MEASURE, TAP_TARGETS)
    where = page.url
    assert got["width"] == PHONE["width"], where
    assert got["scrollWidth"] <= PHONE["width"], (where, got["scrollWidth"])
    assert got["wide"] == [], (where, got["wide"])
    if portal:
        assert got["small"] == [], (where, got["small"])
        assert got["fonts"] == [], (where, got["fonts"])


def inside_viewport(page: Any, locator: Any) -> None:
    """The element is whole on screen once scrolled to: not cut off at either side."""
    locator.scroll_into_view_if_needed()
    expect(locator).to_be_in_viewport(ratio=1)
    box = locator.bounding_box()
    assert box is not None
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box
    assert box["height"] >= 44, box


def _campaign_with_one_of_each(org: Org) -> dict[str, int]:
    org.campaign("c1", max_per_unit=5)
    return {
        status: org.nomination(
            "c1",
            status=status,
            name=name,
            category="doctor" if i % 2 else "nurse",
            department="心血管内科（含冠心病监护病房）",
        )
        for i, (status, name) in enumerate(
            (
                ("draft", "李晓梅"),
                ("submitted", "王建国"),
                ("returned", "张秀英"),
                ("approved", "刘志强"),
            )
        )
    }


def test_the_list_is_cards_and_the_withdraw_button_works(
    org: Org, live: LiveServer, clerk_phone: Any, shoot: Any
) -> None:
    ids = _campaign_with_one_of_each(org)
    page = clerk_phone
    staff_login(page, live.url, "portal", "unit-h1", "/portal")
    fits_phone(page)

    # Cards: no header row; each nomination a box as wide as the list, its name, category,
    # status and actions stacked inside it.
    expect(page.locator("[data-testid=nominations-c1] thead")).to_be_hidden()
    listing = page.locator("[data-testid=nominations-c1]").bounding_box()
    assert listing is not None
    for status, nomination_id in ids.items():
        card = page.locator(f"[data-testid=nomination-{nomination_id}]")
        expect(card).to_have_css("display", "grid")
        box = card.bounding_box()
        assert box is not None and box["width"] >= listing["width"] - 1, (status, box)
        expect(card.locator(".nominee-name")).to_be_visible()
        expect(card.locator(".cell-category")).to_be_visible()
        expect(card.locator(f"[data-testid=status-{nomination_id}]")).to_be_visible()
        for button in card.locator("td.actions .btn").all():
            inside_viewport(page, button)
            button_box = button.bounding_box()
            # Full-width buttons: the card's width less its padding.
            assert button_box is not None and button_box["width"] >= box["width"] - 40
    approved = page.locator(f"[data-testid=nomination-{ids['approved']}]")
    expect(approved.locator(f"[data-testid=number-{ids['approved']}]")).to_be_visible()
    # With the header row gone, the number says what it is.
    label = approved.locator(".cell-number").evaluate(
        "(el) => getComputedStyle(el, '::before').content"
    )
    assert label == '"编号 "', label
    returned = page.locator(f"[data-testid=nomination-{ids['returned']}]")
    expect(returned.locator(f"[data-testid=comment-{ids['returned']}]")).to_contain_text("请补充")
    page.evaluate("window.scrollTo(0, 0)")
    shoot(page, "portal-cards-phone")

    # The withdraw button of a submitted nomination: whole on screen, tapped, confirmed.
    withdraw = page.locator(f"[data-testid=withdraw-{ids['submitted']}]")
    inside_viewport(page, withdraw)
    withdraw.tap()
    dialog = page.locator("#dialog .dialog")
    expect(dialog).to_be_visible()
    inside_viewport(page, page.locator("#dialog-ok"))
    inside_viewport(page, page.locator("#dialog-cancel"))
    fits_phone(page)
    shoot(page, "portal-withdraw-phone")
    page.locator("#dialog-comment").fill("候选人调离本单位")
    page.locator("#dialog-ok").tap()
    card = page.locator(f"[data-testid=nomination-{ids['submitted']}]")
    expect(card).to_have_attribute("data-status", "withdrawn")
    expect(page.locator("#flash")).to_contain_text("已撤回「王建国」")
    expect(page.locator(f"[data-testid=withdraw-{ids['submitted']}]")).to_have_count(0)
    assert org.status_of(ids["submitted"]) == "withdrawn"
    fits_phone(page)


def test_every_portal_page_fits_a_phone(
    org: Org, live: LiveServer, clerk_phone: Any, playwright_browser: Any, shoot: Any
) -> None:
    ids = _campaign_with_one_of_each(org)
    page = clerk_phone
    page.goto(f"{live.url}/portal/login")
    fits_phone(page, portal=False)
    staff_login(page, live.url, "portal", "unit-h1", "/portal")
    fits_phone(page)
    page.goto(f"{live.url}/portal/c/c1/new")
    fits_phone(page)
    for status, nomination_id in ids.items():
        page.goto(f"{live.url}/portal/nominations/{nomination_id}")
        expect(page.locator("#status-badge")).to_have_attribute("data-status", status)
        fits_phone(page)
        if status == "returned":
            expect(page.locator("#return-comment")).to_be_visible()
            shoot(page, "portal-returned-phone")
        withdraw = page.locator("#withdraw")
        if status in ("draft", "submitted", "returned"):
            inside_viewport(page, withdraw)
        else:
            expect(withdraw).to_have_count(0)
    page.goto(f"{live.url}/portal/nominations/{ids['submitted']}")
    expect(page.locator("#dossier")).to_be_visible()
    shoot(page, "portal-dossier-phone")
    # The account page every staff member shares (a console template, outside the portal's
    # styles): at least nothing on it is wider than the phone.
    page.goto(f"{live.url}/account/password")
    fits_phone(page, portal=False)

    # An administrator looking at a unit's portal: the unit picker fits too.
    admin = playwright_browser.new_context(
        viewport=PHONE, is_mobile=True, has_touch=True, locale="zh-CN"
    )
    admin.route("https://**/*", lambda route: route.abort())
    admin.set_default_timeout(20_000)
    admin_page = admin.new_page()
    # (An admin's login lands on the console unless sent somewhere else.)
    staff_login(admin_page, live.url, "portal", "admin", "/portal?unit=H2")
    expect(admin_page.locator("[data-testid=empty-c1]")).to_be_visible()
    fits_phone(admin_page)
    admin_page.locator("#unit-select").select_option("H1")
    admin_page.locator("#unit-picker-go").tap()
    expect(admin_page.locator(f"[data-testid=nomination-{ids['draft']}]")).to_be_visible()
    fits_phone(admin_page)
    admin.close()


def test_a_clerk_nominates_and_submits_on_a_phone(
    org: Org, live: LiveServer, clerk_phone: Any, shoot: Any, tmp_path: Path
) -> None:
    org.campaign("c1")
    page = clerk_phone
    staff_login(page, live.url, "portal", "unit-h1", "/portal")
    new = page.locator("[data-testid=new-nomination-c1]")
    inside_viewport(page, new)
    new.tap()
    expect(page).to_have_url(f"{live.url}/portal/c/c1/new")
    fits_phone(page)
    # One column: every field starts at the same left edge and spans the form.
    form = page.locator("#nomination-form").bounding_box()
    assert form is not None
    for name in ("category", "name", "gender", "title", "department", "summary", "deeds"):
        box = page.locator(f"#{name}").bounding_box()
        assert box is not None and box["width"] >= form["width"] - 40, (name, box)

    page.locator("#category").select_option("doctor")
    page.locator("#name").fill("陈静")
    page.locator("#gender").select_option("female")
    page.locator("#title").fill("主治医师")
    page.locator("#department").fill("全科")
    page.locator("#years_of_service").fill("12")
    page.locator("#summary").fill("十二年守护社区居民健康的家庭医生")
    # Left empty, the deeds are refused on the phone as on the desktop, next to the field.
    page.locator("#save").tap()
    expect(page.locator("#deeds-error")).to_be_visible()
    inside_viewport(page, page.locator("#deeds"))
    page.locator("#deeds").fill(DEEDS)
    page.locator("#unit_opinion").fill("同意推荐。")
    page.locator("#save").scroll_into_view_if_needed()
    shoot(page, "portal-form-phone")
    save = page.locator("#save")
    inside_viewport(page, save)
    save.tap()
    expect(page).to_have_url(re.compile(r"/portal/nominations/\d+$"))
    nomination_id = int(page.url.rsplit("/", 1)[1])
    expect(page.locator("#status-badge")).to_have_attribute("data-status", "draft")
    fits_phone(page)

    photo = tmp_path / "photo.jpg"
    buffer = io.BytesIO()
    Image.new("RGB", (600, 800), (60, 120, 180)).save(buffer, format="JPEG")
    photo.write_bytes(buffer.getvalue())
    inside_viewport(page, page.locator("#photo-input"))
    page.set_input_files("#photo-input", str(photo))
    expect(page.locator("#photo-current")).to_be_visible()
    fits_phone(page)

    submit = page.locator("#submit")
    inside_viewport(page, submit)
    submit.tap()
    inside_viewport(page, page.locator("#dialog-ok"))
    page.locator("#dialog-ok").tap()
    expect(page.locator("#status-badge")).to_have_attribute("data-status", "submitted")
    assert org.status_of(nomination_id) == "submitted"
    fits_phone(page)
    page.locator("#back").tap()
    expect(page.locator(f"[data-testid=nomination-{nomination_id}]")).to_have_attribute(
        "data-status", "submitted"
    )
    fits_phone(page)


def test_the_desktop_list_stays_a_table(org: Org, live: LiveServer, desktop: Any) -> None:
    """Above the phone breakpoint nothing changes: a header row and one table row a nomination."""
    ids = _campaign_with_one_of_each(org)
    assert DESKTOP["width"] > 640
    staff_login(desktop, live.url, "portal", "unit-h1", "/portal")
    expect(desktop.locator("[data-testid=nominations-c1] thead")).to_be_visible()
    for nomination_id in ids.values():
        row = desktop.locator(f"[data-testid=nomination-{nomination_id}]")
        expect(row).to_have_css("display", "table-row")
    first = desktop.locator(f"[data-testid=nomination-{ids['draft']}]").bounding_box()
    second = desktop.locator(f"[data-testid=nomination-{ids['submitted']}]").bounding_box()
    assert first is not None and second is not None
    # One line a nomination: the next row starts below, the cells sit side by side.
    assert second["y"] >= first["y"] + first["height"] - 1
    assert first["height"] < 80, first
