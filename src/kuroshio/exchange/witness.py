"""Partners' audit heads: kept as their receipts bring them, checked one against the next, and
checked again on demand.

Every receipt a partner signs carries the head of its audit log (size, Merkle root) and the
consistency proof from the head it gave this node before. A head whose proof does not lead from
the last one kept shows a partner whose log was cut or rewritten in between; it is kept, marked
inconsistent, and the caller audits it. :func:`check_heads` walks every head kept for a partner
again with the partner's pinned key. Works inside the caller's transaction; talks to no one.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

import msgspec

from kuroshio.exchange.receipt import Receipt, open_receipt
from kuroshio.exchange.wire import LinkRefused, SignedReceipt
from kuroshio.merkle import consistent
from kuroshio.pki import Keys
from kuroshio.store.sql import micros
from kuroshio.store.transaction import Transaction


class HeadProblem(msgspec.Struct, frozen=True, kw_only=True):
    """Where a partner's signed heads stop making one growing log, and why."""

    size: int
    seq: int
    reason: Literal["bad_signature", "inconsistent", "not_the_receipts"]
    detail: str


class HeadsReport(msgspec.Struct, frozen=True, kw_only=True):
    """A partner's heads, checked: how many, the sizes they span, what does not hold."""

    partner: str
    heads: int
    first_size: int | None
    last_size: int | None
    problems: list[HeadProblem]

    @property
    def ok(self) -> bool:
        return not self.problems


def follows(receipt: Receipt, before: tuple[int, bytes] | None) -> bool:
    """Whether the head ``receipt`` carries extends the head ``before`` (None: the first)."""
    size, root = receipt.audit_size, receipt.audit_root
    if size is msgspec.UNSET or root is msgspec.UNSET:
        return before is None
    if before is None:
        return True
    old_size, old_root = before
    if (size, root) == (old_size, old_root):
        return True
    since = receipt.audit_since
    proof = receipt.audit_proof
    if since is msgspec.UNSET or since != old_size or proof is msgspec.UNSET:
        return False
    return consistent(old_size, size, old_root, root, proof)


def keep_head(
    tx: Transaction, partner: str, receipt: Receipt, signed: SignedReceipt, now: dt.datetime
) -> bool | None:
    """Keep the head a new receipt of ``partner`` carries; whether it extends the last one kept
    (None: the receipt carries no head)."""
    size, root = receipt.audit_size, receipt.audit_root
    if size is msgspec.UNSET or root is msgspec.UNSET:
        return None
    ok = follows(receipt, tx.audit.last_partner_head(partner))
    tx.audit.keep_partner_head(
        partner, (size, root, receipt.seq, signed.receipt, signed.signature, ok, micros(now))
    )
    return ok


def check_heads(tx: Transaction, partner: str, partner_key: Keys) -> HeadsReport:
    """Every head ``partner`` signed for this node, checked again: each receipt's signature with
    the pinned key, the head the one it carries, each extending the one before."""
    rows = tx.audit.partner_heads(partner)
    problems: list[HeadProblem] = []
    before: tuple[int, bytes] | None = None
    for size, root, seq, receipt_bytes, signature, _, _ in rows:
        try:
            receipt = open_receipt(
                SignedReceipt(receipt=receipt_bytes, signature=signature), partner_key
            )
        except LinkRefused as error:
            problems.append(
                HeadProblem(size=size, seq=seq, reason="bad_signature", detail=error.reason)
            )
            continue
        if (receipt.audit_size, receipt.audit_root) != (size, root):
            problems.append(
                HeadProblem(
                    size=size,
                    seq=seq,
                    reason="not_the_receipts",
                    detail="the head kept is not the one the receipt carries",
                )
            )
            continue
        if not follows(receipt, before):
            assert before is not None
            problems.append(
                HeadProblem(
                    size=size,
                    seq=seq,
                    reason="inconsistent",
                    detail=(
                        f"the head of {size} entries (receipt of batch {seq}) does not extend "
                        f"the head of {before[0]} signed before: {partner}'s log was cut or "
                        "rewritten in between"
                    ),
                )
            )
        before = (size, root)
    return HeadsReport(
        partner=partner,
        heads=len(rows),
        first_size=rows[0][0] if rows else None,
        last_size=rows[-1][0] if rows else None,
        problems=problems,
    )


__all__ = ["HeadProblem", "HeadsReport", "check_heads", "follows", "keep_head"]
