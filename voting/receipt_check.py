"""Vote receipts: the published algorithm, and a checker that needs nothing but it.

Standard library only, on purpose: this module is what docs/receipts.md describes, byte for
byte, and ``python -m voting.receipt_check --receipt FILE --published URL-or-FILE`` checks a
voter's receipt against the published leaves and recounts every nominee from them.

Encodings (all text is UTF-8; hashes are SHA-256 shown as 64 lower-case hex digits):

- leaf   = SHA256("zuimei-receipt-leaf-v1|" + slug + "|" + vote_id + "|" + nominee + "|" + secret)
- node   = SHA256(0x01 || bytes(left) || bytes(right))   (32 + 32 raw bytes after the 0x01)
- a nominee's tree: its leaves sorted ascending (as hex text), paired left to right level by
  level; an odd last node is carried up unchanged. One leaf: the root is the leaf.
- root   = SHA256("zuimei-receipt-root-v1|" + slug + "|" + chain_index + "|" + chain_head + "\\n"
  + for each nominee, sorted by number: number + "|" + count + "|" + nominee_root + "\\n")
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import urllib.request
from collections.abc import Iterable, Sequence
from typing import Any

FORMAT = "zuimei-receipts-v1"
RECEIPT_FORMAT = "zuimei-receipt-v1"
LEAF_PREFIX = "zuimei-receipt-leaf-v1"
ROOT_PREFIX = "zuimei-receipt-root-v1"
NODE_TAG = b"\x01"


def leaf_hash(slug: str, vote_id: str, nominee: str, secret: str) -> str:
    """The published leaf of one counted vote (the secret is in the voter's receipt only)."""
    text = "|".join([LEAF_PREFIX, slug, vote_id, nominee, secret])
    return hashlib.sha256(text.encode()).hexdigest()


def node_hash(left: str, right: str) -> str:
    """An inner node over two children (hex in, hex out)."""
    return hashlib.sha256(NODE_TAG + bytes.fromhex(left) + bytes.fromhex(right)).hexdigest()


def next_level(nodes: Sequence[str]) -> list[str]:
    """The level above ``nodes``: pairs hashed left to right, an odd last node carried up."""
    upper = [node_hash(nodes[i], nodes[i + 1]) for i in range(0, len(nodes) - 1, 2)]
    if len(nodes) % 2:
        upper.append(nodes[-1])
    return upper


def merkle_root(leaves: Sequence[str]) -> str:
    """The root over ``leaves`` (already sorted); a nominee always has at least one leaf."""
    if not leaves:
        raise ValueError("a tree needs at least one leaf")
    level = list(leaves)
    while len(level) > 1:
        level = next_level(level)
    return level[0]


def merkle_path(leaves: Sequence[str], index: int) -> list[dict[str, str]]:
    """The siblings from the leaf at ``index`` up to the root, each with the side it sits on
    (a level where the node is carried up has no sibling and no entry)."""
    path: list[dict[str, str]] = []
    level = list(leaves)
    while len(level) > 1:
        sibling = index ^ 1
        if sibling < len(level):
            side = "left" if sibling < index else "right"
            path.append({"side": side, "hash": level[sibling]})
        level = next_level(level)
        index //= 2
    return path


def fold_path(leaf: str, path: Iterable[dict[str, str]]) -> str:
    """The root a leaf and its path lead to."""
    node = leaf
    for step in path:
        if step["side"] == "left":
            node = node_hash(step["hash"], node)
        elif step["side"] == "right":
            node = node_hash(node, step["hash"])
        else:
            raise ValueError(f"path side must be left or right, not {step['side']!r}")
    return node


def campaign_root(
    slug: str, chain_index: int, chain_head: str, nominees: Iterable[tuple[str, int, str]]
) -> str:
    """The campaign root over (number, count, nominee root) and the ledger chain's head."""
    lines = [f"{ROOT_PREFIX}|{slug}|{chain_index}|{chain_head}\n"]
    lines += [f"{number}|{count}|{root}\n" for number, count, root in sorted(nominees)]
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def check_publication(published: dict[str, Any]) -> list[str]:
    """What is wrong with a publication (empty when every nominee's leaves are sorted, unique,
    give its count and its root, and the campaign root matches)."""
    problems: list[str] = []
    if published.get("format") != FORMAT:
        problems.append(f"format is not {FORMAT}")
    triples = []
    for entry in published.get("nominees", []):
        leaves = entry.get("leaves", [])
        number = entry.get("number")
        if leaves != sorted(set(leaves)):
            problems.append(f"{number}: leaves are not sorted and unique")
        if len(leaves) != entry.get("count"):
            problems.append(f"{number}: {len(leaves)} leaves but count {entry.get('count')}")
        root = merkle_root(leaves) if leaves else None
        if root != entry.get("root"):
            problems.append(f"{number}: root does not match its leaves")
        triples.append((number, len(leaves), root or ""))
    expected = campaign_root(
        published.get("campaign", ""),
        int(published.get("chain_index", 0)),
        published.get("chain_head", ""),
        triples,
    )
    if expected != published.get("root"):
        problems.append("campaign root does not match the nominees and the chain head")
    return problems


def check_receipt(receipt: dict[str, Any], published: dict[str, Any]) -> list[str]:
    """What is wrong with a receipt against a publication (empty when the vote is included)."""
    problems: list[str] = []
    if receipt.get("format") != RECEIPT_FORMAT:
        problems.append(f"receipt format is not {RECEIPT_FORMAT}")
    if receipt.get("campaign") != published.get("campaign"):
        return [*problems, "receipt and publication are for different campaigns"]
    leaf = leaf_hash(receipt["campaign"], receipt["vote_id"], receipt["nominee"], receipt["secret"])
    if leaf != receipt.get("leaf"):
        problems.append("the receipt's leaf is not the hash of its vote id, nominee and secret")
    entry = next(
        (e for e in published.get("nominees", []) if e.get("number") == receipt["nominee"]), None
    )
    if entry is None:
        return [*problems, f"nominee {receipt['nominee']} has no published leaves"]
    if fold_path(leaf, receipt.get("path", [])) != entry.get("root"):
        problems.append("the Merkle path does not lead to the nominee's published root")
    if leaf not in set(entry.get("leaves", [])):
        problems.append("the leaf is not among the nominee's published leaves")
    if receipt.get("root") not in (None, published.get("root")):
        problems.append("the receipt names another campaign root")
    return problems


def load_published(source: str) -> dict[str, Any]:
    """A publication from a file path or an http(s) URL."""
    if source.startswith(("http://", "https://")):
        with urllib.request.urlopen(source, timeout=120) as answer:  # noqa: S310 (http only)
            return json.load(answer)  # type: ignore[no-any-return]
    with open(source, encoding="utf-8") as handle:
        return json.load(handle)  # type: ignore[no-any-return]


def main(argv: Sequence[str] | None = None) -> int:
    """Check a publication (and a receipt in it): exit 0 when all holds, 1 otherwise."""
    parser = argparse.ArgumentParser(
        prog="python -m voting.receipt_check", description="Check a Zuimei vote receipt."
    )
    parser.add_argument("--receipt", help="the voter's receipt (JSON file)")
    parser.add_argument("--published", required=True, help="the publication: file or URL")
    args = parser.parse_args(argv)
    published = load_published(args.published)
    problems = check_publication(published)
    for entry in published.get("nominees", []):
        print(f"{entry.get('number')}\t{len(entry.get('leaves', []))}")
    if args.receipt:
        with open(args.receipt, encoding="utf-8") as handle:
            receipt = json.load(handle)
        problems += check_receipt(receipt, published)
    for problem in problems:
        print(f"FAIL: {problem}", file=sys.stderr)
    if problems:
        return 1
    total = sum(len(e.get("leaves", [])) for e in published.get("nominees", []))
    print(f"publication ok: {total} counted votes, root {published.get('root')}")
    if args.receipt:
        print(f"receipt ok: vote {receipt['vote_id']} for {receipt['nominee']} is included")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
