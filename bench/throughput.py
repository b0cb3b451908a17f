"""Applications per second through the whole topology: client processes → broker → workers.

Client processes play the web app's requests (there is no HTTP API yet): each keeps a few sample
applications in flight and acts for the applicant, the reviewer and the branch manager through
the engine API with `defer=True`, as a view does; real `approval worker` processes run every
engine step and the pre-check. One application = start + 3 completions + 4 hand-offs + 1 call.

    .venv/bin/python bench/throughput.py                     # every configuration, 200 each
    .venv/bin/python bench/throughput.py -n 100 --only embedded
    .venv/bin/python bench/throughput.py --postgres URL --redis URL --clients 4

Configurations: `embedded` (SQLite + Kombu's SQL broker + one solo worker, what `approval run`
starts), `pg-1` and `pg-2` (PostgreSQL + Redis with 1 or 2 `approval worker --concurrency 1`).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, func, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from engine import bundles, dispatch, inbox, jobs, runtime, schema, worker  # noqa: E402
from engine.config import Settings  # noqa: E402
from engine.db import make_engine, make_session_factory  # noqa: E402
from engine.directory import Actor  # noqa: E402
from engine.models import ProcessInstance  # noqa: E402

APPLICANT = Actor("alice")
REVIEWER = Actor("rui", frozenset({"credit_reviewer"}))
MANAGER = Actor("meng", frozenset({"branch_manager"}))
STEPS = {
    "Task_apply": (APPLICANT, {"applicant_name": "张三", "amount": 80000, "purpose": "travel"}),
    "Task_review": (REVIEWER, {"decision": "approve", "opinion": "资料齐全"}),
    "Task_manager": (MANAGER, {"final_decision": "approve", "opinion": "同意"}),
}
IN_FLIGHT = 5
POLL = float(os.environ.get("BENCH_POLL", "0.05"))  # seconds a client idles between looks


def client(env: dict[str, str], quota: int, start_at: float, results) -> None:
    """Run `quota` applications to completion, IN_FLIGHT at a time; report request timings."""
    settings = Settings.from_env(env)
    dispatch.install(jobs.CeleryPublisher(worker.make_celery(settings)))
    sessions = make_session_factory(make_engine(settings.database_url))
    mine: dict[int, float] = {}  # instance → when it was started
    done: list[float] = []  # seconds from start to completion, per application
    requests: list[float] = []
    time.sleep(max(0.0, start_at - time.time()))
    cpu = time.process_time()
    while len(done) < quota:
        busy = _act(sessions, settings, mine, requests)
        while len(mine) < IN_FLIGHT and len(mine) + len(done) < quota:
            began = time.perf_counter()
            with sessions.begin() as session:
                row = runtime.start(session, settings, "sample_approval", {}, APPLICANT, defer=True)
            requests.append(time.perf_counter() - began)
            mine[row.id] = time.perf_counter()
            busy = True
        for instance_id in _completed(sessions, list(mine)):
            done.append(time.perf_counter() - mine.pop(instance_id))
        if not busy:
            time.sleep(POLL)
    results.put((done, requests, time.process_time() - cpu))


def _act(sessions, settings, mine: dict[int, float], requests: list[float]) -> bool:
    """Complete every open task of this client's applications; whether there was any."""
    busy = False
    for actor in (APPLICANT, REVIEWER, MANAGER):
        with sessions() as session:
            tasks = [
                t for t in inbox.open_tasks(session, actor, limit=500) if t.instance_id in mine
            ]
        for task in tasks:
            began = time.perf_counter()
            with sessions.begin() as session:
                data = STEPS[task.element_id][1]
                runtime.complete_task(session, settings, task.id, actor, data, defer=True)
            requests.append(time.perf_counter() - began)
            busy = True
    return busy


def _completed(sessions, ids: list[int]) -> list[int]:
    if not ids:
        return []
    with sessions() as session:
        query = select(ProcessInstance.id).where(
            ProcessInstance.id.in_(ids), ProcessInstance.status == "completed"
        )
        return list(session.scalars(query))


def run(settings: Settings, workers: list[list[str]], n: int, clients: int, log: Path) -> dict:
    """Start the workers, let the clients run `n` applications, stop the workers; figures."""
    settings.instance_dir.mkdir(parents=True, exist_ok=True)
    schema.upgrade(settings.database_url)
    sessions = make_session_factory(make_engine(settings.database_url))
    with sessions.begin() as session:
        bundles.deploy_path(session, settings, ROOT / "processes" / "sample_approval", "bench")
    env = {**os.environ, **settings.to_env()}
    with log.open("ab") as out:
        procs = [subprocess.Popen(argv, env=env, stdout=out, stderr=out) for argv in workers]
    try:
        time.sleep(4)  # the workers start (Celery and the engine import)
        spawn = multiprocessing.get_context("spawn")
        results = spawn.Queue()
        start_at = time.time() + 3  # every client imported and connected first
        quotas = [n // clients + (i < n % clients) for i in range(clients)]
        runners = [
            spawn.Process(target=client, args=(settings.to_env(), q, start_at, results))
            for q in quotas
        ]
        for runner in runners:
            runner.start()
        time.sleep(max(0.0, start_at - time.time()))
        workers_cpu = -_tree_cpu([p.pid for p in procs])
        outcomes = [results.get(timeout=1800) for _ in runners]
        elapsed = time.time() - start_at
        workers_cpu += _tree_cpu([p.pid for p in procs])
        for runner in runners:
            runner.join()
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(30)
    with sessions() as session:
        completed = session.scalar(
            select(func.count()).where(ProcessInstance.status == "completed")
        )
    durations = sorted(d for done, _, _ in outcomes for d in done)
    requests = sorted(r for _, reqs, _ in outcomes for r in reqs)
    clients_cpu = sum(cpu for _, _, cpu in outcomes)
    return {
        "completed": completed,
        "per_second": completed / elapsed,
        "elapsed": elapsed,
        "application_p50": statistics.median(durations),
        "request_p50_ms": 1000 * statistics.median(requests),
        "request_p95_ms": 1000 * requests[int(0.95 * len(requests)) - 1],
        "client_cpu_ms": 1000 * clients_cpu / completed,
        "worker_cpu_ms": 1000 * workers_cpu / completed,
    }


def _tree_cpu(roots: list[int]) -> float:
    """CPU seconds (user + system) used so far by the processes `roots` and their children."""
    stats = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        stats[int(stat.parent.name)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in stats.items():
        children.setdefault(parent, []).append(pid)
    todo, ticks = [r for r in roots if r in stats], 0
    while todo:
        pid = todo.pop()
        ticks += stats[pid][1]
        todo += children.get(pid, [])
    return ticks / os.sysconf("SC_CLK_TCK")


def worker_argv(pool: str) -> list[str]:
    argv = [str(Path(sys.executable).with_name("approval")), "worker", "--concurrency", "1"]
    return argv + ["--pool", pool, "--loglevel", "WARNING"]


def configurations(args, tmp: Path):
    """(name, settings, worker command lines) for each configuration asked for."""
    common = {
        "APPROVAL_SECRET_KEY": "bench-" + "x" * 40,
        "APPROVAL_PROCESSES_DIR": str(ROOT / "processes"),
        "APPROVAL_FORMS_DIR": str(ROOT / "forms"),
    }
    embedded = {**common, "APPROVAL_INSTANCE_DIR": str(tmp / "embedded")}
    yield "embedded", Settings.from_env(embedded), [worker_argv("solo")]
    for count in (1, 2):
        env = {
            **common,
            "APPROVAL_INSTANCE_DIR": str(tmp / f"pg-{count}"),
            "APPROVAL_DATABASE_URL": args.postgres,
            "APPROVAL_BROKER_URL": args.redis,
        }
        yield f"pg-{count}", Settings.from_env(env), [worker_argv("prefork")] * count


def _fresh_postgres(url: str) -> tuple[str, callable]:
    admin = create_engine(make_url(url), isolation_level="AUTOCOMMIT")
    name = f"approval_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))

    return make_url(url).set(database=name).render_as_string(hide_password=False), drop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", type=int, default=200, help="applications per configuration")
    parser.add_argument("--clients", type=int, default=4, help="client processes")
    parser.add_argument("--only", action="append", help="embedded, pg-1 or pg-2 (repeatable)")
    parser.add_argument(
        "--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    )
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/14")
    args = parser.parse_args()
    print(
        f"{args.n} sample applications per configuration, {args.clients} client processes, "
        f"{IN_FLIGHT} in flight each; {os.cpu_count()} CPUs"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for name, settings, workers in configurations(args, Path(tmp)):
            if args.only and name not in args.only:
                continue
            drop = None
            if name.startswith("pg"):
                url, drop = _fresh_postgres(args.postgres)
                settings = Settings.from_env({**settings.to_env(), "APPROVAL_DATABASE_URL": url})
                import redis

                redis.Redis.from_url(args.redis).flushdb()
            try:
                figures = run(settings, workers, args.n, args.clients, Path(tmp) / f"{name}.log")
            finally:
                if drop:
                    drop()
            print(
                f"  {name:9} {figures['per_second']:6.1f} applications/s "
                f"({figures['completed']} in {figures['elapsed']:.1f} s); "
                f"one application p50 {figures['application_p50']:.2f} s; request "
                f"p50 {figures['request_p50_ms']:.1f} ms, p95 {figures['request_p95_ms']:.1f} ms; "
                f"CPU per application: clients {figures['client_cpu_ms']:.0f} ms, "
                f"workers {figures['worker_cpu_ms']:.0f} ms"
            )


if __name__ == "__main__":
    main()
