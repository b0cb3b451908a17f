"""Throughput of the engine against the floor of its design: the sample approval, N times, 3 ways.

1. engine — the engine API on a fresh, migrated SQLite file: one transaction per wait state, as
   web requests and a worker run them (start; applicant form; service call; review; manager).
2. floor — the same specs and sandboxed script engine with the least persistence the design
   allows: the lean state (specs by reference) in one row per instance, reloaded and UPDATEd with
   stdlib sqlite3 in one transaction per wait state (WAL, synchronous=NORMAL, a version check).
3. memory — the same run in memory, nothing serialized.

Decision: the figure that matters is engine ÷ floor. Everything both paths share (the specs, the
expression sandbox, SpiffWorkflow itself) cancels out, so the ratio is the price of what the engine
adds around the state: inbox and service-call rows, the audit chain, form validation, the ORM.
Run `python bench/engine.py -h`; `--profile` and `--breakdown` show where the engine's time goes.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from uuid import UUID

ROOT = Path(__file__).resolve().parents[1]
# Run as a script, this file's folder comes first on sys.path and its name would shadow `engine`.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

from SpiffWorkflow.bpmn import BpmnWorkflow  # noqa: E402
from SpiffWorkflow.task import Task  # noqa: E402
from SpiffWorkflow.util.task import TaskState  # noqa: E402
from sqlalchemy import event  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402
from sqlalchemy.engine.default import DefaultDialect  # noqa: E402
from sqlalchemy.orm import Session, SessionTransaction, sessionmaker  # noqa: E402

from engine import audit, bundles, forms, operators, runtime, schema, service_calls, spiff  # noqa: E402
from engine.config import Settings  # noqa: E402
from engine.db import make_engine, make_session_factory  # noqa: E402
from engine.directory import Actor  # noqa: E402
from engine.models import HumanTask, ProcessInstance, ServiceCall  # noqa: E402

BUNDLE = "sample_approval"
APPLY = {"applicant_name": "张三", "amount": 80000, "purpose": "travel"}  # > 50,000: manager too
REVIEW = {"decision": "approve", "opinion": "收入稳定 stable income"}
APPROVE = {"final_decision": "approve", "opinion": "同意 agreed"}
STEPS = ("start", "apply", "service", "review", "approve")

# A web host resolves the person once per login; the bench builds them once.
APPLICANT = Actor("alice")
REVIEWER = Actor("rev", frozenset({"credit_reviewer"}))
MANAGER = Actor("mgr", frozenset({"branch_manager"}))


@dataclass
class Bench:
    settings: Settings
    db_engine: Engine
    sessions: sessionmaker[Session]
    specs: dict
    process_id: str
    specs_json: str
    tmp: Path
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    step: str = ""  # the request under way, for the SQL statement counter
    created: list = field(default_factory=list)  # rows the request under way inserted


def setup(tmp: Path) -> Bench:
    """A fresh migrated database with the sample bundle deployed, as `approval deploy` leaves it."""
    settings = Settings.from_env(
        {
            "APPROVAL_INSTANCE_DIR": str(tmp),
            "APPROVAL_SECRET_KEY": "b" * 64,
            "APPROVAL_PROCESSES_DIR": str(ROOT / "processes"),
            "APPROVAL_FORMS_DIR": str(ROOT / "forms"),
        }
    )
    schema.upgrade(settings.database_url)
    db_engine = make_engine(settings.database_url)
    sessions = make_session_factory(db_engine)
    with sessions() as session, session.begin():
        bundles.deploy_path(session, settings, settings.processes_dir / BUNDLE, "bench")
        version = bundles.load_live(session, BUNDLE)
        specs_json = bundles.live_version(session, BUNDLE).specs_json
    bench = Bench(
        settings, db_engine, sessions, version.specs, version.main_process_id, specs_json, tmp
    )
    event.listen(sessions, "pending_to_persistent", lambda _s, obj: bench.created.append(obj))
    return bench


# --- 1. the engine API --------------------------------------------------------------------------


def _new(bench: Bench, cls: type, instance_id: int) -> int:
    """Id of the open row the request inserted (what its redirect or outbox job would carry)."""
    for obj in bench.created:
        is_open = getattr(obj, "state", None) == "ready" or getattr(obj, "status", "") == "pending"
        if isinstance(obj, cls) and obj.instance_id == instance_id and is_open:
            return obj.id
    raise RuntimeError(f"the request made no open {cls.__name__} for instance #{instance_id}")


def _request(bench: Bench, step: str, fn: Callable[[Session], object]):
    """One web request: its own session and transaction, committed, timed."""
    bench.step, bench.created = step, []
    began = time.perf_counter()
    with bench.sessions() as session, session.begin():
        result = fn(session)
    bench.latencies[step].append(time.perf_counter() - began)
    return result


def _start(bench: Bench, session: Session) -> tuple[int, int]:
    row = runtime.start(session, bench.settings, BUNDLE, {}, APPLICANT)
    return row.id, _new(bench, HumanTask, row.id)


def _complete(bench: Bench, task_id: int, actor: Actor, data: dict, iid: int, then: type | None):
    def request(session: Session) -> int | None:
        runtime.complete_task(session, bench.settings, task_id, actor, data)
        return then and _new(bench, then, iid)

    return request


def _service(bench: Bench, call_id: int, iid: int) -> int:
    """The worker's job: read the call, run the operator, apply the outcome (two transactions)."""
    bench.step, bench.created = "service", []
    began = time.perf_counter()
    service_calls.run_call(bench.sessions, bench.settings, call_id)
    bench.latencies["service"].append(time.perf_counter() - began)
    return _new(bench, HumanTask, iid)


def engine_instance(bench: Bench) -> int:
    iid, task = _request(bench, "start", partial(_start, bench))
    call = _request(bench, "apply", _complete(bench, task, APPLICANT, APPLY, iid, ServiceCall))
    task = _service(bench, call, iid)
    task = _request(bench, "review", _complete(bench, task, REVIEWER, REVIEW, iid, HumanTask))
    _request(bench, "approve", _complete(bench, task, MANAGER, APPROVE, iid, None))
    return iid


# --- 2. and 3. raw SpiffWorkflow ----------------------------------------------------------------


def _handle(workflow: BpmnWorkflow) -> str | None:
    """The task the next request acts on: a ready user task, else a recorded service call."""
    for task in workflow.get_tasks(state=TaskState.READY, manual=True):
        return str(task.id)
    for task in workflow.get_tasks(state=TaskState.STARTED):
        if spiff.SERVICE_CALL_KEY in task.internal_data:
            return str(task.id)
    return None


def _task(workflow: BpmnWorkflow, handle: str, state: TaskState) -> Task:
    task = workflow.get_task_from_id(UUID(handle))
    if task is None or task.state != state:  # a host's duty: Spiff runs any task it is given
        raise RuntimeError(f"task {handle} is not {state.name}")
    return task


def _submit(data: dict, workflow: BpmnWorkflow, handle: str) -> str | None:
    task = _task(workflow, handle, TaskState.READY)
    task.set_data(**data)
    task.run()
    workflow.do_engine_steps()
    return _handle(workflow)


def _serve(workflow: BpmnWorkflow, handle: str) -> str | None:
    task = _task(workflow, handle, TaskState.STARTED)
    call = task.internal_data[spiff.SERVICE_CALL_KEY]
    info = operators.CallInfo(0, 0, task.task_spec.name, 1, None)
    result = operators.get(call["operator"])(dict(call["params"]), info)
    task.data[task.task_spec.result_variable] = result
    task.complete()
    workflow.do_engine_steps()
    return _handle(workflow)


ACTS = (
    ("apply", partial(_submit, APPLY)),
    ("service", _serve),
    ("review", partial(_submit, REVIEW)),
    ("approve", partial(_submit, APPROVE)),
)


def _new_workflow(bench: Bench) -> BpmnWorkflow:
    workflow = spiff.new_workflow(bench.specs, bench.process_id, bench.settings.script_step_limit)
    workflow.do_engine_steps()
    return workflow


def memory_instance(bench: Bench) -> None:
    workflow = _new_workflow(bench)
    handle = _handle(workflow)
    for _step, act in ACTS:
        handle = act(workflow, handle)
    if not workflow.is_completed():
        raise RuntimeError("the in-memory run did not complete")


class Floor:
    """One row per instance (lean state, specs by reference), stdlib sqlite3, no ORM."""

    def __init__(self, bench: Bench):
        self.bench = bench
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.db = sqlite3.connect(bench.tmp / "floor.db", isolation_level=None)
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "busy_timeout=15000"):
            self.db.execute(f"PRAGMA {pragma}")
        self.db.execute("CREATE TABLE specs (id INTEGER PRIMARY KEY, process_id TEXT, json TEXT)")
        self.db.execute(
            "CREATE TABLE instances (id INTEGER PRIMARY KEY, spec_id INTEGER REFERENCES specs,"
            " state TEXT NOT NULL, version INTEGER NOT NULL)"
        )
        self.db.execute("INSERT INTO specs VALUES (1, ?, ?)", (bench.process_id, bench.specs_json))
        # Specs are restored once per process, as the engine's version cache does.
        self.specs = {1: (bench.process_id, spiff.specs_from_json(bench.specs_json))}

    def sql(self, query: str, params: tuple = ()) -> sqlite3.Cursor:
        return self.db.execute(query, params)

    def start(self) -> tuple[int, str | None]:
        began = time.perf_counter()
        self.sql("BEGIN")
        workflow = _new_workflow(self.bench)
        cursor = self.sql(
            "INSERT INTO instances (spec_id, state, version) VALUES (1, ?, 1)",
            (spiff.state_to_json(workflow),),
        )
        self.sql("COMMIT")
        self.latencies["start"].append(time.perf_counter() - began)
        return cursor.lastrowid, _handle(workflow)

    def request(self, step: str, iid: int, act, handle: str) -> str | None:
        """Load the row, act, write it back under a version check: one transaction."""
        began = time.perf_counter()
        self.sql("BEGIN")
        spec_id, state, version = self.sql(
            "SELECT spec_id, state, version FROM instances WHERE id = ?", (iid,)
        ).fetchone()
        process_id, specs = self.specs[spec_id]
        limit = self.bench.settings.script_step_limit
        workflow = spiff.state_from_json(state, specs, process_id, limit)
        handle = act(workflow, handle)
        updated = self.sql(
            "UPDATE instances SET state = ?, version = version + 1 WHERE id = ? AND version = ?",
            (spiff.state_to_json(workflow), iid, version),
        )
        if updated.rowcount != 1:
            raise RuntimeError(f"instance {iid} changed under us")
        self.sql("COMMIT")
        self.latencies[step].append(time.perf_counter() - began)
        return handle

    def instance(self) -> None:
        iid, handle = self.start()
        for step, act in ACTS:
            handle = self.request(step, iid, act, handle)
        if handle is not None:
            raise RuntimeError("the floor run did not complete")


# --- measuring ----------------------------------------------------------------------------------


def rate(run: Callable[[], object], n: int) -> float:
    """Instances per second of `n` full runs."""
    began = time.perf_counter()
    for _ in range(n):
        run()
    return n / (time.perf_counter() - began)


def count_statements(bench: Bench, n: int) -> dict[str, float]:
    """SQL statements per full instance on the engine path, per request and in all."""
    counts: Counter[str] = Counter()

    def count(*_args) -> None:
        counts[bench.step] += 1

    event.listen(bench.db_engine, "before_cursor_execute", count)
    try:
        ids = [engine_instance(bench) for _ in range(n)]
    finally:
        event.remove(bench.db_engine, "before_cursor_execute", count)
    with bench.sessions() as session:
        statuses = {session.get(ProcessInstance, i).status for i in ids}
    if statuses != {"completed"}:
        raise RuntimeError(f"engine instances ended {statuses}, not completed")
    per = {step: counts[step] / n for step in STEPS}
    per["total"] = sum(counts.values()) / n
    return per


def profile(bench: Bench, n: int, sort: str) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(n):
        engine_instance(bench)
    profiler.disable()
    print(f"engine path, {n} instances, top 15 by {sort}:")
    pstats.Stats(profiler, stream=sys.stdout).strip_dirs().sort_stats(sort).print_stats(15)


_DRIVER, _ORM, _RUN = "SQLite driver: execute, commit", "SQLAlchemy: ORM, Core, pool", "Spiff: run"
#: What `--breakdown` times: (share, owner, attribute).
TARGETS = [
    *((_DRIVER, DefaultDialect, m) for m in ("do_execute", "do_execute_no_params", "do_commit")),
    (_DRIVER, Floor, "sql"),
    *((_ORM, Session, m) for m in ("get", "execute", "scalar", "scalars", "flush", "close")),
    (_ORM, sessionmaker, "__call__"),
    (_ORM, SessionTransaction, "commit"),
    ("Spiff: serialize state", spiff, "state_to_json"),
    ("Spiff: deserialize state", spiff, "state_from_json"),
    *((_RUN, owner, m) for owner, m in ((BpmnWorkflow, "do_engine_steps"), (Task, "run"))),
    (_RUN, Task, "complete"),
    ("audit: HMAC, canonical JSON", audit, "_sign"),
    ("audit: HMAC, canonical JSON", audit, "_plain_data"),
    ("forms: jsonschema", forms, "validate"),
]


@contextmanager
def _timing(targets: list[tuple[str, object, str]]):
    """Wrap each target so it adds its own time (minus nested targets') to its share."""
    spent: Counter[str] = Counter()
    nested: list[float] = []

    def timed(share: str, fn):
        def wrapper(*args, **kwargs):
            nested.append(0.0)
            began = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - began
                spent[share] += elapsed - nested.pop()
                if nested:
                    nested[-1] += elapsed

        return wrapper

    saved = [(owner, name, owner.__dict__.get(name)) for _s, owner, name in targets]
    for share, owner, name in targets:
        setattr(owner, name, timed(share, getattr(owner, name)))
    try:
        yield spent
    finally:
        for owner, name, original in reversed(saved):
            if original is None:
                delattr(owner, name)
            else:
                setattr(owner, name, original)


def breakdown(paths: dict[str, Callable[[], object]], n: int) -> None:
    """Wall-clock split (no profiler) of an engine and a floor instance, in ms."""
    rows: dict[str, dict[str, float]] = {}
    for path in ("engine", "floor"):
        run = paths[path]
        with _timing(TARGETS) as spent:
            began = time.perf_counter()
            for _ in range(n):
                run()
            total = time.perf_counter() - began
        spent["rest: engine code, query building, ORM events"] = total - sum(spent.values())
        rows[path] = {share: seconds / n * 1000 for share, seconds in spent.items()}
        rows[path]["total"] = total / n * 1000
    shares = sorted(rows["engine"], key=lambda s: (s == "total", -rows["engine"][s]))
    print(f"where an instance's time goes, ms ({n} instances each)   engine    floor    extra")
    for share in shares:
        engine_ms, floor_ms = rows["engine"][share], rows["floor"].get(share, 0.0)
        print(f"  {share:<50} {engine_ms:7.2f}  {floor_ms:7.2f}  {engine_ms - floor_ms:+7.2f}")


def p50_ms(values: list[float]) -> float:
    return statistics.median(values) * 1000


def report(rates: dict[str, list[float]], bench: Bench, floor: Floor, sql: dict) -> None:
    med = {path: statistics.median(values) for path, values in rates.items()}
    for path, values in rates.items():
        runs = ", ".join(f"{v:.0f}" for v in values)
        print(f"  {path:<7} {med[path]:7.1f} instances/s   (runs: {runs})")
    ratio = med["floor"] / med["engine"]
    print(f"  engine ÷ floor, time per instance: {ratio:5.2f}×  (target ≤ 1.5×)")
    print(f"  memory ÷ floor, instances/s:       {med['memory'] / med['floor']:5.2f}×")
    print("\np50 latency per request, ms        engine    floor   SQL statements (engine)")
    for step in STEPS:
        engine_ms, floor_ms = p50_ms(bench.latencies[step]), p50_ms(floor.latencies[step])
        print(f"  {step:<30} {engine_ms:7.2f}  {floor_ms:7.2f}   {sql[step]:5.1f}")
    every = [v for step in STEPS for v in bench.latencies[step]]
    floors = [v for step in STEPS for v in floor.latencies[step]]
    print(
        f"  {'any request':<30} {p50_ms(every):7.2f}  {p50_ms(floors):7.2f}   "
        f"{sql['total']:5.1f} per instance (floor: 9 and 5 commits)"
    )


def measure(paths: dict, bench: Bench, floor: Floor, n: int, repeat: int) -> None:
    bench.latencies.clear()
    floor.latencies.clear()
    rates: dict[str, list[float]] = {path: [] for path in paths}
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(repeat):  # interleaved, so drift (other load, a growing file) hits all alike
        for path, run in paths.items():
            rates[path].append(rate(run, n))
    share = (time.process_time() - cpu) / (time.perf_counter() - wall)
    sql = count_statements(bench, 10)
    print(f"sample_approval: {n} instances × {repeat} runs per path, medians")
    print(f"  (this process had the CPU {share:.0%} of the wall time; below ~95% other load")
    print("   disturbed the run and the rates, less so the ratio, are unreliable)")
    report(rates, bench, floor, sql)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=200, help="instances per run (default 200)")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per path (default 5)")
    parser.add_argument("--warmup", type=int, default=30, help="untimed instances per path")
    parser.add_argument("--profile", action="store_true", help="cProfile the engine path")
    parser.add_argument("--sort", default="cumulative", help="pstats order for --profile")
    parser.add_argument("--breakdown", action="store_true", help="split the time by layer")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-engine-") as tmp:
        bench = setup(Path(tmp))
        floor = Floor(bench)
        paths = {
            "engine": partial(engine_instance, bench),
            "floor": floor.instance,
            "memory": partial(memory_instance, bench),
        }
        for run in paths.values():
            rate(run, args.warmup)
        if args.profile:
            profile(bench, args.n, args.sort)
        elif args.breakdown:
            breakdown(paths, args.n)
        else:
            measure(paths, bench, floor, args.n, args.repeat)
        floor.db.close()
        bench.db_engine.dispose()


if __name__ == "__main__":
    main()
