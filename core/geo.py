"""Offline IP address → region and carrier, from ip2region's data that the ``XdbSearchIP`` package
ships (IPv4 only, data of 2022; licence and limits in docs/voting.md, "Regions").

Nothing is downloaded: the ``.xdb`` file inside the installed package is read into memory once per
process on the first lookup (about 11 MB), and a lookup is two small binary reads in that buffer
(a few microseconds; ``python -m bench.geo_lookup``). IPv6 and private, loopback, shared (carrier
NAT) and reserved IPv4 addresses are unknown: ``lookup`` returns None for them, as for an address
the data does not place.

The data's record for an address is ``country|area|province|city|isp`` with ``0`` for unknown,
e.g. ``中国|0|浙江省|杭州市|阿里云``. Province names are the data's own: ``浙江省``, ``广西``,
``北京`` (with the city ``北京市``).
"""

from __future__ import annotations

import socket
import struct
import threading
from dataclasses import dataclass
from importlib import resources

DATA_PACKAGE = "XdbSearchIP"
DATA_FILE = "data/ip2region.xdb"
CHINA = "中国"

# xdb layout: a 256-byte header, a 256 × 256 vector index of (start, end) pointers into the segment
# index, then the region strings; a segment is (start ip, end ip, record length, record pointer).
_HEADER = 256
_VECTOR_COLS = 256
_VECTOR_SIZE = 8
_SEGMENT_SIZE = 14
_VECTOR = struct.Struct("<II")
_SEGMENT = struct.Struct("<IIHI")
_IPV4 = struct.Struct("!I")

# The three carriers as people name them (the data says 电信 / 移动 / 联通 / 铁通).
_CARRIERS = {"电信": "中国电信", "移动": "中国移动", "联通": "中国联通", "铁通": "中国铁通"}

# Networks of clouds, hosting, CDNs and internet companies' own servers: nobody's phone or home
# line. The data of 2022 names some of these (阿里云, 腾讯, 亚马逊, 微软, 谷歌 …); the others
# and the markers below cover names a newer data file may use.
DATACENTER_ISPS = frozenset(
    {
        "阿里云",
        "阿里巴巴",
        "腾讯",
        "腾讯云",
        "华为云",
        "百度",
        "百度云",
        "京东云",
        "金山云",
        "天翼云",
        "移动云",
        "联通云",
        "UCloud",
        "青云",
        "世纪互联",
        "互联优势",
        "网宿",
        "亚马逊",
        "微软",
        "微软云",
        "谷歌",
        "谷歌云",
        "甲骨文",
        "苹果",
        "脸书",
        "雅虎",
        "阿卡迈",
        "Fastly",
        "StackPath",
        "Cloudflare",
        "SoftLayer",
        "Equinix",
        "Hurricane-Electric",
        "科进",
        "DigitalOcean",
        "Linode",
        "Vultr",
        "Choopa",
        "OVH",
        "Hetzner",
        "Leaseweb",
    }
)
_DATACENTER_MARKERS = ("云", "IDC", "数据中心", "Cloud", "Hosting", "Server")


@dataclass(frozen=True, slots=True)
class Region:
    """Where the data places an address. Unknown parts are empty strings."""

    country: str
    province: str
    city: str
    isp: str  # the carrier's usual name (中国移动 …) or the data's network name
    datacenter: bool

    @property
    def foreign(self) -> bool:
        return self.country != CHINA

    def label(self) -> str:
        """For people: ``浙江省杭州市 中国移动``, ``美国 亚马逊``."""
        place = self.country
        if self.country == CHINA and self.province:
            # 上海 + 上海市 reads 上海市
            city = self.city
            place = city if city.startswith(self.province) else self.province + city
        return " ".join(part for part in (place or self.country, self.isp) if part)


def is_datacenter_isp(isp: str) -> bool:
    return isp in DATACENTER_ISPS or any(marker in isp for marker in _DATACENTER_MARKERS)


class _Data:
    """The xdb buffer and the records decoded so far (about 14,000 distinct in all)."""

    def __init__(self, buffer: bytes) -> None:
        self.buffer = buffer
        self.records: dict[int, Region | None] = {}

    def record(self, pointer: int, length: int) -> Region | None:
        region = self.records.get(pointer, _MISSING)
        if region is _MISSING:
            region = _parse(self.buffer[pointer : pointer + length].decode("utf-8"))
            self.records[pointer] = region
        return region  # type: ignore[return-value]


_MISSING = object()
_data: _Data | None = None
_lock = threading.Lock()
_known: dict[str, frozenset[str]] | None = None


def _parse(text: str) -> Region | None:
    parts = [("" if part == "0" else part) for part in text.split("|")]
    if len(parts) != 5:
        return None
    country, _area, province, city, isp = parts
    if not country or city == "内网IP":
        return None
    return Region(
        country=country,
        province=province,
        city=city,
        isp=_CARRIERS.get(isp, isp) if country == CHINA else isp,
        datacenter=is_datacenter_isp(isp),
    )


def _load() -> _Data:
    global _data
    if _data is None:
        with _lock:
            if _data is None:
                source = resources.files(DATA_PACKAGE).joinpath(DATA_FILE)
                _data = _Data(source.read_bytes())
    return _data


def _public_ipv4(ip: str) -> int | None:
    """``ip`` as a 32-bit number when it is a public IPv4 address, else None."""
    if ip.startswith("::ffff:"):
        ip = ip[7:]
    try:
        (number,) = _IPV4.unpack(socket.inet_pton(socket.AF_INET, ip))
    except (OSError, ValueError, TypeError):
        return None
    first = number >> 24
    if (
        first in (0, 10, 127)
        or first >= 224  # multicast and reserved
        or number >> 20 == 0xAC1  # 172.16.0.0/12
        or number >> 16 in (0xC0A8, 0xA9FE)  # 192.168.0.0/16, 169.254.0.0/16
        or number >> 22 == 0x191  # 100.64.0.0/10, carrier NAT
        or number >> 8 in (0xC00000, 0xC00002, 0xC63364, 0xCB0071)  # 192.0.0/24, documentation
        or number >> 17 == 0x6309  # 198.18.0.0/15, benchmarking
    ):
        return None
    return number


def lookup(ip: str) -> Region | None:
    """Where ``ip`` is, or None when unknown (IPv6, private or reserved, not in the data)."""
    number = _public_ipv4(ip)
    if number is None:
        return None
    data = _load()
    buffer = data.buffer
    offset = _HEADER + ((number >> 24) * _VECTOR_COLS + ((number >> 16) & 0xFF)) * _VECTOR_SIZE
    start, end = _VECTOR.unpack_from(buffer, offset)
    low, high = 0, (end - start) // _SEGMENT_SIZE
    while low <= high:
        middle = (low + high) >> 1
        first, last, length, pointer = _SEGMENT.unpack_from(buffer, start + middle * _SEGMENT_SIZE)
        if number < first:
            high = middle - 1
        elif number > last:
            low = middle + 1
        else:
            return data.record(pointer, length)
    return None


def describe(ip: str | None) -> str | None:
    """``浙江省杭州市 中国移动`` for a vote's address in the committee's views; None if unknown."""
    region = lookup(ip) if ip else None
    return region.label() if region is not None else None


def is_proxy_like(ip: str) -> tuple[bool, str | None]:
    """Whether ``ip`` looks like a proxy rather than a voter's own line, with the reason
    (``datacenter`` or ``foreign``); (False, None) when it does not or is unknown."""
    region = lookup(ip)
    if region is None:
        return False, None
    if region.datacenter:
        return True, "datacenter"
    if region.foreign:
        return True, "foreign"
    return False, None


def known_regions() -> dict[str, frozenset[str]]:
    """Every province of China the data names, with its cities (read once: about 0.3 s)."""
    global _known
    if _known is None:
        buffer = _load().buffer
        _version, _policy, _created, first, last = struct.unpack_from("<HHIII", buffer, 0)
        records = {
            (pointer, length)
            for _s, _e, length, pointer in _SEGMENT.iter_unpack(
                buffer[first : last + _SEGMENT_SIZE]
            )
        }
        places: dict[str, set[str]] = {}
        for pointer, length in records:
            region = _parse(buffer[pointer : pointer + length].decode("utf-8"))
            if region is None or region.country != CHINA or not region.province:
                continue
            cities = places.setdefault(region.province, set())
            if region.city:
                cities.add(region.city)
        _known = {province: frozenset(cities) for province, cities in places.items()}
    return _known


# Names people write for provinces the data names shortly.
_PROVINCE_ALIASES = {
    "北京市": "北京",
    "天津市": "天津",
    "上海市": "上海",
    "重庆市": "重庆",
    "内蒙古自治区": "内蒙古",
    "广西壮族自治区": "广西",
    "西藏自治区": "西藏",
    "宁夏回族自治区": "宁夏",
    "新疆维吾尔自治区": "新疆",
    "香港特别行政区": "香港",
    "澳门特别行政区": "澳门",
    "台湾": "台湾省",
}


def canonical_region(name: str) -> str | None:
    """A region a campaign may be restricted to, in the data's names: a province (``浙江省``) or a
    province and city (``浙江省杭州市``); a city alone (``杭州市``) when only one province has it.
    None when the data does not know the name."""
    name = "".join(name.split())
    known = known_regions()
    province = _PROVINCE_ALIASES.get(name, name)
    if province in known:
        return province
    found = [
        prefix + city
        for prefix, cities in known.items()
        for city in cities
        if name in (prefix + city, _alias_of(prefix) + city, city)
    ]
    return found[0] if len(set(found)) == 1 else None


def _alias_of(province: str) -> str:
    for alias, short in _PROVINCE_ALIASES.items():
        if short == province:
            return alias
    return province


def region_allowed(region: Region | None, allowed: frozenset[str]) -> bool:
    """Whether a voter at ``region`` may vote where only ``allowed`` (canonical names) may.
    Unknown (None, or no province) is allowed: the data cannot say it is outside. Known and
    outside China, or in another province or city, is not."""
    if region is None:
        return True
    if region.country != CHINA:
        return False
    if not region.province:
        return True
    if region.province in allowed:
        return True
    if not region.city:
        # The province is right but the data has no city: allowed if a city of it is.
        return any(name.startswith(region.province) for name in allowed)
    return region.province + region.city in allowed
