"""The RFC 6962 Merkle tree (RFC 9162 section 2.1) the checkpoints sign: leaves, the tree hash in
O(log n) memory, audit paths and their verification. Pure: no storage."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Sequence

import rfc8785

# RFC 6962: the hash of an empty tree is the hash of the empty string.
EMPTY_ROOT = hashlib.sha256(b"").hexdigest()


# Printable ASCII other than '"' and '\\': JSON strings of these need no escaping.
_PLAIN = re.compile(r"[ !#-\[\]-~]*")


HeadTuple = tuple[str, int, str]


def leaf_bytes(case_id: str, seq: int, hash_: str) -> bytes:
    """A tree leaf: the RFC 8785 JSON of ``{"case_id", "hash", "seq"}``."""
    if _PLAIN.fullmatch(case_id) and _PLAIN.fullmatch(hash_) and 0 <= seq < 2**53:
        # The same bytes rfc8785 gives for these values, much faster: nothing in
        # them needs escaping and a safe integer prints as its decimal digits.
        return f'{{"case_id":"{case_id}","hash":"{hash_}","seq":{seq}}}'.encode("ascii")
    return rfc8785.dumps({"case_id": case_id, "hash": hash_, "seq": seq})


def merchant_leaf_bytes(merchant_id: str, seq: int, hash_: str) -> bytes:
    """A leaf of the merchant logs' tree: the RFC 8785 JSON of ``{"hash", "merchant_id", "seq"}``."""
    if _PLAIN.fullmatch(merchant_id) and _PLAIN.fullmatch(hash_) and 0 <= seq < 2**53:
        return f'{{"hash":"{hash_}","merchant_id":"{merchant_id}","seq":{seq}}}'.encode("ascii")
    return rfc8785.dumps({"hash": hash_, "merchant_id": merchant_id, "seq": seq})


def leaf_hash(leaf: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


class MerkleAccumulator:
    """The RFC 6962 tree hash of a stream of leaf hashes in O(log n) memory.

    It keeps the perfect subtrees of the leaves seen so far (sizes are the binary
    digits of n, largest first); folding them right to left gives exactly the
    RFC's split at the largest power of two below n.
    """

    def __init__(self) -> None:
        self._stack: list[tuple[int, bytes]] = []
        self.size = 0

    def add(self, leaf_digest: bytes) -> None:
        size, digest = 1, leaf_digest
        while self._stack and self._stack[-1][0] == size:
            digest = node_hash(self._stack.pop()[1], digest)
            size *= 2
        self._stack.append((size, digest))
        self.size += 1

    def root(self) -> bytes:
        if not self._stack:
            return bytes.fromhex(EMPTY_ROOT)
        digest = self._stack[-1][1]
        for _size, left in reversed(self._stack[:-1]):
            digest = node_hash(left, digest)
        return digest


def merkle_root(leaf_digests: Iterable[bytes]) -> bytes:
    tree = MerkleAccumulator()
    for digest in leaf_digests:
        tree.add(digest)
    return tree.root()


def _largest_power_of_two_below(n: int) -> int:
    return 1 << ((n - 1).bit_length() - 1)


def path_ranges(index: int, tree_size: int) -> list[tuple[int, int]]:
    """The leaf ranges [lo, hi) whose subtree hashes form the audit path of ``index``,
    from the leaf upwards (RFC 6962 section 2.1.1, PATH(m, D[n]))."""
    if not 0 <= index < tree_size:
        raise ValueError(f"leaf {index} is not in a tree of {tree_size}")
    ranges: list[tuple[int, int]] = []
    lo, hi = 0, tree_size
    while hi - lo > 1:
        k = _largest_power_of_two_below(hi - lo)
        if index < lo + k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo = lo + k
    ranges.reverse()  # built from the root down; a path is read from the leaf up
    return ranges


def audit_path(leaf_digests: Iterable[bytes], index: int, tree_size: int) -> tuple[list[bytes], bytes]:
    """The audit path of leaf ``index`` and the tree's root, from one pass over the leaves."""
    ranges = path_ranges(index, tree_size)
    by_start = sorted(range(len(ranges)), key=lambda i: ranges[i][0])
    trees = [MerkleAccumulator() for _ in ranges]
    whole = MerkleAccumulator()
    cursor = 0
    for position, digest in enumerate(leaf_digests):
        whole.add(digest)
        while cursor < len(by_start) and ranges[by_start[cursor]][1] <= position:
            cursor += 1
        if cursor < len(by_start) and ranges[by_start[cursor]][0] <= position:
            trees[by_start[cursor]].add(digest)
    if whole.size != tree_size:
        raise ValueError(f"the tree has {whole.size} leaves, the checkpoint says {tree_size}")
    return [t.root() for t in trees], whole.root()


def verify_inclusion(
    *, leaf: bytes, index: int, tree_size: int, path: Sequence[str | bytes], root: str | bytes
) -> bool:
    """RFC 9162 section 2.1.3.2: does ``path`` prove ``leaf`` is leaf ``index`` under ``root``?"""
    if not 0 <= index < tree_size:
        return False
    expected = bytes.fromhex(root) if isinstance(root, str) else root
    fn, sn = index, tree_size - 1
    digest = leaf_hash(leaf)
    for item in path:
        sibling = bytes.fromhex(item) if isinstance(item, str) else item
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            digest = node_hash(sibling, digest)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            digest = node_hash(digest, sibling)
        fn >>= 1
        sn >>= 1
    return sn == 0 and digest == expected


def delta_digest(heads: Iterable[HeadTuple], leaf: Callable[[str, int, str], bytes] = leaf_bytes) -> tuple[int, str]:
    """How many heads changed in a checkpoint and sha256 over their leaf hashes, in order."""
    digest = hashlib.sha256()
    count = 0
    for head in heads:
        digest.update(leaf_hash(leaf(*head)))
        count += 1
    return count, digest.hexdigest()


EMPTY_DELTA = delta_digest(())
