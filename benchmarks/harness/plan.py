"""How long and how much a run measures: the full plan (about 15 minutes here) and the quick one (about 2).

Ours and granian 2.8.1 run every scenario; the other peers run a subset (`peer_matrix`) so the full
run stays within its budget.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from .scenarios import SCENARIOS, Scenario

ALL = tuple(SCENARIOS)
#: Seconds to start a server and see it answer, for the estimate.
START_COST = 2.0
#: Seconds a measured run costs beyond its duration (tool start, connections, check), for the estimate.
RUN_OVERHEAD = 0.25


@dataclass(frozen=True)
class Plan:
    """Durations, repeats and the scenario matrix of one run."""

    name: str
    #: Seconds of each measured run (wrk takes whole seconds).
    seconds: float
    #: Measured runs per server, scenario and concurrency; the median is reported.
    repeats: int
    #: Seconds of warm-up at the measured concurrency before the measured runs.
    warmup_seconds: float
    #: Requests of the primer, a short low-concurrency run before the warm-up.
    primer_requests: int
    primer_connections: int
    #: Scenarios by concurrency for ours and granian 2.8.1.
    pair_matrix: dict[int, tuple[str, ...]]
    #: Scenarios by concurrency for every other peer.
    peer_matrix: dict[int, tuple[str, ...]]
    #: Requests between the two memory readings.
    memory_requests: int
    #: Requests (of each memory scenario) before the first memory reading.
    memory_warmup_requests: int
    #: Whole run: peers left when it is spent are skipped (with a note in the results).
    budget_seconds: float
    memory_scenarios: tuple[str, ...] = ('get-1k', 'echo-1k')
    memory_connections: int = 64
    #: How many memory readings are taken along the way (growth curve).
    memory_samples: int = 4
    #: Measured runs of a client-bound cell (the paced handshake scenario), when more than `repeats`.
    #: Its repeats scatter 10-20% (an idle server's CPU per request moves with how arrivals line up
    #: with its wake-ups), so its median needs more of them than a saturated cell's.
    client_bound_repeats: int = 1
    #: Seconds of each measured run of a scenario whose rounds start with wrk's TLS handshakes
    #: (`Scenario.handshakes_in_round`), when more than `seconds`. At 128 connections the start
    #: delays about a thousand answers by up to tens of milliseconds (RSGI, ours: p99 33-40 ms in 1 s
    #: rounds, 20-30 ms in 2 s, 6-9 ms in 6 s); from 6 s the p99 is that of the open connections.
    handshake_round_seconds: float = 0.0

    def as_dict(self) -> dict:
        """Plain data for the results file."""
        return asdict(self)

    def repeats_for(self, scenario: Scenario) -> int:
        """Measured runs per server of one cell of `scenario`."""
        return max(self.repeats, self.client_bound_repeats) if scenario.client_bound else self.repeats

    def round_seconds(self, scenario: Scenario) -> float:
        """Seconds of one measured run of `scenario`."""
        if scenario.handshakes_in_round:
            return max(self.seconds, self.handshake_round_seconds)
        return self.seconds

    def cell_seconds(self, scenario: Scenario) -> float:
        """Estimated seconds to measure one server on one scenario at one concurrency."""
        return 0.3 + self.warmup_seconds + self.repeats_for(scenario) * (self.round_seconds(scenario) + RUN_OVERHEAD)

    def restricted(self, scenarios: set[str] | None) -> Plan:
        """This plan with only `scenarios` (None keeps all)."""
        if scenarios is None:
            return self

        def keep(matrix: dict[int, tuple[str, ...]]) -> dict[int, tuple[str, ...]]:
            kept = {c: tuple(s for s in names if s in scenarios) for c, names in matrix.items()}
            return {c: names for c, names in kept.items() if names}

        return replace(self, pair_matrix=keep(self.pair_matrix), peer_matrix=keep(self.peer_matrix))


FULL = Plan(
    name='full',
    seconds=2,
    repeats=3,
    warmup_seconds=1.0,
    primer_requests=500,
    primer_connections=4,
    pair_matrix={64: ALL, 128: ('get-10b', 'get-10k', 'echo-1k', 'stream-100k', 'h2-get-1k', 'https-get-1k')},
    peer_matrix={64: ('get-10b', 'pipe-get-10b', 'get-10k', 'echo-1k', 'h2-get-1k')},
    memory_requests=1_000_000,
    memory_warmup_requests=20_000,
    budget_seconds=28 * 60,
    client_bound_repeats=7,
    handshake_round_seconds=6,
)

QUICK = Plan(
    name='quick',
    seconds=1,
    repeats=1,
    warmup_seconds=0.5,
    primer_requests=200,
    primer_connections=4,
    pair_matrix={
        64: (
            'get-10b',
            'pipe-get-10b',
            'get-10k',
            'get-100k',
            'echo-1k',
            'stream-100k',
            'file-50k',
            'h2-get-1k',
            'h2-echo-1k',
            'https-get-1k',
            'https-h2-get-1k',
            'https-handshake',
        )
    },
    peer_matrix={64: ('get-10b',)},
    memory_requests=100_000,
    memory_warmup_requests=5_000,
    budget_seconds=170,
)

PLANS = {plan.name: plan for plan in (FULL, QUICK)}
