"""Release policy: signed agreements between parties, the release decision, reciprocity.

:func:`decide` is the one place where a node decides what leaves for a partner; the agreement
it applies comes from an :class:`AgreementBook`. Nothing here sends or audits; the one thing
kept is the reciprocity ledger (:mod:`kuroshio.policy.reciprocity`), in the node's store.
"""

from kuroshio.errors import AgreementError
from kuroshio.policy.agreement import (
    Agreement,
    AgreementSignature,
    Direction,
    EnforcedAgreement,
    MarkingChange,
    Match,
    ParsedAgreement,
    Reciprocity,
    Rule,
    SignatureCheck,
    Transforms,
    agreement_digest,
    check_agreement,
    check_signatures,
    diff_agreements,
    parse_agreement,
    read_agreement,
    sign_agreement,
    signed_bytes,
    verify_agreement,
    with_signature,
)
from kuroshio.policy.book import AGREEMENTS_DIR, AgreementBook, InstallProblem
from kuroshio.policy.decide import Decision, Released, Withheld, decide, preview
from kuroshio.policy.ledger import (
    LedgerDay,
    LedgerEntry,
    ReciprocityStatus,
    given_entry,
    ledger_days,
    received_entry,
    reciprocity_status,
)

__all__ = [
    "AGREEMENTS_DIR",
    "Agreement",
    "AgreementBook",
    "AgreementError",
    "AgreementSignature",
    "Decision",
    "Direction",
    "EnforcedAgreement",
    "InstallProblem",
    "LedgerDay",
    "LedgerEntry",
    "MarkingChange",
    "Match",
    "ParsedAgreement",
    "Reciprocity",
    "ReciprocityStatus",
    "Released",
    "Rule",
    "SignatureCheck",
    "Transforms",
    "Withheld",
    "agreement_digest",
    "check_agreement",
    "check_signatures",
    "decide",
    "diff_agreements",
    "given_entry",
    "ledger_days",
    "parse_agreement",
    "preview",
    "read_agreement",
    "received_entry",
    "reciprocity_status",
    "sign_agreement",
    "signed_bytes",
    "verify_agreement",
    "with_signature",
]
