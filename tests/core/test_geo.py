"""Offline region and carrier lookup (core/geo.py) against the real ip2region data."""

from __future__ import annotations

import time

import pytest

from core import geo


def test_alibaba_cloud_address_is_a_datacenter_in_hangzhou() -> None:
    region = geo.lookup("47.96.0.1")
    assert region == geo.Region("中国", "浙江省", "杭州市", "阿里云", datacenter=True)
    assert not region.foreign
    assert geo.is_proxy_like("47.96.0.1") == (True, "datacenter")
    assert region.label() == "浙江省杭州市 阿里云"


def test_carrier_addresses_name_the_carrier_and_are_not_proxies() -> None:
    mobile = geo.lookup("111.0.0.1")
    assert mobile is not None
    assert (mobile.province, mobile.city, mobile.isp) == ("浙江省", "杭州市", "中国移动")
    assert not mobile.datacenter and not mobile.foreign
    assert geo.is_proxy_like("111.0.0.1") == (False, None)
    telecom = geo.lookup("202.96.128.86")
    assert telecom is not None and (telecom.province, telecom.isp) == ("广东省", "中国电信")
    shanghai = geo.lookup("120.204.1.1")
    assert shanghai is not None and (shanghai.province, shanghai.city) == ("上海", "上海市")


def test_foreign_and_foreign_cloud_addresses_are_proxy_like() -> None:
    amazon = geo.lookup("52.1.1.1")
    assert amazon is not None and amazon.country == "美国" and amazon.isp == "亚马逊"
    assert amazon.datacenter and amazon.foreign
    assert geo.is_proxy_like("52.1.1.1") == (True, "datacenter")
    google_dns = geo.lookup("8.8.8.8")
    assert google_dns is not None and google_dns.foreign and not google_dns.datacenter
    assert geo.is_proxy_like("8.8.8.8") == (True, "foreign")


@pytest.mark.parametrize(
    "ip",
    [
        "10.1.2.3",
        "172.16.0.9",
        "192.168.1.1",
        "127.0.0.1",
        "100.64.1.1",  # carrier NAT's shared space
        "169.254.1.1",
        "0.0.0.0",  # noqa: S104 (an address to look up, not to bind)
        "224.0.0.1",
        "255.255.255.255",
        "2408:8000::1",  # IPv6 (a China Unicom prefix): the data is IPv4 only
        "::1",
        "unknown",
        "1.2.3",
        "",
        "47.96.0.1 ",
    ],
)
def test_private_reserved_ipv6_and_garbage_are_unknown(ip: str) -> None:
    assert geo.lookup(ip) is None
    assert geo.is_proxy_like(ip) == (False, None)


def test_describe_for_the_committee() -> None:
    assert geo.describe("120.204.1.1") == "上海市 中国移动"  # not 上海上海市
    assert geo.describe("52.1.1.1") == "美国 亚马逊"
    assert geo.describe("10.0.0.1") is None and geo.describe(None) is None


def test_ipv4_mapped_into_ipv6_is_the_ipv4_address() -> None:
    assert geo.lookup("::ffff:47.96.0.1") == geo.lookup("47.96.0.1")


def test_region_names_the_data_knows() -> None:
    known = geo.known_regions()
    assert "杭州市" in known["浙江省"] and "北京" in known and "广西" in known
    assert geo.canonical_region("浙江省") == "浙江省"
    assert geo.canonical_region("浙江省杭州市") == "浙江省杭州市"
    assert geo.canonical_region(" 杭州市 ") == "浙江省杭州市"  # one province has it
    assert geo.canonical_region("北京市") == "北京"
    assert geo.canonical_region("广西壮族自治区") == "广西"
    assert geo.canonical_region("广西壮族自治区南宁市") == "广西南宁市"
    for unknown in ("火星省", "杭州", "浙江杭州", "California", "浙江省南京市"):
        assert geo.canonical_region(unknown) is None, unknown


def test_region_allowed() -> None:
    zhejiang = frozenset({"浙江省"})
    hangzhou = frozenset({"浙江省杭州市"})
    assert geo.region_allowed(geo.lookup("111.0.0.1"), zhejiang)
    assert geo.region_allowed(geo.lookup("111.0.0.1"), hangzhou)
    assert not geo.region_allowed(geo.lookup("120.204.1.1"), zhejiang)  # 上海
    assert not geo.region_allowed(geo.lookup("8.8.8.8"), zhejiang)  # abroad
    assert geo.region_allowed(None, zhejiang)  # unknown passes
    ningbo = geo.Region("中国", "浙江省", "宁波市", "中国电信", datacenter=False)
    assert geo.region_allowed(ningbo, zhejiang) and not geo.region_allowed(ningbo, hangzhou)
    no_city = geo.Region("中国", "浙江省", "", "中国电信", datacenter=False)
    assert geo.region_allowed(no_city, hangzhou)  # the province is right, the city unknown
    no_province = geo.Region("中国", "", "", "中国电信", datacenter=False)
    assert geo.region_allowed(no_province, hangzhou)


def test_a_lookup_takes_microseconds() -> None:
    geo.lookup("1.1.1.1")  # loads the data
    addresses = [
        f"{a}.{b}.7.9" for a in (1, 36, 47, 111, 120, 183, 202, 223) for b in range(0, 250, 5)
    ]
    started = time.perf_counter()
    for _ in range(5):
        for ip in addresses:
            geo.lookup(ip)
    per_lookup = (time.perf_counter() - started) / (5 * len(addresses))
    assert per_lookup < 100e-6, (
        per_lookup
    )  # generous for a shared machine; bench.geo_lookup measures
