"""`harness contracts test`: schemathesis conformance of a contract, simulator or any API."""

from __future__ import annotations

import argparse
import base64
import contextlib
import functools
import itertools
import json
import logging
import threading
import time
import tomllib
import xml.etree.ElementTree as ET
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeGuard
from urllib.parse import quote_plus

import schemathesis
from rich.console import Console
from rich.markup import escape
from schemathesis.core.parameters import ParameterLocation
from schemathesis.core.result import Ok
from schemathesis.engine import events, from_schema

from harness.progress import Events, Observer, conformance_observer
from simulators.common.formcodec import FormDecodeError, coerce, decode_form, encode_form
from simulators.common.simulator import CONTRACTS

if TYPE_CHECKING:
    from schemathesis.core.failures import Failure
    from schemathesis.engine.recorder import ScenarioRecorder

    from simulators.common.faults import FaultRule
    from simulators.common.journal import Journal, JournalEntry
    from simulators.common.simulator import Simulator

CONTROL = "control"
ALL = "all"
DEFAULT_MAX_EXAMPLES = 10
LONG_MAX_EXAMPLES = 100
DEFAULT_MAX_TIME_S = 300.0
LONG_MAX_TIME_S = 1800.0
DEFAULT_SEED = 0
REQUEST_TIMEOUT_S = 10.0
# simDrainWebhooks may legally wait 300 s; the conformance world runs no dispatcher, so any
# pending delivery would hold every generated drain for its whole timeout.
DRAIN_TIMEOUT_CAP_S = 0.2
# Control-plane calls that replace the world the run stands on or move its one-way clock:
# they get a world of their own, so a generated restore or a jump to year 9999 cannot
# poison every later call (and a reset between a create and its read is not a bug).
WORLD_CHANGING = frozenset(
    {"simReset", "simSetSeed", "simRestore", "simAdvanceClock", "simSetClock"}
)
# Checks about the shape of a response. An injected fault answers before the API sees the
# request, so only these can judge it: the other checks judge how the request was handled.
SHAPE_CHECKS = frozenset(
    {
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
    }
)
THROTTLE_PROBABILITY = 0.05
OUTAGE_PROBABILITY = 0.03
PHASES = ("examples", "coverage", "fuzzing", "stateful")
_NOT_BODY = (
    ParameterLocation.PATH,
    ParameterLocation.QUERY,
    ParameterLocation.HEADER,
    ParameterLocation.COOKIE,
)
CURL_SHOWN_CHARS = 1_000
BUCKET_LINES = 12


# ---------------------------------------------------------------------------------------------
# budget, targets and known failures


@dataclass(frozen=True)
class Budget:
    """How much to test: examples per operation, seed, stateful phase, faults and a time bound."""

    max_examples: int = DEFAULT_MAX_EXAMPLES
    seed: int | None = DEFAULT_SEED
    stateful: bool = True
    faults: bool = False
    max_time_s: float = DEFAULT_MAX_TIME_S


@dataclass(frozen=True)
class KnownFailure:
    """A failure whose cause lies outside the files this suite may change: reported, not counted.

    It matches one of ``checks`` on one of ``operations`` (labels; empty for any) when
    ``matches(response, sim)`` holds, so the same check failing for another reason still fails.
    """

    checks: frozenset[str]
    operations: frozenset[str]
    reason: str
    matches: Callable[[schemathesis.Response, Simulator | None], bool]

    def covers(
        self, checks: set[str], operation: str, response: schemathesis.Response, sim: Any
    ) -> bool:
        return (
            bool(self.checks & checks)
            and (not self.operations or operation in self.operations)
            and self.matches(response, sim)
        )


SERVER_ERROR_CHECKS = frozenset({"not_a_server_error", "status_code_conformance"})
# The instants iso() can print: 0001-01-01 to 9999-12-31.
_ISO_RANGE = range(-62_135_596_800, 253_402_300_800)


def _empty_object_in_form(response: schemathesis.Response, _sim: Any) -> bool:
    """A form cannot spell {}: schemathesis sends an empty object as `key=`, which is the
    empty string Stripe refuses where only an object is accepted (the SDKs send nothing)."""
    return (
        response.status_code == 400
        and b"is not of type 'object'" in response.content
        and b"''" in response.content
    )


def _unindexed_array_in_form(response: schemathesis.Response, _sim: Any) -> bool:
    """schemathesis's own form encoding sends an array inside a deepObject property as
    `a[b]=v`, unindexed: a string where Stripe takes only an array (the SDKs send
    `a[b][0]=v`). Matched by the refused parameter being sent in exactly that form."""
    if response.status_code != 400:
        return False
    try:
        param = json.loads(response.content)["error"]["param"]
    except (ValueError, KeyError, TypeError):
        return False
    body = response.request.body
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body or "")
    return (
        isinstance(param, str)
        and "[" in param
        and any(pair.startswith(f"{quote_plus(param)}=") for pair in text.split("&"))
    )


def _internal_id_to_an_upsert(response: schemathesis.Response, _sim: Any) -> bool:
    """NetSuite upserts by external id only (``PUT …/{type}/eid:<external id>``, the contract's
    pattern); the stateful phase's inferred links still send a record's internal id there."""
    return response.status_code == 400 and b"does not match '^eid:" in response.content


def _no_allow_header(response: schemathesis.Response, _sim: Any) -> bool:
    return response.status_code == 405 and "allow" not in response.headers


def _server_error(response: schemathesis.Response, _sim: Any) -> bool:
    return response.status_code == 500


def _clock_out_of_range(response: schemathesis.Response, sim: Any) -> bool:
    return (
        response.status_code == 500 and sim is not None and sim.world.clock.now() not in _ISO_RANGE
    )


def _advance_past_year_9999(response: schemathesis.Response, sim: Any) -> bool:
    """A 500 for a duration that lands past year 9999 from the clock as it stands."""
    from simulators.common.clock import ClockError, after_duration

    if response.status_code != 500 or sim is None:
        return False
    body = response.request.body
    try:
        sent = json.loads(body) if isinstance(body, str | bytes) else None
    except ValueError:
        return False
    duration = sent.get("duration") if isinstance(sent, dict) else None
    if not isinstance(duration, str):
        return False
    try:
        target = after_duration(sim.world.clock.now(), duration)
    except ClockError:
        return False
    except (ValueError, OverflowError):
        return True
    return target not in _ISO_RANGE


def _not_found(response: schemathesis.Response, _sim: Any) -> bool:
    return response.status_code == 404


# Kernel bugs (simulators/common/*) found by this suite, each until its fix lands, and
# generator limits that are not the simulators' to fix.
KNOWN_FAILURES: tuple[KnownFailure, ...] = (
    KnownFailure(
        frozenset({"positive_data_acceptance"}),
        frozenset(),
        "schemathesis form-encodes an empty object as `key=`; Stripe refuses the empty string "
        "where its contract takes only an object (the stripe SDK omits an empty object)",
        _empty_object_in_form,
    ),
    KnownFailure(
        frozenset({"positive_data_acceptance"}),
        frozenset(),
        "schemathesis form-encodes an array inside a deepObject property unindexed (`a[b]=v`); "
        "Stripe reads that as a string where only an array is accepted (the SDKs index it)",
        _unindexed_array_in_form,
    ),
    KnownFailure(
        frozenset({"positive_data_acceptance"}),
        frozenset(),
        "schemathesis links a record's internal id (from a Location header or a list) to the "
        "ERP's upsert PUT, whose id the contract requires as eid:<external id>",
        _internal_id_to_an_upsert,
    ),
)


@dataclass
class Target:
    """One contract against one base URL, with what authenticates and what the run may skip."""

    name: str
    spec: dict[str, Any]
    url: str
    headers: dict[str, str]
    include: frozenset[str] | None = None  # operationIds; None means every operation
    exclude: frozenset[str] = frozenset()
    stateful: bool = True
    # The simulator behind the URL, when we serve it: its journal tells a business-rule refusal
    # from a contract violation and an injected fault from the API's own answer.
    sim: Simulator | None = None
    known: tuple[KnownFailure, ...] = ()


# ---------------------------------------------------------------------------------------------
# report


@dataclass
class FailureRecord:
    """One failing check on one operation: the first example and how often it recurred."""

    check: str
    operation: str
    title: str
    message: str
    status: int | None
    curl: str
    response: str = ""  # an excerpt of the body that failed the check
    count: int = 1


@dataclass
class Dropped:
    """Failures set aside on purpose, counted by reason, each with one example."""

    counts: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)

    def add(self, reason: str, example: str) -> None:
        self.counts[reason] += 1
        self.examples.setdefault(reason, example)


@dataclass
class Report:
    """What one target's run found."""

    name: str
    requests: Counter[str] = field(default_factory=Counter)  # per operation label
    failures: dict[tuple[str, str, str], FailureRecord] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    refusals: Dropped = field(default_factory=Dropped)
    injected: Dropped = field(default_factory=Dropped)
    unsendable: Dropped = field(default_factory=Dropped)
    known: Dropped = field(default_factory=Dropped)
    operations: set[str] = field(default_factory=set)  # every operation the run selected
    exceptions: Counter[str] = field(default_factory=Counter)  # logged by the simulator
    elapsed_s: float = 0.0
    timed_out: bool = False

    @property
    def conforms(self) -> bool:
        return not self.failures and not self.errors

    @property
    def failure_count(self) -> int:
        return sum(f.count for f in self.failures.values())

    def add_failure(self, record: FailureRecord) -> None:
        key = (record.check, record.operation, record.title)
        existing = self.failures.get(key)
        if existing is None:
            self.failures[key] = record
        else:
            existing.count += 1

    def merge(self, other: Report) -> None:
        self.requests.update(other.requests)
        for record in other.failures.values():
            for _ in range(record.count):
                self.add_failure(record)
        self.errors.extend(other.errors)
        for mine, theirs in (
            (self.refusals, other.refusals),
            (self.injected, other.injected),
            (self.unsendable, other.unsendable),
            (self.known, other.known),
        ):
            mine.counts.update(theirs.counts)
            for reason, example in theirs.examples.items():
                mine.examples.setdefault(reason, example)
        self.operations |= other.operations
        self.exceptions.update(other.exceptions)
        self.elapsed_s += other.elapsed_s
        self.timed_out = self.timed_out or other.timed_out


# ---------------------------------------------------------------------------------------------
# form bodies


def _resolve(root: Mapping[str, Any], node: Any) -> Any:
    """Follow local ``$ref``s; contracts keep request bodies inline or under components."""
    seen = 0
    while isinstance(node, Mapping) and isinstance(node.get("$ref"), str) and seen < 32:
        ref: str = node["$ref"]
        if not ref.startswith("#/"):
            return node
        target: Any = root
        for part in ref[2:].split("/"):
            target = target.get(part.replace("~1", "/").replace("~0", "~"), {})
        node, seen = target, seen + 1
    return node


def _form_encoding(case: schemathesis.Case[Any]) -> Mapping[str, Any]:
    operation = case.operation
    body = _resolve(operation.schema.raw_schema, operation.definition.raw.get("requestBody", {}))
    content = body.get("content", {}) if isinstance(body, Mapping) else {}
    media = content.get(case.media_type or "application/x-www-form-urlencoded", {})
    encoding = media.get("encoding", {}) if isinstance(media, Mapping) else {}
    return encoding if isinstance(encoding, Mapping) else {}


def _scalar(value: Any) -> str:
    if value is None:
        return ""  # the empty value: decoders read it as null for nullable non-strings
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def encode_form_body(body: Mapping[str, Any], encoding: Mapping[str, Any]) -> str:
    """An OpenAPI form body on the wire: ``deepObject`` properties in bracket notation.

    Stripe-style contracts declare nested parameters ``style: deepObject``; their indexed,
    nested form (``items[0][price]=…``) is the only one that keeps structure, so any other
    nested value takes it too. Scalars are ``name=value``, arrays of scalars repeat the name
    (form, explode) unless the encoding says ``explode: false``.
    """
    pairs: list[str] = []
    for name, value in body.items():
        spec = encoding.get(name, {})
        spec = spec if isinstance(spec, Mapping) else {}
        deep = spec.get("style") == "deepObject"
        key = quote_plus(str(name))
        if isinstance(value, Mapping) or (deep and isinstance(value, list)):
            encoded = encode_form({str(name): value})
            if encoded:
                pairs.append(encoded)
        elif isinstance(value, list):
            if any(isinstance(v, Mapping | list) for v in value):
                encoded = encode_form({str(name): value})
                if encoded:
                    pairs.append(encoded)
            elif spec.get("explode", True) is False:
                pairs.append(f"{key}={quote_plus(','.join(_scalar(v) for v in value))}")
            else:
                pairs.extend(f"{key}={quote_plus(_scalar(v))}" for v in value)
        else:
            pairs.append(f"{key}={quote_plus(_scalar(value))}")
    return "&".join(pairs)


@schemathesis.serializer("application/x-www-form-urlencoded")
def _serialize_form(ctx: schemathesis.SerializationContext, value: Any) -> bytes | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    if isinstance(value, Mapping):
        text = encode_form_body(value, _form_encoding(ctx.case))
        return text.encode("utf-8", "surrogatepass")
    # A negative case may generate a non-object body; it still has to reach the API.
    return json.dumps(value).encode()


# ---------------------------------------------------------------------------------------------
# reading the simulator's journal


class JournalIndex:
    """Journal entries by request id; the server thread appends while checks read."""

    # Entries are numbered when a request opens and appended when it closes, so a rescan
    # looks this far back for requests that closed out of order.
    _OVERLAP = 64

    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self._by_id: dict[str, JournalEntry] = {}
        self._recent: deque[JournalEntry] = deque(maxlen=4 * self._OVERLAP)
        self._last_seq = 0
        self._lock = threading.Lock()

    def get(self, request_id: str, wait_s: float = 2.0) -> JournalEntry | None:
        deadline = time.monotonic() + wait_s
        while True:
            with self._lock:
                entry = self._by_id.get(request_id)
                if entry is None:
                    self._scan()
                    entry = self._by_id.get(request_id)
            # The journal records a request after its response is sent, so a check may ask
            # a moment before the entry exists.
            if entry is not None or time.monotonic() > deadline:
                return entry
            time.sleep(0.005)

    def after(self, seq: int) -> list[JournalEntry]:
        """Requests opened after ``seq``: the ones a check sent itself while judging it."""
        for attempt in range(2):
            with self._lock:
                self._scan()
                later = [entry for entry in self._recent if entry.seq > seq]
            if later or attempt:
                return later
            time.sleep(0.01)  # a follow-up may still be closing its journal entry
        return []

    def _scan(self) -> None:
        try:
            fresh = list(self.journal.entries(since_seq=max(0, self._last_seq - self._OVERLAP)))
        except RuntimeError:  # deque mutated by the server thread; the next poll rescans
            return
        for entry in fresh:
            if entry.request_id not in self._by_id:
                self._by_id[entry.request_id] = entry
                self._recent.append(entry)
            self._last_seq = max(self._last_seq, entry.seq)


def _header(response: schemathesis.Response, name: str) -> str | None:
    values = response.headers.get(name.lower())
    return values[0] if values else None


class Classifier:
    """Sets failures aside that are not the API's fault, and counts every one it sets aside."""

    def __init__(self, target: Target, report: Report) -> None:
        self.report = report
        self.known = target.known
        self.sim = target.sim
        self.index = JournalIndex(target.sim.journal) if target.sim is not None else None
        self._lock = threading.Lock()

    def keep(
        self,
        _ctx: schemathesis.HookContext,
        failure: Failure,
        case: schemathesis.Case[Any],
        response: schemathesis.Response,
    ) -> bool:
        checks = set(type(failure).checks)
        operation = failure.operation or case.operation.label
        example = f"{operation}: {response.status_code} {_excerpt(response.content)}"
        for known in self.known:
            if known.covers(checks, operation, response, self.sim):
                check = ", ".join(sorted(known.checks & checks))
                return self._drop(self.report.known, f"{check}: {known.reason}", example)
        if "negative_data_rejection" in checks and _form_body_valid_as_sent(case, response):
            # Brackets cannot carry an empty array or hash, so a negation that lived only in one
            # never reached the API: what it received was valid. Works for --spec APIs too.
            return self._drop(self.report.unsendable, operation, example)
        entry = self._entry(response)
        if entry is None:
            return True
        # A check may send requests of its own (auth probes, undeclared methods); a fault
        # injected into those is as much not the API's doing as one on the original.
        faults = [*entry.faults]
        if self.index is not None and not checks & SHAPE_CHECKS and self._faults_injected():
            faults += [rule for later in self.index.after(entry.seq) for rule in later.faults]
        if faults and not checks & SHAPE_CHECKS:
            rule = ", ".join(sorted(set(faults)))
            return self._drop(
                self.report.injected, f"{', '.join(sorted(checks))} on injected {rule}", example
            )
        if (
            "positive_data_acceptance" in checks
            and 400 <= response.status_code < 500
            and not entry.violations
        ):
            # The simulator validated the request against the contract and let it through;
            # a handler then refused it for a vendor rule (state, a missing reference).
            return self._drop(self.report.refusals, operation, example)
        return True

    def _faults_injected(self) -> bool:
        return self.sim is not None and bool(self.sim.world.faults.hits())

    def _entry(self, response: schemathesis.Response) -> JournalEntry | None:
        request_id = _header(response, "request-id")
        if self.index is None or request_id is None:
            return None
        return self.index.get(request_id)

    def _drop(self, bucket: Dropped, reason: str, example: str) -> bool:
        with self._lock:
            bucket.add(reason, example)
        return False


def _form_body_valid_as_sent(case: schemathesis.Case[Any], response: schemathesis.Response) -> bool:
    """Whether a negative form body, decoded as the wire carried it, satisfies the contract."""
    meta, media = case.meta, case.media_type or ""
    if meta is None or "x-www-form-urlencoded" not in media:
        return False
    if any(meta.is_negative_at(location) for location in _NOT_BODY):
        return False
    body = case.operation.get_body_for_media_type(media)
    sent = response.request.body or b""
    try:
        decoded = decode_form(sent if isinstance(sent, str | bytes) else b"")
    except FormDecodeError:
        return False
    return body is not None and bool(body.is_valid(coerce(decoded, body.resolved_schema)))


def _excerpt(content: bytes, limit: int = 160) -> str:
    text = content[:limit].decode("utf-8", "replace").replace("\n", " ")
    return text + ("…" if len(content) > limit else "")


# ---------------------------------------------------------------------------------------------
# running one target


def _config(target: Target, budget: Budget) -> schemathesis.Config:
    phases: dict[str, Any] = {name: {"enabled": True} for name in PHASES}
    phases["stateful"]["enabled"] = budget.stateful and target.stateful
    data: dict[str, Any] = {
        "base-url": target.url,
        "headers": target.headers,
        "request-timeout": REQUEST_TIMEOUT_S,
        # Nothing written into the working tree: no example database, no run cache.
        "cache": {"enabled": False},
        "generation": {"max-examples": budget.max_examples, "database": "none"},
        "phases": phases,
        "warnings": False,
    }
    if target.sim is not None:
        # The statuses every check of our simulators accepts are stated once, for this run and
        # the schemathesis CLI alike (e.g. 413 for a body over the 1 MiB limit).
        data["checks"] = dict(simulator_config().get("checks", {}))
    if budget.seed is not None:
        data["seed"] = budget.seed
    return schemathesis.Config.from_dict(data)


@functools.cache
def simulator_config() -> dict[str, Any]:
    """contracts/schemathesis.toml, the independent CLI's config: its ``[checks]`` hold for this
    run of our simulators too (its ``[[operations]]`` are the in-process run's KNOWN_FAILURES
    and refusal classification)."""
    with (CONTRACTS.parent / "schemathesis.toml").open("rb") as handle:
        return tomllib.load(handle)


def _case_mapper(
    target: Target,
) -> Callable[[schemathesis.HookContext, schemathesis.Case[Any]], Any]:
    idempotency = (target.sim.idempotency_header or "") if target.sim is not None else ""
    serial = itertools.count(1)
    lock = threading.Lock()

    def map_case(
        _ctx: schemathesis.HookContext, case: schemathesis.Case[Any]
    ) -> schemathesis.Case[Any]:
        key = case.headers.get(idempotency) if idempotency and case.headers else None
        if case.headers and isinstance(key, str) and key and len(key) <= 255:
            # A key names one logical request: generators reuse the same few strings, which
            # would turn most writes into idempotency mismatches that never reach a handler.
            with lock:
                suffix = f"-{next(serial)}"
            case.headers[idempotency] = key[: 255 - len(suffix)] + suffix
        body = case.body
        if isinstance(body, dict) and "x-www-form-urlencoded" in (case.media_type or ""):
            case.body = {name: _representable_keys(value) for name, value in body.items()}
            body = case.body
        if case.operation.definition.raw.get("operationId") == "simDrainWebhooks" and isinstance(
            body, dict
        ):
            timeout = body.get("timeout_s")
            # Only a valid timeout is shortened; a negative case keeps the value it tests.
            if _number(timeout) and DRAIN_TIMEOUT_CAP_S < timeout <= 300:
                body["timeout_s"] = DRAIN_TIMEOUT_CAP_S
        return case

    return map_case


def _representable_keys(value: Any) -> Any:
    """Keys of free-form hashes that bracket notation can carry: not empty, no ``[`` or ``]``.

    OpenAPI 3.0 has no ``propertyNames``, so generators draw any key; Stripe forbids these and
    ``metadata[]=v`` or ``metadata[a]b]=v`` would not even parse. Renaming keeps the case valid.
    """
    if isinstance(value, list):
        return [_representable_keys(item) for item in value]
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for key, item in value.items():
        name = str(key).replace("[", "(").replace("]", ")") or "_"
        while name in out:
            name += "_"
        out[name] = _representable_keys(item)
    return out


def _number(value: object) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def run_target(target: Target, budget: Budget, observe: Observer | None = None) -> Report:
    """Run every default schemathesis check and phase against one target; ``observe`` sees
    each engine event after it is counted (progress)."""
    report = Report(target.name)
    schema: schemathesis.BaseSchema = schemathesis.openapi.from_dict(
        target.spec, config=_config(target, budget)
    )
    if target.include is not None:
        schema = schema.include(operation_id=sorted(target.include))
    if target.exclude:
        schema = schema.exclude(operation_id=sorted(target.exclude))
    schema.hooks.register_hook_with_name(Classifier(target, report).keep, "filter_failure")
    schema.hooks.register_hook_with_name(_case_mapper(target), "map_case")
    for result in schema.get_all_operations():
        if isinstance(result, Ok):
            report.operations.add(result.ok().label)

    started = time.monotonic()
    stream = from_schema(schema).execute()
    timer = threading.Timer(budget.max_time_s, lambda: _stop(stream, report))
    timer.daemon = True
    timer.start()
    try:
        for event in stream:
            _collect(report, event)
            if observe is not None:
                observe(report, event)
    finally:
        timer.cancel()
        report.elapsed_s = time.monotonic() - started
    return report


def _stop(stream: Any, report: Report) -> None:
    report.timed_out = True
    stream.stop()


def _collect(report: Report, event: events.EngineEvent) -> None:
    if isinstance(event, events.ScenarioFinished):
        _collect_scenario(report, event.recorder)
    elif isinstance(event, events.NonFatalError):
        report.errors.append(f"{event.label}: {event.info.format()}".strip())
    elif isinstance(event, events.FatalError):
        report.errors.append(f"schemathesis failed: {event.exception!r}")
    elif isinstance(event, events.EngineFinished):
        for failure in event.failures:
            report.add_failure(
                FailureRecord(
                    "after_run", failure.operation or "", failure.title, failure.message, None, ""
                )
            )


def _collect_scenario(report: Report, recorder: ScenarioRecorder) -> None:
    for case_id, node in recorder.cases.items():
        if case_id in recorder.interactions:
            report.requests[node.value.operation.label] += 1
    for case_id, checks in recorder.checks.items():
        for check in checks:
            info = check.failure_info
            if info is None:
                continue
            failure = info.failure
            response = recorder.find_response(case_id=failure.case_id or case_id)
            report.add_failure(
                FailureRecord(
                    check=check.name,
                    operation=failure.operation or recorder.label,
                    title=failure.title,
                    message=failure.message,
                    status=response.status_code if response is not None else None,
                    curl=info.code_sample,
                    response=_excerpt(response.content, 300) if response is not None else "",
                )
            )


# ---------------------------------------------------------------------------------------------
# building targets: simulators served in-process, or any API


TOKEN_CREDENTIALS = ("access_token", "token", "api_key", "session_id")


def auth_headers(spec: Mapping[str, Any], credentials: Mapping[str, str]) -> dict[str, str]:
    """Headers for the contract's first satisfiable security requirement, from credentials.

    A scheme takes the credential named like it (``sessionId`` → ``session_id``), else a
    usual token name, else the only credential there is.
    """
    from simulators.common.app import snake

    schemes = spec.get("components", {}).get("securitySchemes", {})

    def secret(*names: str) -> str | None:
        for name in names:
            if credentials.get(name):
                return credentials[name]
        values = [v for v in credentials.values() if v]
        return values[0] if len(values) == 1 else None

    for requirement in spec.get("security", []) or []:
        headers: dict[str, str] = {}
        for name in requirement:
            scheme = schemes.get(name, {})
            kind, flavour = scheme.get("type"), str(scheme.get("scheme", "")).lower()
            value = secret(name, snake(name), *TOKEN_CREDENTIALS)
            if (kind == "http" and flavour == "bearer") or kind in ("oauth2", "openIdConnect"):
                if value is not None:
                    headers["Authorization"] = f"Bearer {value}"
            elif kind == "http" and flavour == "basic":
                user = credentials.get("username") or value
                value = None if user is None else f"{user}:{credentials.get('password', '')}"
                if value is not None:
                    headers["Authorization"] = "Basic " + base64.b64encode(value.encode()).decode()
            elif kind == "apiKey" and scheme.get("in") == "header":
                header = str(scheme.get("name", ""))
                value = secret(name, snake(name), header, snake(header.replace("-", "")))
                if value is not None:
                    headers[header] = value
            else:
                value = None
            if value is None:
                break
        else:
            return headers
    return {}


def registered_systems() -> list[str]:
    from harness.up import SYSTEMS

    return list(SYSTEMS)


@contextlib.contextmanager
def served(system: str, seed: int) -> Iterator[tuple[Simulator, str]]:
    """A fresh world with one simulator, served on a free loopback port for the block."""
    from harness.up import SYSTEMS
    from simulators.common.app import build_app
    from simulators.common.server import Site, ThreadedServer
    from simulators.common.world import World

    world = World(seed, webhook_time_scale=1e-5)
    sim = SYSTEMS[system](world)
    uvicorn_log = logging.getLogger("uvicorn.error")
    level = uvicorn_log.level
    # No webhook dispatcher: generated endpoint URLs are arbitrary strings, and a conformance
    # run must never send requests to them. Delivery has its own tests.
    with ThreadedServer([Site(system, build_app(sim, validate_responses=True))]) as server:
        # Set after start-up, which configures uvicorn's loggers: uvicorn logs each request
        # it cannot parse, and the run reports those responses itself.
        uvicorn_log.setLevel(logging.ERROR)
        try:
            yield sim, server.urls[system]
        finally:
            uvicorn_log.setLevel(level)


class _ExceptionTally(logging.Handler):
    """Counts the exceptions a simulator logs (each 500), instead of printing tracebacks."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.counts: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        error = record.exc_info[1] if record.exc_info else None
        self.counts[f"{type(error).__name__}: {error}"[:200] if error else record.getMessage()] += 1


@contextlib.contextmanager
def _tally_exceptions(report: Report) -> Iterator[None]:
    """The failures already name every 500; the summary counts the exceptions behind them."""
    log = logging.getLogger("simulators")
    tally, propagate = _ExceptionTally(), log.propagate
    log.addHandler(tally)
    log.propagate = False
    try:
        yield
    finally:
        log.removeHandler(tally)
        log.propagate = propagate
        report.exceptions.update(tally.counts)


def fault_profile(system: str) -> list[FaultRule]:
    """The --faults plan: the vendor's limit answer and outages, rare enough to test through."""
    from simulators.common.faults import FaultRule

    return [
        FaultRule(
            system=system,
            kind="throttle",
            probability=THROTTLE_PROBABILITY,
            should_retry=True,
            retry_after_s=1,
        ),
        FaultRule(system=system, kind="outage", probability=OUTAGE_PROBABILITY, retry_after_s=1),
    ]


def _simulator_report(system: str, budget: Budget, observe: Observer | None = None) -> Report:
    seed = budget.seed if budget.seed is not None else DEFAULT_SEED
    with served(system, seed) as (sim, url):
        if budget.faults:
            for rule in fault_profile(system):
                sim.world.faults.add(rule)
        spec = _load(sim.contract)
        headers = auth_headers(spec, sim.credentials())
        if spec.get("security") and not headers:
            # Without credentials every request would be a 401 and the run would prove nothing.
            report = Report(system)
            report.errors.append(
                f"no security requirement of {sim.contract.name} can be met from "
                f"credentials() keys {sorted(sim.credentials())}"
            )
            return report
        target = Target(system, spec, url, headers, sim=sim, known=KNOWN_FAILURES)
        report = Report(system)
        with _tally_exceptions(report):
            report.merge(run_target(target, budget, observe))
        return report


def _control_report(budget: Budget, observe: Observer | None = None) -> Report:
    from simulators.common.simulator import CONTRACTS

    host = registered_systems()[0]
    seed = budget.seed if budget.seed is not None else DEFAULT_SEED
    spec = _load(CONTRACTS / "control.yaml")
    report = Report(CONTROL)
    # Two worlds: the calls that replace the world or move its clock get the second one, and
    # no stateful sequences (a reset between a create and its read would be ours, not a bug).
    for include, exclude, stateful in (
        (None, WORLD_CHANGING, True),
        (WORLD_CHANGING, frozenset(), False),
    ):
        with served(host, seed) as (sim, url):
            headers = {"X-Sim-Control-Token": sim.world.control_token}
            target = Target(
                CONTROL, spec, url, headers, include, exclude, stateful, sim, KNOWN_FAILURES
            )
            with _tally_exceptions(report):
                report.merge(run_target(target, budget, observe))
    return report


def run_systems(
    names: Iterable[str], budget: Budget, observe: Observer | None = None
) -> list[Report]:
    """Each named simulator (or the control plane) in a fresh world of its own."""
    reports = []
    for name in names:
        if name == CONTROL:
            reports.append(_control_report(budget, observe))
        else:
            reports.append(_simulator_report(name, budget, observe))
    return reports


def run_spec(
    spec_path: Path,
    url: str,
    headers: Mapping[str, str],
    budget: Budget,
    observe: Observer | None = None,
) -> Report:
    """Any API against its own contract (an integration's webhook receiver, say)."""
    spec = _load(spec_path)
    title = str(spec.get("info", {}).get("title") or spec_path.stem)
    return run_target(Target(title, spec, url.rstrip("/"), dict(headers)), budget, observe)


def _load(path: Path) -> dict[str, Any]:
    import yaml

    # The C loader when PyYAML has it: the billing contract takes seconds in pure Python.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with open(path, encoding="utf-8") as handle:
        loaded = yaml.load(handle, Loader=loader)
    if not isinstance(loaded, dict):
        raise ValueError(f"{path} is not an OpenAPI document")
    return loaded


# ---------------------------------------------------------------------------------------------
# output


def print_summary(reports: list[Report], console: Console) -> None:
    for report in reports:
        tested = sum(1 for op in report.operations if report.requests[op])
        verdict = (
            "[bold green]conforms[/]"
            if report.conforms
            else f"[bold red]{report.failure_count} failure(s)[/]"
            + (f", {len(report.errors)} error(s)" if report.errors else "")
        )
        console.print(
            f"[bold]{escape(report.name)}[/]: {tested}/{len(report.operations)} operations, "
            f"{sum(report.requests.values())} requests, {report.elapsed_s:.1f} s: {verdict}"
        )
        if report.timed_out:
            untested = sorted(op for op in report.operations if not report.requests[op])
            console.print(
                f"  [yellow]time limit reached[/]; untested: {escape(', '.join(untested)) or '-'}"
            )
        by_check: dict[str, list[FailureRecord]] = {}
        for record in report.failures.values():
            by_check.setdefault(record.check, []).append(record)
        for check, records in sorted(by_check.items()):
            console.print(f"  [red]{escape(check)}[/] ({sum(r.count for r in records)})")
            for record in sorted(records, key=lambda r: r.operation):
                status = f" [{record.status}]" if record.status is not None else ""
                console.print(
                    f"    {escape(record.operation)}{status}: {escape(record.title)}"
                    + (f" (×{record.count})" if record.count > 1 else "")
                )
                first = [line for line in record.message.strip().splitlines() if line.strip()][:3]
                for line in first:
                    console.print(f"      {escape(line[:200])}")
                if record.response:
                    console.print(f"      response: {escape(record.response)}")
                if record.curl:
                    console.print(f"      {escape(_last_request(record.curl))}")
        for error in report.errors:
            console.print(f"  [red]error[/] {escape(error[:500])}")
        if report.exceptions:
            console.print(f"  [dim]exceptions the simulator logged: {report.exceptions.total()}[/]")
            for text, count in report.exceptions.most_common(BUCKET_LINES):
                console.print(f"    [dim]{escape(text)} ×{count}[/]")
        for title, bucket in (
            (
                "business-rule refusals of valid data (no contract violation in the journal)",
                report.refusals,
            ),
            ("failures on injected faults (only shape checks judge these)", report.injected),
            (
                "negative cases the form encoding made valid (empty arrays, hashes send nothing)",
                report.unsendable,
            ),
            ("known failures (not counted; see the reason)", report.known),
        ):
            if bucket.counts:
                console.print(f"  [dim]{title}: {sum(bucket.counts.values())}[/]")
                ranked = bucket.counts.most_common()
                for reason, count in ranked[:BUCKET_LINES]:
                    console.print(
                        f"    [dim]{escape(reason)} ×{count}, e.g. "
                        f"{escape(bucket.examples[reason][:160])}[/]"
                    )
                if len(ranked) > BUCKET_LINES:
                    console.print(f"    [dim]… {len(ranked) - BUCKET_LINES} more[/]")


def _last_request(curl: str) -> str:
    """The failing request of a reproduction, shortened for a terminal; --junit has it all."""
    earlier, sep, last = curl.rpartition("\ncurl ")
    shown = f"curl {last}" if sep else curl
    if len(shown) > CURL_SHOWN_CHARS:
        shown = shown[:CURL_SHOWN_CHARS] + " … (whole command in --junit)"
    if sep:
        steps = earlier.count("\ncurl ") + 1
        shown = f"(after {steps} earlier request(s), see --junit)\n      {shown}"
    return shown


def write_junit(reports: list[Report], path: Path) -> None:
    """One testsuite per target, one testcase per operation, a failure element per check."""
    root = ET.Element("testsuites", name="harness contracts test")
    for report in reports:
        failing = {op for _, op, _ in report.failures}
        labels = sorted(report.operations | failing)
        if report.errors:
            labels.insert(0, "")  # run-level errors get a testcase of their own
        suite = ET.SubElement(
            root,
            "testsuite",
            name=report.name,
            tests=str(len(labels)),
            failures=str(sum(1 for label in labels if label in failing)),
            errors=str(len(report.errors)),
            time=f"{report.elapsed_s:.3f}",
        )
        for label in labels:
            case = ET.SubElement(
                suite, "testcase", classname=report.name, name=label or "(run)", time="0"
            )
            if not label and report.errors:
                for error in report.errors:
                    ET.SubElement(case, "error", message=error.splitlines()[0][:200]).text = error
                continue
            records = [r for (_, op, _), r in sorted(report.failures.items()) if op == label]
            for record in records:
                element = ET.SubElement(
                    case,
                    "failure",
                    type=record.check,
                    message=f"{record.check}: {record.title}",
                )
                element.text = "\n".join(
                    part
                    for part in (
                        f"{record.title} (×{record.count})",
                        f"status: {record.status}" if record.status is not None else "",
                        record.message,
                        f"response: {record.response}" if record.response else "",
                        record.curl,
                    )
                    if part
                )
            if not report.requests[label] and not records:
                ET.SubElement(case, "skipped", message="not reached within the budget")
    ET.indent(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)


# ---------------------------------------------------------------------------------------------
# command line


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "test",
        help="schemathesis conformance of a simulator or any API against its contract",
        description=(
            "Run every default schemathesis check and phase (examples, coverage, fuzzing, "
            "stateful through the contract's links) against a simulator served in-process "
            "(--system) or any running API (--spec FILE --url URL). Exit 0 when everything "
            "conforms, 1 when a check failed, 2 on usage errors."
        ),
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--system",
        metavar="NAME",
        help=f"a registered simulator, '{CONTROL}' (the control plane) or '{ALL}' (default)",
    )
    where.add_argument(
        "--spec", type=Path, metavar="FILE", help="an OpenAPI contract file (with --url)"
    )
    parser.add_argument("--url", metavar="URL", help="base URL of the API under test (with --spec)")
    parser.add_argument(
        "-H",
        "--header",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="a header sent with every request (with --spec), e.g. auth; repeatable",
    )
    parser.add_argument(
        "--max-examples",
        type=int,
        metavar="N",
        help=f"examples per operation and phase (default {DEFAULT_MAX_EXAMPLES}, "
        f"--long {LONG_MAX_EXAMPLES})",
    )
    parser.add_argument(
        "--seed",
        type=int,
        metavar="N",
        default=DEFAULT_SEED,
        help=f"seeds generation and the simulated world (default {DEFAULT_SEED})",
    )
    parser.add_argument(
        "--faults",
        action="store_true",
        help="inject throttles (429) and outages (503) at a low rate (simulators only)",
    )
    parser.add_argument(
        "--stateful",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run the stateful phase through the contract's links (default on)",
    )
    parser.add_argument(
        "--max-time",
        type=float,
        metavar="S",
        help=f"seconds per target before the run stops (default {DEFAULT_MAX_TIME_S:.0f}, "
        f"--long {LONG_MAX_TIME_S:.0f})",
    )
    parser.add_argument("--long", action="store_true", help="the longer budget, for nightly runs")
    parser.add_argument("--junit", type=Path, metavar="FILE", help="write JUnit XML here")
    parser.set_defaults(func=cmd_test)


def _usage(message: str) -> int:
    Console(stderr=True, highlight=False).print(
        f"[red]harness contracts test: {escape(message)}[/]"
    )
    return 2


def cmd_test(args: argparse.Namespace) -> int:
    console = Console(highlight=False, soft_wrap=True)
    max_examples = args.max_examples
    if max_examples is None:
        max_examples = LONG_MAX_EXAMPLES if args.long else DEFAULT_MAX_EXAMPLES
    max_time = args.max_time
    if max_time is None:
        max_time = LONG_MAX_TIME_S if args.long else DEFAULT_MAX_TIME_S
    if max_examples < 1 or max_time <= 0:
        return _usage("--max-examples and --max-time must be positive")
    budget = Budget(max_examples, args.seed, args.stateful, args.faults, max_time)
    if args.spec is not None:
        if not args.url:
            return _usage("--spec needs --url")
        if args.faults:
            return _usage("--faults needs a simulator (--system)")
        headers: dict[str, str] = {}
        for item in args.header:
            name, sep, value = item.partition(":")
            if not sep or not name.strip():
                return _usage(f"--header takes 'NAME: VALUE' (got {item!r})")
            headers[name.strip()] = value.strip()
        try:
            with Events(console) as progress:
                reports = [
                    run_spec(args.spec, args.url, headers, budget, conformance_observer(progress))
                ]
        except (OSError, ValueError) as exc:
            return _usage(f"cannot load {args.spec}: {exc}")
    else:
        if args.url or args.header:
            return _usage("--url and --header go with --spec")
        systems = registered_systems()
        name = args.system or ALL
        choices = [*systems, CONTROL, ALL]
        if name not in choices:
            return _usage(f"unknown system {name!r}; choose from {', '.join(choices)}")
        names = [*systems, CONTROL] if name == ALL else [name]
        with Events(console) as progress:
            reports = run_systems(names, budget, conformance_observer(progress))
    print_summary(reports, console)
    if args.junit is not None:
        write_junit(reports, args.junit)
        console.print(f"JUnit XML: {escape(str(args.junit))}")
    return 0 if all(report.conforms for report in reports) else 1
