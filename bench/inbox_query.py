"""How long the reviewers' inbox query takes with 100,000 human tasks, against the floor.

The floor is the plainest indexed read of a group's inbox: `SELECT … FROM human_tasks WHERE
state = 'ready' AND group_key = ? ORDER BY created_at LIMIT 20` (index `ix_human_tasks_inbox`),
through the same SQLAlchemy session. The inbox (`engine.inbox.inbox_page`) adds the join to the
instance row, the "mine or my group's" condition, the filters, and the total count.

    .venv/bin/python bench/inbox_query.py              # 100,000 tasks, 50 timed runs per query
    .venv/bin/python bench/inbox_query.py -n 20000 --runs 20

Rows are written with bulk INSERTs into a fresh SQLite file migrated with `engine.schema`
(10 groups, 4 bundles, grades A–E, amounts 10,000–500,000, ~60% of tasks open). Medians of
`time.perf_counter`; each query runs 5 times untimed first. Prints SQLite's query plan of the
inbox query so an unindexed scan shows.

On this (shared, 2 vCPU) machine, 2026-12-04: floor 0.08–0.14 ms; the inbox page 10–20 ms with
5,060 matching tasks of 100,000 (about half counting them, half ordering them), whatever the
filters — the plan seeks `ix_human_tasks_inbox` and `ix_human_tasks_assignee` (MULTI-INDEX OR),
so the time follows the size of the reviewer's inbox, not of the table.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert, select, text  # noqa: E402

from engine import bundles, inbox, schema  # noqa: E402
from engine.config import Settings  # noqa: E402
from engine.db import make_engine, make_session_factory  # noqa: E402
from engine.directory import Actor  # noqa: E402
from engine.models import HumanTask, ProcessInstance  # noqa: E402

GROUPS = [f"group_{n}" for n in range(9)] + ["credit_reviewer"]
BUNDLES = ["personal_loan", "credit_card", "enterprise_loan", "sample_approval"]
GRADES = ["A", "B", "C", "D", "E"]
STATES = ["ready"] * 5 + ["claimed"] + ["completed"] * 4
REVIEWER = Actor("rui", frozenset({"credit_reviewer"}))
BATCH = 5000


def fill(sessions, version_id: int, uid: str, count: int) -> None:
    """`count` instances with one human task each, in batches."""
    rng = random.Random(7)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for first in range(0, count, BATCH):
        ids = range(first + 1, min(first + BATCH, count) + 1)
        instances = [_instance(rng, n, version_id, uid, start) for n in ids]
        tasks = [_task(rng, n, start) for n in ids]
        with sessions.begin() as session:
            session.execute(insert(ProcessInstance), instances)
            session.execute(insert(HumanTask), tasks)


def _instance(rng, n: int, version_id: int, uid: str, start: datetime) -> dict:
    return {
        "id": n,
        "bundle_version_id": version_id,
        "bundle_key": rng.choice(BUNDLES),
        "version_uid": uid,
        "process_id": "bench",
        "reference": f"BX{n:012d}",
        "status": "waiting",
        "state": "",
        "started_by": f"applicant{n % 5000}",
        "amount": Decimal(rng.randrange(10, 500) * 1000),
        "risk_grade": rng.choice(GRADES),
        "created_at": start + timedelta(minutes=n),
        "updated_at": start + timedelta(minutes=n),
        "lock_version": 1,
    }


def _task(rng, n: int, start: datetime) -> dict:
    state = rng.choice(STATES)
    return {
        "id": n,
        "instance_id": n,
        "task_id": f"{n:036d}",
        "element_id": "Task_review",
        "name": "人工审核 Credit review",
        "group_key": rng.choice(GROUPS),
        "assignee": "someone" if state == "claimed" else None,
        "state": state,
        "created_at": start + timedelta(minutes=n),
        "due_at": start + timedelta(minutes=n, days=rng.choice([1, 2, 3])),
        "lock_version": 1,
    }


def timed(run, runs: int) -> float:
    for _ in range(5):
        run()
    samples = []
    for _ in range(runs):
        began = time.perf_counter()
        run()
        samples.append(time.perf_counter() - began)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=100_000, help="human tasks (default 100,000)")
    parser.add_argument("--runs", type=int, default=50, help="timed runs per query")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/bench.db"
        schema.upgrade(url)
        sessions = make_session_factory(make_engine(url))
        settings = Settings.from_env(
            {"APPROVAL_DATABASE_URL": url, "APPROVAL_INSTANCE_DIR": folder}
        )
        with sessions.begin() as session:
            (result,) = bundles.deploy_path(
                session, settings, ROOT / "processes" / "sample_approval", "bench"
            )
            version = bundles.load_live(session, "sample_approval")
        began = time.perf_counter()
        fill(sessions, version.id, version.uid, args.n)
        print(f"{args.n:,} tasks written in {time.perf_counter() - began:.1f} s")
        report(sessions, args.runs)


def report(sessions, runs: int) -> None:
    floor = (
        select(HumanTask.id, HumanTask.instance_id, HumanTask.name, HumanTask.created_at)
        .where(HumanTask.state == "ready", HumanTask.group_key == "credit_reviewer")
        .order_by(HumanTask.created_at)
        .limit(20)
    )
    queries = {
        "inbox, first page": inbox.InboxQuery(),
        "inbox, last page": inbox.InboxQuery(page=400),
        "inbox, personal loans B, 100k-300k, by amount": inbox.InboxQuery(
            bundle_key="personal_loan",
            risk_grade="B",
            min_amount=Decimal(100_000),
            max_amount=Decimal(300_000),
            sort="amount",
            descending=True,
        ),
        "inbox, overdue, by due time": inbox.InboxQuery(due="overdue", sort="due"),
    }
    with sessions() as session:
        base = timed(lambda: session.execute(floor).all(), runs)
        print(f"{'floor: plain indexed SELECT, 20 rows':48} {base * 1000:8.2f} ms")
        for label, query in queries.items():
            spent = timed(lambda q=query: inbox.inbox_page(session, REVIEWER, q), runs)
            total = inbox.inbox_page(session, REVIEWER, query).total
            print(f"{label:48} {spent * 1000:8.2f} ms  ×{spent / base:6.1f}  ({total:,} match)")
        plan(session)


def plan(session) -> None:
    selection = inbox._matching(REVIEWER, inbox.InboxQuery()).order_by(
        *inbox._order(inbox.InboxQuery())
    )
    compiled = selection.compile(session.get_bind(), compile_kwargs={"literal_binds": True})
    print("query plan of the inbox page:")
    for row in session.execute(text(f"EXPLAIN QUERY PLAN {compiled}")):
        print("   ", row[-1])


if __name__ == "__main__":
    main()
