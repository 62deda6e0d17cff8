"""The panel's state, reduced from what the stack publishes (no Qt, no ROS).

Every field is derived from latched topics, periodic diagnostics and the episode store, so a
panel closed and reopened mid-session shows the same thing: the panel owns no state. Staleness
is judged against a clock the caller passes in (``now``, monotonic seconds), which keeps the
rules testable without sleeping.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

IDLE, RESETTING, RUNNING = "idle", "resetting", "running"
AWAITING_LABEL, COMMITTED, DISCARDED = "awaiting_label", "committed", "discarded"
BETWEEN_EPISODES = (IDLE, COMMITTED, DISCARDED)
PHASE_NAMES = {0: "base", 1: "residual", 2: "hold"}
INTERVENTION_PREFIX = "intervention: "


class Level(enum.IntEnum):
    """Row severity; OK/WARN/ERROR follow diagnostic_msgs, STALE means 'not heard from'."""

    OK = 0
    WARN = 1
    ERROR = 2
    STALE = 3


class Action(enum.Enum):
    """Operator actions; the model says which the current state allows (buttons, shortcuts)."""

    START = "start"
    STOP = "stop"
    SUCCESS = "success"
    FAILURE = "failure"
    DISCARD = "discard"
    RESET_SCENE = "reset scene"
    PAUSE = "pause"
    ESTOP = "e-stop"
    ESTOP_RESET = "e-stop reset"


# ---------------------------------------------------------------------- events (from the shell)
@dataclass(frozen=True)
class Lifecycle:
    """One /episode/lifecycle message (the episode manager's transitions)."""

    episode_index: int
    state: str
    reason: str = ""
    step: int = 0
    mode: str = ""
    success: bool = False
    label_source: str = ""
    instruction: str = ""


@dataclass(frozen=True)
class StepRecord:
    """One /arbiter/step decision."""

    episode_index: int
    step: int
    mode: str
    t_base: int
    phase: int
    hold_reason: str = ""
    residual_version: int = 0


@dataclass(frozen=True)
class EnvStatus:
    """One /episode/status message (the robot's or sim's own per-step status)."""

    episode_index: int
    state: str
    step: int


@dataclass(frozen=True)
class DiagStatus:
    """One DiagnosticStatus of a /diagnostics array."""

    name: str
    hardware_id: str
    level: int
    message: str
    values: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Estopped:
    latched: bool


@dataclass(frozen=True)
class Instruction:
    text: str


@dataclass(frozen=True)
class RobotMode:
    text: str


@dataclass(frozen=True)
class GraphNodes:
    """Node names currently visible in the ROS graph (discovery)."""

    names: frozenset[str]


@dataclass(frozen=True)
class CameraFrame:
    """A camera thumbnail already downscaled off the GUI thread (rgb8 rows, top row first)."""

    camera: str
    width: int
    height: int
    rgb: bytes


@dataclass(frozen=True)
class ServiceResult:
    """The answer (or refusal, or timeout) of one service call the panel made."""

    action: str
    ok: bool
    message: str


@dataclass(frozen=True)
class ModeStats:
    """Recent outcomes of one mode from the episode store, oldest first."""

    mode: str
    outcomes: tuple[bool, ...]

    @property
    def rate(self) -> float | None:
        return sum(self.outcomes) / len(self.outcomes) if self.outcomes else None


@dataclass(frozen=True)
class StoreStats:
    """What the episode store holds on disk (read read-only by a background thread)."""

    path: str
    n_episodes: int
    n_steps: int
    disk_bytes: int
    free_bytes: int
    per_mode: tuple[ModeStats, ...] = ()
    error: str = ""


# ---------------------------------------------------------------------- health
@dataclass(frozen=True)
class HealthRow:
    name: str
    level: Level
    message: str
    age_s: float | None


@dataclass
class _Seen:
    level: int
    message: str
    last_seen: float


@dataclass(frozen=True)
class HealthRules:
    """Which nodes must be present and how old a heartbeat may get before it is stale."""

    expected_nodes: tuple[str, ...] = ("episode_manager", "safety_monitor", "arbiter", "recorder")
    stale_after_s: float = 3.0

    def __post_init__(self) -> None:
        if not self.stale_after_s > 0:
            raise ValueError(f"stale_after_s must be > 0, got {self.stale_after_s!r}")


def format_bytes(n: int) -> str:
    """Human-readable size with binary prefixes (the operator compares it with free space)."""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


# ---------------------------------------------------------------------- the model
class PanelModel:
    """Reduces events into what the panel shows; ``apply`` is the only mutator."""

    def __init__(self, rules: HealthRules | None = None) -> None:
        self.rules = rules or HealthRules()
        self.lifecycle: Lifecycle | None = None
        self.last_step: StepRecord | None = None
        self.env: EnvStatus | None = None
        self.estopped: bool | None = None
        self.estop_reason = ""
        self.instruction = ""
        self.robot_mode = ""
        self.interventions: dict[str, int] = {}
        self.residual_version: int | None = None
        self.learner_version: int | None = None
        self.recorder_store = ""
        self.store: StoreStats | None = None
        self.last_result: ServiceResult | None = None
        self._heartbeats: dict[str, _Seen] = {}
        self._nodes_seen_at: float | None = None
        self._present: frozenset[str] = frozenset()

    # ------------------------------------------------------------------ reduction
    def apply(self, event: object, now: float) -> None:
        if isinstance(event, Lifecycle):
            self.lifecycle = event
            if event.instruction:
                self.instruction = event.instruction
        elif isinstance(event, StepRecord):
            self.last_step = event
            if event.residual_version:
                self.residual_version = event.residual_version
        elif isinstance(event, EnvStatus):
            self.env = event
        elif isinstance(event, DiagStatus):
            self._apply_diag(event, now)
        elif isinstance(event, Estopped):
            self.estopped = event.latched
            if not event.latched:
                self.estop_reason = ""
        elif isinstance(event, Instruction):
            self.instruction = event.text
        elif isinstance(event, RobotMode):
            self.robot_mode = event.text
        elif isinstance(event, GraphNodes):
            self._present = event.names
            self._nodes_seen_at = now
        elif isinstance(event, StoreStats):
            self.store = event
        elif isinstance(event, ServiceResult):
            self.last_result = event
        elif isinstance(event, CameraFrame):
            self._heartbeats[f"camera {event.camera}"] = _Seen(0, "images", now)

    def _apply_diag(self, d: DiagStatus, now: float) -> None:
        node, _, what = d.name.partition(": ")
        if d.hardware_id == "safety_monitor":
            counts = {}
            for key, value in d.values.items():
                if key.startswith(INTERVENTION_PREFIX):
                    counts[key[len(INTERVENTION_PREFIX) :]] = _int(value)
            self.interventions = counts
            self.estop_reason = d.values.get("estop", "")
        elif d.hardware_id == "residual":
            self.residual_version = _int(d.values.get("version", "0"))
        elif d.hardware_id == "recorder":
            self.recorder_store = d.values.get("store", "")
        elif d.hardware_id == "learner":
            self.learner_version = _int(d.values.get("version", "0"))
        if node == "health_monitor" and what:
            # a stream the health monitor watches: its own verdict (STALE when silent)
            self._heartbeats[f"topic {what}"] = _Seen(d.level, d.message, now)
            self._heartbeats["health_monitor"] = _Seen(0, "reporting", now)
        else:
            self._heartbeats[node or d.hardware_id] = _Seen(d.level, d.message, now)

    # ------------------------------------------------------------------ queries
    @property
    def state(self) -> str:
        """The episode manager's state; idle until it has published anything."""
        return self.lifecycle.state if self.lifecycle is not None else IDLE

    @property
    def step(self) -> int:
        """Live step of the current episode (arbiter or env), else the lifecycle's count."""
        lc = self.lifecycle
        candidates = [lc.step] if lc is not None else [0]
        if lc is not None and lc.state == RUNNING:
            if self.last_step is not None and self.last_step.episode_index == lc.episode_index:
                candidates.append(self.last_step.step)
            if self.env is not None and self.env.episode_index == lc.episode_index:
                candidates.append(self.env.step)
        return max(candidates)

    @property
    def phase(self) -> str:
        """base / residual / hold of the newest decided step of the running episode."""
        lc, st = self.lifecycle, self.last_step
        if lc is None or lc.state != RUNNING or st is None or st.episode_index != lc.episode_index:
            return ""
        return PHASE_NAMES.get(st.phase, f"phase {st.phase}")

    @property
    def t_base(self) -> int | None:
        lc, st = self.lifecycle, self.last_step
        if lc is None or st is None or st.episode_index != lc.episode_index:
            return None
        return st.t_base

    def allowed(self, action: Action) -> tuple[bool, str]:
        """Whether ``action`` makes sense now, and why not (the service decides in the end)."""
        state, latched = self.state, bool(self.estopped)
        if action is Action.ESTOP:
            return True, ""
        if action is Action.ESTOP_RESET:
            return (latched, "" if latched else "no e-stop is latched")
        rules: dict[Action, tuple[str, ...]] = {
            Action.START: BETWEEN_EPISODES,
            Action.RESET_SCENE: BETWEEN_EPISODES,
            Action.STOP: (RUNNING,),
            Action.PAUSE: (RUNNING,),
            Action.SUCCESS: (AWAITING_LABEL,),
            Action.FAILURE: (AWAITING_LABEL,),
            Action.DISCARD: (RUNNING, AWAITING_LABEL),
        }
        if state not in rules[action]:
            return False, f"{action.value} is not allowed while {state}"
        if latched and action in (Action.START, Action.RESET_SCENE):
            return False, f"{action.value} is not allowed while the e-stop is latched"
        return True, ""

    def health(self, now: float) -> list[HealthRow]:
        """Rows for expected nodes (graph presence) and every heartbeat heard so far."""
        rows: dict[str, HealthRow] = {}
        limit = self.rules.stale_after_s
        for name in self.rules.expected_nodes:
            if self._nodes_seen_at is None:
                rows[name] = HealthRow(name, Level.STALE, "not discovered yet", None)
            elif name not in self._present:
                rows[name] = HealthRow(name, Level.STALE, "not in the ROS graph", None)
            else:
                rows[name] = HealthRow(name, Level.OK, "in the ROS graph", None)
        for name, seen in self._heartbeats.items():
            age = now - seen.last_seen
            if age > limit:
                row = HealthRow(name, Level.STALE, f"silent for {age:.1f} s", age)
            else:
                row = HealthRow(name, Level(min(max(seen.level, 0), 3)), seen.message, age)
            prev = rows.get(name)
            # a fresh heartbeat is newer evidence than the (1 Hz) graph poll
            if prev is None or row.level is not Level.STALE or row.level >= prev.level:
                rows[name] = row
        return sorted(rows.values(), key=lambda r: (r.name.startswith(("topic", "camera")), r.name))


def _int(text: str) -> int:
    try:
        return int(float(text))
    except ValueError:
        return 0
