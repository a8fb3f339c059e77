"""The node's picture followed for Cursor-on-Target: every stored observation version and, now
and then, the fused picture, turned into the events each output may send.

For each output the rule is applied item by item (:func:`kuroshio.export.release.output_refusal`,
default deny: a refused item is counted by reason and never encoded for it), then the
operator's filter. A received item carries whether its origin's signature checks out
(:func:`kuroshio.exchange.inbox.verify_received`, once per version). A fused sortie goes out
only when every report it rests on may; its marking is the most restrictive of theirs.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections import OrderedDict
from collections.abc import Sequence
from typing import Final

import msgspec

from kuroshio.exchange.inbox import verify_received
from kuroshio.exchange.proofs import ProofFinder
from kuroshio.export.config import CotOutput
from kuroshio.export.cot import CotEvent, CotMarking, callsign, caveat, circular_error, cot_type
from kuroshio.export.cot import observation_event as cot_of
from kuroshio.export.release import all_allowed, output_refusal
from kuroshio.export.symbols import standard_identity
from kuroshio.fusion import FusedItem, fuse
from kuroshio.fusion.gating import is_plot
from kuroshio.model import TLP_ORDER, Marking, Observation, latest_time, tlp_rank
from kuroshio.node import Node
from kuroshio.pki import Keys
from kuroshio.store import ObservationFilter
from kuroshio.store.backend import Reader
from kuroshio.store.transaction import Transaction
from kuroshio.tak.output import CotOutputRunner, Welcome

CHANGES_BATCH: Final = 2_000
POLL_S: Final = 1.0
"""Changes stored by another process are found by polling this often."""
MAX_SNAPSHOT: Final = 20_000
"""Items a newly connected client is sent at most (the latest of each track first)."""
MAX_FUSED_REPORTS: Final = 20_000
MAX_FUSED_PLOTS: Final = 2_000
VERIFIED_CACHE: Final = 100_000
logger = logging.getLogger("kuroshio.tak")
_observation = msgspec.json.Decoder(Observation)


class CotService:
    """Every ``[cot.NAME]`` output of a node, fed from its store."""

    def __init__(self, node: Node, outputs: dict[str, CotOutput] | None = None) -> None:
        self.node = node
        self.configs = dict(node.config.cot if outputs is None else outputs)
        self.friendly = frozenset({node.party, *node.partners})
        self.outputs = {
            name: CotOutputRunner(name, config, node.directory, self._welcome_for(name))
            for name, config in self.configs.items()
        }
        self._reader: Reader | None = None
        self._wake = asyncio.Event()
        self._verified: OrderedDict[tuple[str, int], str] = OrderedDict()
        self._keys: dict[str, Keys] | None = None

    @property
    def reader(self) -> Reader:
        if self._reader is None:
            self._reader = self.node.store.reader()
        return self._reader

    async def run(self) -> None:
        """Run the outputs and follow the store until cancelled."""
        loop = asyncio.get_running_loop()

        def stored() -> None:
            if not loop.is_closed():
                loop.call_soon_threadsafe(self._wake.set)

        self.node.add_listener(stored)
        try:
            cursor = await asyncio.to_thread(self.reader.change_head)
            async with asyncio.TaskGroup() as tasks:
                for runner in self.outputs.values():
                    tasks.create_task(runner.run())
                if any(config.fused for config in self.configs.values()):
                    tasks.create_task(self._fused_loop())
                tasks.create_task(self._follow(cursor))
        finally:
            self.node.remove_listener(stored)
            if self._reader is not None:
                self._reader.close()
                self._reader = None

    async def ready(self) -> dict[str, str]:
        """Wait until every output listens (or is pushing); where each is."""
        for runner in self.outputs.values():
            await runner.up.wait()
        return {name: runner.status.endpoint for name, runner in self.outputs.items()}

    # --- live changes --------------------------------------------------------------------------

    async def _follow(self, cursor: int) -> None:
        while True:
            self._wake.clear()
            rows = await asyncio.to_thread(self.reader.changes, cursor, CHANGES_BATCH)
            if rows:
                cursor = rows[-1][0]
                observations = [_observation.decode(body) for _, body in rows]
                await self.publish(observations)
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), POLL_S)

    async def publish(self, observations: Sequence[Observation]) -> None:
        """Send each output the events of ``observations`` it may and wants to carry."""
        active = [runner for runner in self.outputs.values() if runner.clients]
        if not active:
            return
        now = dt.datetime.now(dt.UTC)
        chosen = {runner.name: self._choose(runner, observations) for runner in active}
        await self._verify([item for items in chosen.values() for item in items])
        for runner in active:
            runner.deliver([self._event(item, runner, now) for item in chosen[runner.name]])

    def _choose(self, runner: CotOutputRunner, items: Sequence[Observation]) -> list[Observation]:
        config = runner.config
        rule, choice, own = config.rule, config.choice, self.node.party
        chosen = []
        for observation in items:
            if not choice.wants(observation):
                continue
            refusal = output_refusal(observation, rule, own)
            if refusal is not None:
                runner.refused[refusal] += 1
                continue
            chosen.append(observation)
        return chosen

    def _event(
        self, observation: Observation, runner: CotOutputRunner, now: dt.datetime
    ) -> CotEvent:
        return cot_of(
            observation,
            friendly=self.friendly,
            verification=self._verification(observation),
            now=now,
            stale_s=runner.config.stale_s,
        )

    def _verification(self, observation: Observation) -> str:
        """Whose signature ``observation`` checks against; received items are looked up in what
        :meth:`_verify` found."""
        if observation.provenance.partner is None:
            if observation.origin != self.node.party:
                return "unverified"
            return "imported" if observation.provenance.importer else "own"
        return self._verified.get(observation.key, "unverified")

    async def _verify(self, observations: Sequence[Observation]) -> None:
        """Check every received item not checked yet against the signatures this node holds,
        all in one read of the store (a dense feed brings hundreds a second)."""
        unchecked = list(
            {
                item.key: item
                for item in observations
                if item.provenance.partner is not None and item.key not in self._verified
            }.values()
        )
        if not unchecked:
            return
        if self._keys is None:
            self._keys = self.node.pinned_keys()
        keys = self._keys

        def check(tx: Transaction) -> list[str]:
            finder = ProofFinder(tx)
            return [verify_received(tx, keys, item, finder).status for item in unchecked]

        statuses = await asyncio.to_thread(self.reader.read, check)
        for item, status in zip(unchecked, statuses, strict=True):
            self._verified[item.key] = status
        while len(self._verified) > VERIFIED_CACHE:
            self._verified.popitem(last=False)

    # --- a new client ----------------------------------------------------------------------

    def _welcome_for(self, name: str) -> Welcome:
        async def welcome() -> list[CotEvent]:
            runner = self.outputs[name]
            now = dt.datetime.now(dt.UTC)
            recent = await asyncio.to_thread(self._recent, runner.config, now)
            chosen = self._choose(runner, recent)
            await self._verify(chosen)
            return [self._event(observation, runner, now) for observation in chosen]

        return welcome

    def _recent(self, config: CotOutput, now: dt.datetime) -> list[Observation]:
        """The latest observation of each track (or item) of the last ``history_s`` seconds."""
        if config.history_s == 0:
            return []
        selection = ObservationFilter(
            start=now - dt.timedelta(seconds=config.history_s),
            end=now + dt.timedelta(days=1),
            kinds=config.kinds,
            origins=config.origins,
            bbox=config.area,
        )
        latest: dict[str, Observation] = {}
        for number, observation in enumerate(self.reader.iter_query(selection)):
            if number >= MAX_SNAPSHOT:
                break
            uid = _uid(observation)
            known = latest.get(uid)
            if known is None or latest_time(known) <= latest_time(observation):
                latest[uid] = observation
        return sorted(latest.values(), key=latest_time)

    # --- fused sorties ---------------------------------------------------------------------

    async def _fused_loop(self) -> None:
        every = min(c.fused_every_s for c in self.configs.values() if c.fused)
        while True:
            await asyncio.sleep(every)
            wanted = [r for r in self.outputs.values() if r.config.fused and r.clients]
            if not wanted:
                continue
            window = max(r.config.history_s for r in wanted)
            try:
                items, reports = await asyncio.to_thread(self._fuse, window)
            except Exception as error:  # a fusion that fails must not stop the output
                logger.warning("cot: fusing the last %d s failed: %s", window, error)
                continue
            now = dt.datetime.now(dt.UTC)
            for runner in wanted:
                events = self.fused_events(runner, items, reports, now)
                runner.deliver(events)

    def _fuse(self, window_s: int) -> tuple[list[FusedItem], dict[tuple[str, int], Observation]]:
        now = dt.datetime.now(dt.UTC)
        selection = ObservationFilter(
            start=now - dt.timedelta(seconds=window_s),
            end=now + dt.timedelta(days=1),
            kinds=("air", "sea"),
        )
        reports = []
        for observation in self.reader.iter_query(selection):
            reports.append(observation)
            if len(reports) > MAX_FUSED_REPORTS:
                return [], {}
        if len({r.origin for r in reports}) < 2 or sum(map(is_plot, reports)) > MAX_FUSED_PLOTS:
            return [], {}
        items = [item for item in fuse(reports) if item.jointly_seen]
        return items, {r.key: r for r in reports}

    def fused_events(
        self,
        runner: CotOutputRunner,
        items: Sequence[FusedItem],
        reports: dict[tuple[str, int], Observation],
        now: dt.datetime,
    ) -> list[CotEvent]:
        """The events of fused sorties whose every report ``runner`` may carry."""
        config = runner.config
        events = []
        for item in items:
            sources = [
                reports[(s.id, s.version)] for s in item.sources if (s.id, s.version) in reports
            ]
            if len(sources) != len(item.sources) or not any(
                config.choice.wants(s) for s in sources
            ):
                continue
            refusal = all_allowed(sources, config.rule, self.node.party)
            if refusal is not None:
                runner.refused[f"fused: {refusal.partition(': ')[2]}"] += 1
                continue
            events.append(fused_event(item, sources, self.friendly, now, config.stale_s))
        return events


def _uid(observation: Observation) -> str:
    if observation.track is not msgspec.UNSET:
        return f"{observation.origin}.{observation.track}"
    return observation.id


def combined_marking(sources: Sequence[Observation]) -> Marking:
    """The most restrictive of several markings: the highest TLP, the parties all release to."""
    tlp = max((s.marking.tlp for s in sources), key=tlp_rank, default=TLP_ORDER[2])
    sets = [set(s.marking.releasable_to) for s in sources]
    common = set.intersection(*sets) if sets else set()
    return Marking(tlp=tlp, releasable_to=tuple(sorted(common)))  # type: ignore[arg-type]


def fused_event(
    item: FusedItem,
    sources: Sequence[Observation],
    friendly: frozenset[str],
    now: dt.datetime,
    stale_s: float,
) -> CotEvent:
    """One fused sortie as a CoT event (``how`` m-f), marked as its most restricted report."""
    positions = item.geometry.positions()
    lon, lat = positions[-1]
    marking = combined_marking(sources)
    platform = item.platform
    identity = standard_identity(sources[0], friendly)
    return CotEvent(
        uid=f"kuroshio.{item.id}",
        type=cot_type(item.kind, platform.platform_class, identity),
        how="m-f",
        time=now,
        start=min(item.end, now),
        stale=max(item.end, now) + dt.timedelta(seconds=stale_s),
        lat=lat,
        lon=lon,
        ce=circular_error(item.uncertainty_m, None),
        callsign=callsign(
            platform.type or platform.platform_class or item.kind, platform.count, item.origins
        ),
        marking=CotMarking(
            access=f"TLP:{marking.tlp}",
            caveat=caveat(marking),
            releasable_to=marking.releasable_to,
            origin="+".join(item.origins),
            verification=f"fused from {len(sources)} reports of {', '.join(item.origins)}",
        ),
    )
