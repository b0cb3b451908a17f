"""Applications per second through the whole topology: HTTP clients → web → broker → workers.

Client processes are other systems using the JSON API: each keeps a few sample applications in
flight with a keep-alive `requests.Session` per person (API tokens for its own applicant,
reviewer and branch manager): POST /api/applications, then the reviewer's and the manager's
GET /api/tasks, claim and complete, and the applicant's GET /api/applications until completed.
Real web processes serve them and real `approval worker` processes run every engine step and the
pre-check. One application = 5 writes (apply, 2 × claim + complete), 4 hand-offs, 1 call.

    .venv/bin/python bench/throughput.py                     # every configuration, 200 each
    .venv/bin/python bench/throughput.py -n 100 --only embedded
    .venv/bin/python bench/throughput.py --postgres URL --redis URL --clients 4

Configurations: `embedded` (`approval run`: waitress + SQLite + Kombu's SQL broker + one solo
worker with beat), `pg-1` and `pg-2` (`approval web --workers 2` (gunicorn) + 1 or 2
`approval worker --concurrency 1` on PostgreSQL + Redis).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, func, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from engine import api_tokens, bundles, directory, schema  # noqa: E402
from engine.config import Settings  # noqa: E402
from engine.db import make_engine, make_session_factory  # noqa: E402
from engine.models import ProcessInstance  # noqa: E402

APPLICATION = {"applicant_name": "张三", "amount": 80000, "purpose": "travel"}
DECISIONS = (
    ("reviewer", "Task_review", {"decision": "approve", "opinion": "资料齐全"}),
    ("manager", "Task_manager", {"final_decision": "approve", "opinion": "同意"}),
)
ROLES = (("applicant", ()), ("reviewer", ("credit_reviewer",)), ("manager", ("branch_manager",)))
IN_FLIGHT = 5
POLL = float(os.environ.get("BENCH_POLL", "0.05"))  # seconds a client idles between looks
TIMEOUT = 60
#: applications/s of the same runs with in-process clients (engine API, no HTTP), the mean of
#: the two runs of bench/README.md's table of 2026-11-29.
IN_PROCESS = {"embedded": 18.5, "pg-1": 16.35, "pg-2": 18.1}


class Timed:
    """A keep-alive session with a bearer token that times every request, writes and reads."""

    def __init__(self, base_url: str, token: str, writes: list[float], reads: list[float]):
        self.base_url, self.writes, self.reads = base_url, writes, reads
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {token}"

    def get(self, path: str, **params) -> dict:
        began = time.perf_counter()
        answer = self.http.get(self.base_url + path, params=params, timeout=TIMEOUT)
        self.reads.append(time.perf_counter() - began)
        answer.raise_for_status()
        return answer.json()

    def post(self, path: str, body: dict | None = None) -> requests.Response | None:
        """The answer, or None for a 409 (a worker was changing the application: look again)."""
        began = time.perf_counter()
        answer = self.http.post(self.base_url + path, json=body, timeout=TIMEOUT)
        self.writes.append(time.perf_counter() - began)
        if answer.status_code == 409:
            return None
        if answer.status_code >= 400:
            raise RuntimeError(f"POST {path}: {answer.status_code} {answer.text}")
        return answer


def client(base_url: str, tokens: dict[str, str], quota: int, start_at: float, results) -> None:
    """Run `quota` applications to completion, IN_FLIGHT at a time; report request timings."""
    writes: list[float] = []
    reads: list[float] = []
    people = {role: Timed(base_url, token, writes, reads) for role, token in tokens.items()}
    mine: dict[str, list] = {}  # reference → [when it was applied for, decisions made]
    done: list[float] = []  # seconds from applying to completion, per application
    time.sleep(max(0.0, start_at - time.time()))
    cpu = time.process_time()
    while len(done) < quota:
        busy = _decide(people, mine)
        for reference in [r for r, (_, made) in mine.items() if made == len(DECISIONS)]:
            if people["applicant"].get(f"/api/applications/{reference}")["state"] == "completed":
                done.append(time.perf_counter() - mine.pop(reference)[0])
        while len(mine) < IN_FLIGHT and len(mine) + len(done) < quota:
            began = time.perf_counter()
            body = {"type": "sample_approval", "data": APPLICATION}
            reference = people["applicant"].post("/api/applications", body).json()["reference"]
            mine[reference] = [began, 0]
            busy = True
        if not busy:
            time.sleep(POLL)
    results.put((done, writes, reads, time.process_time() - cpu))


def _decide(people: dict[str, Timed], mine: dict[str, list]) -> bool:
    """Claim and complete the open reviews and final decisions of this client's applications;
    each inbox is looked at only while an application of this client waits for it."""
    busy = False
    for level, (role, element_id, data) in enumerate(DECISIONS):
        if not any(made == level for _, made in mine.values()):
            continue
        inbox = people[role].get("/api/tasks", type="sample_approval", page_size=100)["tasks"]
        for task in inbox:
            if task["reference"] in mine and task["element_id"] == element_id:
                url = f"/api/tasks/{task['id']}"
                claimed = people[role].post(f"{url}/claim")
                if claimed and people[role].post(f"{url}/complete", {"data": data}):
                    mine[task["reference"]][1] += 1
                    busy = True
    return busy


def prepare(settings: Settings, clients: int) -> list[dict[str, str]]:
    """Migrate, deploy the sample bundle, make each client's three accounts; their tokens."""
    settings.instance_dir.mkdir(parents=True, exist_ok=True)
    schema.upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    tokens = []
    with make_session_factory(engine).begin() as session:
        bundles.deploy_path(session, settings, ROOT / "processes" / "sample_approval", "bench")
        for n in range(clients):
            mine = {}
            for role, groups in ROLES:
                directory.add_user(session, f"{role}{n}", list(groups))
                mine[role] = api_tokens.issue(session, f"{role}{n}", "bench")
            tokens.append(mine)
    engine.dispose()
    return tokens


def run(
    settings: Settings,
    servers: dict[str, list[list[str]]],
    port: int,
    n: int,
    clients: int,
    log: Path,
) -> dict:
    """Start the web and worker processes, let the clients run `n` applications, stop them."""
    tokens = prepare(settings, clients)
    env = {**os.environ, **settings.to_env(), "PYTHONUNBUFFERED": "1"}
    with log.open("ab") as out:
        procs = {
            role: [subprocess.Popen(argv, env=env, stdout=out, stderr=out) for argv in argvs]
            for role, argvs in servers.items()
        }
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_serving(base_url, log)
        time.sleep(4)  # the workers start (Celery and the engine import)
        spawn = multiprocessing.get_context("spawn")
        results = spawn.Queue()
        start_at = time.time() + 3  # every client imported first
        quotas = [n // clients + (i < n % clients) for i in range(clients)]
        runners = [
            spawn.Process(target=client, args=(base_url, tokens[i], q, start_at, results))
            for i, q in enumerate(quotas)
        ]
        for runner in runners:
            runner.start()
        time.sleep(max(0.0, start_at - time.time()))
        cpu_before = _server_cpu(procs, log)
        outcomes = [results.get(timeout=1800) for _ in runners]
        elapsed = time.time() - start_at
        web_cpu, workers_cpu = (
            b - a for a, b in zip(cpu_before, _server_cpu(procs, log), strict=True)
        )
        for runner in runners:
            runner.join()
    finally:
        for proc in (p for group in procs.values() for p in group):
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
    engine = make_engine(settings.database_url)
    with make_session_factory(engine)() as session:
        completed = session.scalar(
            select(func.count()).where(ProcessInstance.status == "completed")
        )
    engine.dispose()
    durations = sorted(d for done, _, _, _ in outcomes for d in done)
    writes = sorted(w for _, ws, _, _ in outcomes for w in ws)
    reads = sorted(r for _, _, rs, _ in outcomes for r in rs)
    return {
        "completed": completed,
        "per_second": completed / elapsed,
        "elapsed": elapsed,
        "application_p50": statistics.median(durations),
        "request_p50_ms": 1000 * statistics.median(writes),
        "request_p95_ms": 1000 * writes[int(0.95 * len(writes)) - 1],
        "read_p50_ms": 1000 * statistics.median(reads),
        "reads": len(reads) / completed,
        "client_cpu_ms": 1000 * sum(cpu for _, _, _, cpu in outcomes) / completed,
        "web_cpu_ms": 1000 * web_cpu / completed,
        "worker_cpu_ms": 1000 * workers_cpu / completed,
    }


def _wait_serving(base_url: str, log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(base_url + "/healthz", timeout=5).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{base_url} does not answer; see {log}:\n{log.read_text()[-3000:]}")


def _server_cpu(procs: dict[str, list[subprocess.Popen]], log: Path) -> tuple[float, float]:
    """CPU seconds so far of the web processes and of the workers. `approval run` is both:
    its worker is the child whose pid it prints."""
    if "run" in procs:
        child = int(re.search(r"worker pid (\d+)", log.read_text()).group(1))
        both, workers = _tree_cpu([p.pid for p in procs["run"]]), _tree_cpu([child])
        return both - workers, workers
    return _tree_cpu([p.pid for p in procs["web"]]), _tree_cpu([p.pid for p in procs["worker"]])


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


def approval(*args: str) -> list[str]:
    return [str(Path(sys.executable).with_name("approval")), *args]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def configurations(args, tmp: Path):
    """(name, settings, server command lines by role, port) for each configuration."""
    common = {
        "APPROVAL_SECRET_KEY": "bench-" + "x" * 40,
        "APPROVAL_PROCESSES_DIR": str(ROOT / "processes"),
        "APPROVAL_FORMS_DIR": str(ROOT / "forms"),
    }
    port = free_port()
    embedded = {**common, "APPROVAL_INSTANCE_DIR": str(tmp / "embedded")}
    yield "embedded", embedded, {"run": [approval("run", "--port", str(port))]}, port
    for count in (1, 2):
        port = free_port()
        env = {
            **common,
            "APPROVAL_INSTANCE_DIR": str(tmp / f"pg-{count}"),
            "APPROVAL_BROKER_URL": args.redis,
        }
        worker = approval(
            "worker", "--concurrency", "1", "--pool", "prefork", "--loglevel", "WARNING"
        )
        servers = {
            "web": [approval("web", "--workers", "2", "--bind", f"127.0.0.1:{port}")],
            "worker": [worker] * count,
        }
        yield f"pg-{count}", env, servers, port


def _fresh_postgres(url: str) -> tuple[str, callable]:
    admin = create_engine(make_url(url), isolation_level="AUTOCOMMIT")
    name = f"approval_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))

    return make_url(url).set(database=name).render_as_string(hide_password=False), drop


def report(name: str, figures: dict) -> None:
    before = IN_PROCESS[name]
    print(
        f"  {name:9} {figures['per_second']:6.1f} applications/s "
        f"({figures['completed']} in {figures['elapsed']:.1f} s; "
        f"×{figures['per_second'] / before:.2f} the in-process clients' {before}/s); "
        f"one application p50 {figures['application_p50']:.2f} s; write request "
        f"p50 {figures['request_p50_ms']:.1f} ms, p95 {figures['request_p95_ms']:.1f} ms; "
        f"{figures['reads']:.1f} reads an application, p50 {figures['read_p50_ms']:.1f} ms; "
        f"CPU per application: clients {figures['client_cpu_ms']:.0f} ms, "
        f"web {figures['web_cpu_ms']:.0f} ms, workers {figures['worker_cpu_ms']:.0f} ms",
        flush=True,
    )


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
        f"{IN_FLIGHT} in flight each; {os.cpu_count()} CPUs",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as tmp:
        for name, env, servers, port in configurations(args, Path(tmp)):
            if args.only and name not in args.only:
                continue
            drop = None
            if name.startswith("pg"):
                url, drop = _fresh_postgres(args.postgres)
                env = {**env, "APPROVAL_DATABASE_URL": url}
                import redis

                redis.Redis.from_url(args.redis).flushdb()
            log = Path(tmp) / f"{name}.log"
            try:
                figures = run(Settings.from_env(env), servers, port, args.n, args.clients, log)
            finally:
                if drop:
                    drop()
            report(name, figures)


if __name__ == "__main__":
    main()
